import { execFileSync } from 'node:child_process'
/** The JSON a bench run writes, and its Markdown rendering. */
export interface BenchReport {
  startedAt: string
  finishedAt?: string
  machine: {
    cpus: number
    cpuModel: string
    memoryGb: number
    node: string
    /** HARNESS_NODE_FLAGS the bench's own process ran with (absent in reports before them) */
    harnessNodeFlags?: string[]
    /** the node flags of the load workers, MQPUSH_BENCH_WORKER_ARGS included (the same) */
    workerNodeFlags?: string[]
    /** the service's own node flags (api/runtime-flags.ts), before MQPUSH_BENCH_NODE_ARGS */
    serviceNodeFlags?: string[]
    /**
     * Scenario → the share of the machine's CPU time the hypervisor stole during its measured
     * turns, every target's together (`/proc/stat`'s steal; each target's own is `stolen` in its
     * results; absent in reports before them, and where there is no `/proc/stat`)
     */
    stolen?: Record<string, number>
  }
  /**
   * The checkout whose build was measured: its commit, and whether it had uncommitted changes to
   * tracked files (absent in reports before it, and outside a git checkout; `buildOf`)
   */
  build?: { commit: string; dirty: boolean }
  options: Record<string, unknown>
  /** The MQPUSH_BENCH_* variables the run had (absent in reports before them; `benchEnvironment`) */
  environment?: Record<string, string>
  /** target → scenario → figures */
  results: Record<string, Record<string, any>>
}

interface Row {
  figure: string
  /** Reads the figure from one target's results. */
  get(r: Record<string, any>): number | undefined
  /** The figure's lowest and highest over the target's rounds or slices, when it has them. */
  spread?(r: Record<string, any>): number[] | undefined
  unit: string
  better: 'higher' | 'lower'
  /** `base`: the baselines' figures, by target name (`aedes`, `mosquitto`, `aedes-http`). */
  budget?: (mqpush: number, base: Record<string, number | undefined>) => string
  /** The budget compares mqpush with this baseline: say when their rounds' ranges overlap. */
  against?: 'aedes' | 'mosquitto'
  /** A count of events, for which a ratio says nothing (0 against 12): no ratio columns. */
  count?: true
  /** What the verdict rests on, from every target's results, added after it when not empty. */
  caveat?: (results: Record<string, Record<string, any> | undefined>) => string
}

/**
 * A figure of a scenario measured in rounds (the fixed rate: in slices): the summary's value,
 * and the same field of every round for its range.
 */
function inRounds(scenario: string, field: string, rounds = 'rounds'): Pick<Row, 'get' | 'spread'> {
  return {
    get: (r) => r[scenario]?.[field],
    spread: (r) => r[scenario]?.[rounds]?.map((x: Record<string, number>) => x[field]),
  }
}

const ROWS: Row[] = [
  {
    figure: 'hold: memory per connected device',
    get: (r) => r.hold && r.hold.bytesPerDevice / 1024,
    unit: 'KB',
    better: 'lower',
    budget: (m) => verdict(m <= 8, '≤ 8 KB'),
  },
  {
    figure: 'hold: connects per second',
    get: (r) => r.hold?.connectsPerSec,
    unit: '/s',
    better: 'higher',
  },
  {
    // a dropped SYN is sent again after a second: it shows in the connect rate
    figure: 'hold: accept-queue drops (a dropped SYN is sent again after 1 s)',
    count: true,
    get: (r) => r.hold?.listenOverflows ?? undefined,
    unit: '',
    better: 'lower',
  },
  {
    figure: 'broadcast to all: deliveries per second',
    ...inRounds('broadcastAll', 'deliveriesPerSec'),
    unit: '/s',
    better: 'higher',
    budget: (m, b) => (b.aedes === undefined ? '' : verdict(m >= b.aedes, '≥ plain Aedes')),
    against: 'aedes',
  },
  {
    figure: 'broadcast to all: last device after',
    ...inRounds('broadcastAll', 'lastMs'),
    unit: 'ms',
    better: 'lower',
  },
  {
    figure: 'broadcast to all: broker CPU per delivery',
    ...inRounds('broadcastAll', 'cpuUsPerDelivery'),
    unit: 'µs',
    better: 'lower',
  },
  {
    figure: 'broadcast to a topic: deliveries per second',
    ...inRounds('broadcastTopic', 'deliveriesPerSec'),
    unit: '/s',
    better: 'higher',
    budget: (m, b) => (b.aedes === undefined ? '' : verdict(m >= b.aedes, '≥ plain Aedes')),
    against: 'aedes',
  },
  {
    figure: 'unicast at fixed rate: p50',
    ...inRounds('unicast', 'p50Ms', 'slices'),
    unit: 'ms',
    better: 'lower',
  },
  {
    figure: 'unicast at fixed rate: p99',
    get: (r) => r.unicast?.p99Ms,
    unit: 'ms',
    better: 'lower',
  },
  {
    figure: 'unicast at fixed rate: p99.8',
    ...inRounds('unicast', 'p998Ms', 'slices'),
    unit: 'ms',
    better: 'lower',
    // with whether each baseline met it in the same run: the tail depends on the machine
    budget: (m, b) => {
      const others: string[] = []
      const met = (x: number) => (x <= 10 ? '✅' : '❌')
      if (b.aedes !== undefined) others.push(`Aedes ${met(b.aedes)}`)
      if (b.mosquitto !== undefined) others.push(`Mosquitto ${met(b.mosquitto)}`)
      if (b['aedes-http'] !== undefined) others.push(`${FLOOR} ${met(b['aedes-http'])}`)
      return verdict(m <= 10, '≤ 10 ms') + (others.length > 0 ? ` (${others.join(', ')})` : '')
    },
  },
  {
    // the first seconds at the rate, before the measured ones: V8 still optimizing the push
    // path (not budgeted: the budget is the service as it runs, but a restart shows this)
    figure: 'unicast at fixed rate: p99.8 of the unmeasured warm-up before it',
    get: (r) => r.unicast?.warmUp?.p998Ms,
    unit: 'ms',
    better: 'lower',
  },
  {
    // the same tail split by when the messages were sent: the start of the rate (a target that
    // falls behind while V8 compiles its push path) and the warm-up once under way
    figure: "unicast at fixed rate: p99.8 of the warm-up's messages sent in its first second",
    get: (r) => r.unicast?.warmUp?.firstSecondP998Ms,
    unit: 'ms',
    better: 'lower',
  },
  {
    figure: "unicast at fixed rate: p99.8 of the warm-up's messages sent after its first second",
    get: (r) => r.unicast?.warmUp?.afterFirstSecondP998Ms,
    unit: 'ms',
    better: 'lower',
  },
  {
    // the hold's figure is read after the connects, before any push: this one after the load,
    // with what the load left in the heap (garbage not yet collected included)
    figure: "unicast at fixed rate: the broker's resident memory after it",
    get: (r) => r.unicast?.rssAfterMb,
    unit: 'MB',
    better: 'lower',
  },
  {
    figure: 'unicast at fixed rate: max',
    ...inRounds('unicast', 'maxMs', 'slices'),
    unit: 'ms',
    better: 'lower',
  },
  {
    // the generator's share of a tail: a sender that stalls sends late, then in a burst
    figure:
      "unicast at fixed rate: the sender's latest send after its time (the load generator's own lateness)",
    ...inRounds('unicast', 'maxSendLateMs', 'slices'),
    unit: 'ms',
    better: 'lower',
    count: true,
  },
  {
    figure: 'unicast at fixed rate: broker CPU per message, delivery included',
    get: (r) => r.unicast?.cpuUsPerMessageAtRate,
    unit: 'µs',
    better: 'lower',
  },
  {
    figure: 'unicast at fixed rate: lost',
    get: (r) => r.unicast?.lost,
    unit: '',
    better: 'lower',
    budget: (m) => verdict(m === 0, '0'),
  },
  {
    figure: 'unicast: accepted push requests per second (closed loop, wrk)',
    get: (r) => r.unicast?.maxAcceptedPerSec,
    unit: '/s',
    better: 'higher',
    budget: (m) => verdict(m >= 5000, '≥ 5000'),
  },
  {
    // CPU time, unlike requests per second, hardly moves with what else the machine runs
    figure: 'unicast: service CPU per accepted push, delivery included (closed loop)',
    get: (r) => r.unicast?.cpuUsPerPush,
    unit: 'µs',
    better: 'lower',
  },
  {
    figure: 'offline: time to drain every queue',
    ...inRounds('offline', 'drainMs'),
    unit: 'ms',
    better: 'lower',
    budget: (m, b) => (b.mosquitto === undefined ? '' : verdict(m <= b.mosquitto, '≤ Mosquitto')),
    against: 'mosquitto',
    // each drop costs that device a second: Mosquitto's rounds are then the backlog's, not its
    // drain's (docs/benchmarks-log.md, "The offline drain measured again")
    caveat: (results) => {
      const dropsOf = (t: string) => (results[t]?.offline?.listenOverflows as number | null) ?? 0
      const mosquitto = dropsOf('mosquitto')
      return mosquitto > dropsOf('mqpush')
        ? `Mosquitto had ${mosquitto.toLocaleString('en-US')} accept-queue drops, a second each`
        : ''
    },
  },
  {
    figure: 'offline: broker CPU per delivered message (reconnects included)',
    ...inRounds('offline', 'cpuUsPerDelivery'),
    unit: 'µs',
    better: 'lower',
  },
  {
    figure:
      'offline: accept-queue drops while reconnecting (a dropped SYN is sent again after 1 s)',
    count: true,
    get: (r) => r.offline?.listenOverflows ?? undefined,
    unit: '',
    better: 'lower',
  },
  {
    figure: 'offline: not delivered',
    get: (r) => r.offline && r.offline.expected - r.offline.delivered,
    unit: '',
    better: 'lower',
  },
  {
    figure: 'offline: expired but delivered',
    get: (r) => r.offline?.expiredDelivered ?? undefined,
    unit: '',
    better: 'lower',
    budget: (m) => verdict(m === 0, '0'),
  },
  {
    figure: 'restart: serving again after kill -9',
    get: (r) => r.restart?.servingAgainMs,
    unit: 'ms',
    better: 'lower',
    budget: (m) => verdict(m <= 5000, '≤ 5000 ms'),
  },
  {
    figure: 'restart: queued messages lost',
    get: (r) => r.restart?.lost,
    unit: '',
    better: 'lower',
    budget: (m) => verdict(m === 0, '0'),
  },
  // the machine's moment in each target's own measured turns: a figure taken while the host
  // stole a tenth of the machine is a tenth short of its own
  ...(
    ['broadcast to all', 'broadcast to topic', 'fixed rate', 'closed loop', 'offline'] as const
  ).map((phase): Row => ({
    figure: `machine: CPU time the host stole during the target's measured turns, ${phase}`,
    count: true,
    get: (r) => (r.stolen?.[phase] === undefined ? undefined : r.stolen[phase] * 100),
    unit: '%',
    better: 'lower',
  })),
]

/** The `aedes-http` baseline's name in the table. */
const FLOOR = 'Aedes + node:http'

function verdict(ok: boolean, budget: string): string {
  return `${budget} ${ok ? '✅' : '❌'}`
}

function fmt(x: number | undefined, unit: string): string {
  if (x === undefined || Number.isNaN(x)) return '—'
  return unit ? `${num(x)} ${unit}` : num(x)
}

function num(x: number): string {
  return Math.abs(x) >= 100
    ? Math.round(x).toLocaleString('en-US')
    : String(Math.round(x * 100) / 100)
}

/** Lowest and highest of a target's rounds, or undefined for fewer than two. */
function range(values: number[] | undefined): [number, number] | undefined {
  if (!values || values.length < 2) return undefined
  return [Math.min(...values), Math.max(...values)]
}

/** A figure with its rounds' range: `22,573 /s (19,801–23,923)`. */
function cell(x: number | undefined, unit: string, spread: [number, number] | undefined): string {
  const v = fmt(x, unit)
  return spread && x !== undefined ? `${v} (${num(spread[0])}–${num(spread[1])})` : v
}

function ratioOf(m: number | undefined, b: number | undefined): string {
  if (m === undefined || b === undefined || b === 0) return '—'
  return `${(m / b).toFixed(2)}×`
}

/**
 * The MQPUSH_BENCH_* variables in `env`, by name: they change what a run measures (a baseline's
 * payloads, the processes' node flags), so a report says which it ran with.
 */
export function benchEnvironment(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {}
  for (const k of Object.keys(env).sort()) {
    const v = env[k]
    if (k.startsWith('MQPUSH_BENCH_') && v !== undefined) out[k] = v
  }
  return out
}

export function renderMarkdown(report: BenchReport): string {
  const r = report.results
  const m = r.mqpush ?? {}
  const aedes = r.aedes
  const mosq = r.mosquitto
  // the floor's columns only when it ran (it runs the unicast alone)
  const floor = r['aedes-http']
  const ifFloor = (text: string) => (floor ? text : '')
  const lines = [
    `Machine: ${report.machine.cpus} × ${report.machine.cpuModel}, ${report.machine.memoryGb} GB, Node ${report.machine.node}. ` +
      (report.build ? `Build: ${describeBuild(report.build)}. ` : '') +
      `Options: ${JSON.stringify(report.options)}` +
      (report.environment && Object.keys(report.environment).length > 0
        ? `. Environment: ${JSON.stringify(report.environment)}`
        : ''),
    ...stolenLine(report.machine.stolen),
    '',
    "Figures measured in rounds are medians (the fixed rate's: over all its messages), with " +
      'the lowest and highest round or 2 s slice in brackets; a budget verdict against a ' +
      "baseline says when the two targets' rounds overlap.",
    '',
    `| figure | mqpush | plain Aedes | Mosquitto |${ifFloor(` ${FLOOR} |`)} mqpush ÷ Aedes | mqpush ÷ Mosquitto |${ifFloor(` mqpush ÷ ${FLOOR} |`)} budget |`,
    `|---|---|---|---|${ifFloor('---|')}---|---|${ifFloor('---|')}---|`,
  ]
  for (const row of ROWS) {
    const mv = row.get(m)
    const av = aedes ? row.get(aedes) : undefined
    const sv = mosq ? row.get(mosq) : undefined
    const fv = floor ? row.get(floor) : undefined
    if (mv === undefined && av === undefined && sv === undefined && fv === undefined) continue
    const spreadOf = (t: Record<string, any> | undefined) =>
      t && row.spread ? range(row.spread(t)) : undefined
    const ms = spreadOf(m)
    const as = spreadOf(aedes)
    const ss = spreadOf(mosq)
    const fs = spreadOf(floor)
    let budget =
      mv !== undefined && row.budget
        ? row.budget(mv, { aedes: av, mosquitto: sv, 'aedes-http': fv })
        : ''
    const base = row.against === 'aedes' ? as : row.against === 'mosquitto' ? ss : undefined
    const notes: string[] = []
    if (budget && ms && base && ms[0] <= base[1] && base[0] <= ms[1]) notes.push('rounds overlap')
    const caveat = budget && row.caveat ? row.caveat(r) : ''
    if (caveat) notes.push(caveat)
    if (notes.length > 0) budget += ` (${notes.join('; ')})`
    const arrow = row.better === 'higher' ? '↑' : '↓'
    const ratio = row.count ? () => '—' : ratioOf
    lines.push(
      `| ${row.figure} (${arrow} better) | ${cell(mv, row.unit, ms)} | ${cell(av, row.unit, as)} | ${cell(sv, row.unit, ss)} |${ifFloor(` ${cell(fv, row.unit, fs)} |`)} ${ratio(mv, av)} | ${ratio(mv, sv)} |${ifFloor(` ${ratio(mv, fv)} |`)} ${budget} |`,
    )
  }
  return lines.join('\n')
}

/**
 * The machine's stolen time by scenario, as a line of the report (none when nothing was read):
 * a share the hypervisor took is a moment of the machine that every target's figure shared.
 */
function stolenLine(stolen: Record<string, number> | undefined): string[] {
  const entries = Object.entries(stolen ?? {})
  if (entries.length === 0) return []
  const pct = (x: number) => `${Math.round(x * 1000) / 10} %`
  return [
    '',
    "CPU time the host stole from this machine during each scenario's measured turns " +
      `(\`/proc/stat\`, all targets together): ${entries.map(([s, x]) => `${s} ${pct(x)}`).join(', ')}.`,
  ]
}

/** A build as the reports name it: its commit, and whether tracked files had changes. */
export function describeBuild(build: NonNullable<BenchReport['build']>): string {
  return `${build.commit}${build.dirty ? ' with uncommitted changes' : ''}`
}

/**
 * The commit checked out in `dir` and whether tracked files differ from it (untracked files do
 * not count); undefined where there is no git or no checkout (an unpacked release).
 */
export function buildOf(dir: string): BenchReport['build'] {
  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  try {
    const commit = git('rev-parse', 'HEAD').trim()
    const changes = git('status', '--porcelain', '--untracked-files=no').trim()
    return { commit, dirty: changes.length > 0 }
  } catch {
    return undefined
  }
}
