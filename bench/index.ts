import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import {
  WorkerPool,
  harnessFlagsOfThisProcess,
  warnWithoutHarnessFlags,
  workerNodeFlags,
} from './load/pool.js'
import { benchEnvironment, buildOf, renderMarkdown, type BenchReport } from './report.js'
import * as scenario from './scenarios.js'
import { ensureMosquitto, startMosquitto, startPlainAedes } from './targets/baselines.js'
import { startMqpush } from './targets/mqpush.js'
import {
  cpuMs,
  HTTP_CONNECTIONS,
  machineCpuTicks,
  stolenShare,
  takesHttpPushes,
  type Target,
} from './targets/target.js'
import type { DeviceCreds } from './load/protocol.js'
import { SERVICE_NODE_FLAGS } from '../api/runtime-flags.js'

/**
 * `npm run bench`: drives mqpush (full pipeline, embedded store) and, as baselines measured in
 * the same run with the same load generator, plain Aedes (in-memory), Mosquitto and, for the
 * HTTP → device unicast, plain Aedes behind the least HTTP push endpoint there can be.
 * Every figure of mqpush is also given as a ratio to the baselines, which holds on a noisy
 * machine. Nothing here asserts a speed.
 */
const { values: a } = parseArgs({
  options: {
    scenarios: { type: 'string', default: 'hold,broadcast,unicast,offline,restart' },
    targets: { type: 'string', default: 'mqpush,aedes,mosquitto,aedes-http' },
    devices: { type: 'string', default: '10000' },
    rate: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '10' },
    'warm-up': { type: 'string', default: String(scenario.UNICAST_WARM_UP_SECONDS) },
    concurrency: { type: 'string', default: '64' },
    'http-connections': { type: 'string', default: String(HTTP_CONNECTIONS) },
    'offline-devices': { type: 'string', default: '1000' },
    'offline-messages': { type: 'string', default: '20' },
    'offline-rounds': { type: 'string', default: '3' },
    'offline-warm-up-rounds': { type: 'string', default: String(scenario.DRAIN_WARM_UP_ROUNDS) },
    'connects-in-flight': { type: 'string', default: String(scenario.CONNECTS_IN_FLIGHT) },
    'restart-messages': { type: 'string', default: '100000' },
    'broadcast-rounds': { type: 'string', default: '5' },
    workers: { type: 'string', default: '4' },
    out: { type: 'string', default: 'bench-results/latest.json' },
    help: { type: 'boolean', default: false },
  },
})

if (a.help) {
  console.log(`npm run bench -- [options]
  --scenarios hold,broadcast,unicast,offline,restart
  --targets mqpush,aedes,mosquitto,aedes-http
                         baselines run the scenarios a bare broker can run; aedes-http
                         (plain Aedes behind a bare node:http push endpoint) hold and unicast
  --devices N            devices held online (hold, broadcast, unicast)      [10000]
  --rate R               unicast push requests per second                   [2000]
  --seconds S            measured seconds at the rate, after --warm-up      [10]
  --warm-up S            unmeasured seconds at the rate before them         [${scenario.UNICAST_WARM_UP_SECONDS}]
  --concurrency C        requests in flight for the highest unicast rate    [64]
  --http-connections N   most connections an HTTP target's push requests go over (the fixed
                         rate's; the closed loop's too when wrk is missing)  [${HTTP_CONNECTIONS}]
  --offline-devices K    offline scenario devices                           [1000]
  --offline-messages Q   messages queued per offline device                 [20]
  --offline-rounds R     offline rounds of each target (new devices each); figures are medians [3]
  --offline-warm-up-rounds N  unmeasured offline rounds of each target before them (0: none) [${scenario.DRAIN_WARM_UP_ROUNDS}]
  --connects-in-flight N devices connecting at once (hold, offline), over a target's workers [${scenario.CONNECTS_IN_FLIGHT}]
  --restart-messages M   messages queued before kill -9                     [100000]
  --broadcast-rounds B   measured broadcasts of each kind; figures are medians [5]
  --workers W            load-generator processes per target (253 in all)   [4]
  --out FILE             JSON results                                       [bench-results/latest.json]`)
  process.exit(0)
}

const int = (name: string, v: string | undefined) => {
  const n = Number(v)
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer`)
  return n
}
const opts = {
  scenarios: new Set(a.scenarios.split(',')),
  targets: a.targets.split(','),
  devices: int('devices', a.devices),
  rate: int('rate', a.rate),
  seconds: int('seconds', a.seconds),
  warmUpSeconds: int('warm-up', a['warm-up']),
  concurrency: int('concurrency', a.concurrency),
  httpConnections: int('http-connections', a['http-connections']),
  offlineDevices: int('offline-devices', a['offline-devices']),
  offlineMessages: int('offline-messages', a['offline-messages']),
  offlineRounds: int('offline-rounds', a['offline-rounds']),
  offlineWarmUpRounds:
    a['offline-warm-up-rounds'] === '0'
      ? 0
      : int('offline-warm-up-rounds', a['offline-warm-up-rounds']),
  connectsInFlight: int('connects-in-flight', a['connects-in-flight']),
  restartMessages: int('restart-messages', a['restart-messages']),
  broadcastRounds: int('broadcast-rounds', a['broadcast-rounds']),
  workers: int('workers', a.workers),
  out: a.out,
}
scenario.connectsPerWorker(opts.connectsInFlight, opts.workers) // refused up front, not mid-run
for (const t of opts.targets) {
  if (!scenario.SCENARIOS_OF[t])
    throw new Error(`unknown target ${t} (${Object.keys(scenario.SCENARIOS_OF).join(', ')})`)
}
const runs = (target: string, s: string) =>
  opts.scenarios.has(s) && (scenario.SCENARIOS_OF[target] as string[]).includes(s)
if (opts.devices > 18_000) {
  throw new Error('--devices above 18000 exceeds the 20000 open files a process may hold here')
}

warnWithoutHarnessFlags()
const report: BenchReport = {
  startedAt: new Date().toISOString(),
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    // the bench's own process
    harnessNodeFlags: harnessFlagsOfThisProcess(),
    workerNodeFlags: workerNodeFlags(),
    // mqpush's, as `npm start` passes them; MQPUSH_BENCH_NODE_ARGS come after them
    serviceNodeFlags: [...SERVICE_NODE_FLAGS],
  },
  // the checkout this bench runs from (git finds it from any folder in it), whose build it measures
  build: buildOf(fileURLToPath(new URL('.', import.meta.url))),
  options: { ...opts, scenarios: [...opts.scenarios] },
  environment: benchEnvironment(),
  results: {},
}

/** A target under test, with its own load workers and devices. */
interface Running {
  name: string
  target: Target
  pool: WorkerPool
  wants: (scenario: string) => boolean
  r: Record<string, unknown>
  devices: DeviceCreds[]
  /** Phase → the machine's CPU ticks over this target's measured turns in it (`inTurn`). */
  ticks: Map<string, { steal: number; total: number }>
}
const running: Running[] = []
let stopping: Promise<unknown> | undefined
const stopAll = () =>
  (stopping ??= Promise.all(
    running.map(async (t) => {
      // the load workers are killed, not asked to disconnect: a worker that died already would
      // make the ask throw before the services are stopped
      t.pool?.close()
      await t.target.stop().catch(() => {})
    }),
  ))
// stopped by a signal (Ctrl-C, timeout): take the services and the load workers down too
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping the targets and the load workers`)
    void stopAll().finally(() => process.exit(130))
  })
}
/*
 * All targets run side by side, each with its own load workers, and within each scenario their
 * measured rounds alternate (A B C, C B A …, see `inTurn`): a ratio then compares figures taken
 * in the same minutes, not several minutes apart (on a shared machine, a different machine).
 * Idle, a target holding its devices costs ~1 % of a core; before each round the others are
 * given time to finish what they still do after theirs (write-behind commits, checkpoints,
 * collections).
 */
const settle = async (measured: Running): Promise<void> => {
  const others = running.filter((o) => o !== measured)
  const until = Date.now() + 10_000
  while (Date.now() < until) {
    const before = others.map((o) => cpuMs(o.target.pid))
    await new Promise((r) => setTimeout(r, 500))
    // /proc counts 10 ms ticks: at most two in 500 ms (≤ 4 % of a core) is idle
    if (others.every((o, i) => cpuMs(o.target.pid) - (before[i] as number) <= 20)) return
  }
  console.error(
    `  (the other targets were still busy after 10 s: ${measured.name} measured anyway)`,
  )
}
let turn = 0
/**
 * The targets that run a scenario (or one round of it), in this turn's order, each after the
 * others settle. Called once per round, the targets' rounds alternate (A B C, C B A, A B C …):
 * every target's median then draws on the same minutes of the machine. With a `phase`, the
 * machine's CPU ticks over each target's turn are added to that phase's (the stolen time,
 * `stolenByPhase`); warm-ups give none.
 */
async function* inTurn(list: Running[], phase?: string): AsyncGenerator<Running> {
  for (const t of scenario.alternate(list, turn++)) {
    await settle(t)
    const before = phase === undefined ? undefined : machineCpuTicks()
    yield t
    const after = before && machineCpuTicks()
    if (phase === undefined || !before || !after) continue
    const sum = t.ticks.get(phase) ?? { steal: 0, total: 0 }
    sum.steal += after.steal - before.steal
    sum.total += after.total - before.total
    t.ticks.set(phase, sum)
  }
}

/**
 * The share of the machine's CPU time the hypervisor stole during each phase's measured turns:
 * each target's own (`stolen` in its results) and all targets' together (`report.machine`).
 */
function stolenByPhase(): void {
  const all = new Map<string, { steal: number; total: number }>()
  for (const t of running) {
    const own: Record<string, number> = {}
    for (const [phase, sum] of t.ticks) {
      const share = stolenShare({ steal: 0, total: 0 }, sum)
      if (share !== undefined) own[phase] = share
      const together = all.get(phase) ?? { steal: 0, total: 0 }
      together.steal += sum.steal
      together.total += sum.total
      all.set(phase, together)
    }
    if (Object.keys(own).length > 0) t.r.stolen = own
  }
  for (const [phase, sum] of all) {
    const share = stolenShare({ steal: 0, total: 0 }, sum)
    if (share !== undefined) (report.machine.stolen ??= {})[phase] = share
  }
}
try {
  for (const name of opts.targets) {
    if (name === 'mosquitto' && !ensureMosquitto()) continue
    const wants = (s: string) => runs(name, s)
    if (!['hold', 'broadcast', 'unicast', 'offline', 'restart'].some(wants)) continue
    const target: Target =
      name === 'mqpush'
        ? await startMqpush({ httpConnections: opts.httpConnections })
        : name === 'mosquitto'
          ? await startMosquitto()
          : await startPlainAedes({
              http: name === 'aedes-http',
              httpConnections: opts.httpConnections,
            })
    const r: Record<string, unknown> = {}
    report.results[name] = r
    // pushed at once, so that a failure from here on stops it too
    const t: Running = {
      name,
      target,
      wants,
      r,
      devices: [],
      pool: undefined as never,
      ticks: new Map(),
    }
    running.push(t)
    t.pool = await WorkerPool.start(opts.workers)
  }
  const holding = running.filter(
    (t) => t.wants('hold') || t.wants('broadcast') || t.wants('unicast'),
  )
  for await (const t of inTurn(holding, 'hold')) {
    console.error(`  ${t.name}: hold, ${opts.devices} devices`)
    const h = await scenario.hold(t.pool, t.target, opts.devices, opts.connectsInFlight)
    t.r.hold = h.result
    t.devices = h.devices
  }
  const each = (s: string) => running.filter((t) => t.wants(s))
  for (const to of ['all', 'topic'] as const) {
    const rounds = new Map<Running, scenario.BroadcastRound[]>()
    for await (const t of inTurn(each('broadcast'))) {
      console.error(`  ${t.name}: broadcast to ${to}, ${opts.broadcastRounds} rounds, alternating`)
      await scenario.broadcastWarmUp(t.pool, t.target, t.devices, to)
      rounds.set(t, [])
    }
    for (let i = 0; i < opts.broadcastRounds; i++) {
      for await (const t of inTurn(each('broadcast'), `broadcast to ${to}`)) {
        rounds.get(t)?.push(await scenario.broadcastRound(t.pool, t.target, t.devices, to, i))
      }
    }
    for (const [t, measured] of rounds) {
      const key = to === 'all' ? 'broadcastAll' : 'broadcastTopic'
      t.r[key] = scenario.broadcastSummary(t.devices.length, measured)
    }
  }
  // the fixed rate in slices of about 2 s, the targets' slices alternating (a tail is a few
  // bad moments of the machine: every target then meets the same minutes), then the HTTP targets'
  // closed loop
  const slices = Math.max(1, Math.floor(opts.seconds / 2))
  const unicast = new Map<Running, scenario.UnicastSlice[]>()
  const warmUps = new Map<Running, scenario.UnicastWarmUp>()
  for await (const t of inTurn(each('unicast'))) {
    console.error(
      `  ${t.name}: unicast, ${opts.rate}/s for ${opts.warmUpSeconds} s unmeasured, then ` +
        `${opts.seconds} s in ${slices} slice${slices === 1 ? '' : 's'}, alternating`,
    )
    const warm = await scenario.unicastWarmUp(
      t.pool,
      t.target,
      t.devices,
      opts.rate,
      opts.warmUpSeconds,
    )
    warmUps.set(t, warm)
    unicast.set(t, [])
  }
  for (let i = 0; i < slices; i++) {
    for await (const t of inTurn(each('unicast'), 'fixed rate')) {
      const { first, count } = scenario.sliceOf(opts.rate, opts.seconds, slices, i)
      const slice = await scenario.unicastSlice(
        t.pool,
        t.target,
        t.devices,
        opts.rate,
        count,
        first,
      )
      unicast.get(t)?.push(slice)
    }
  }
  for (const [t, measured] of unicast) {
    t.r.unicast = {
      ...scenario.unicastSummary(opts.rate, measured),
      rssAfterMb: scenario.rssMb(t.target.pid),
      warmUp: warmUps.get(t),
    }
  }
  const closing = each('unicast').filter((x) => takesHttpPushes(x.target))
  for await (const t of inTurn(closing, 'closed loop')) {
    if (!takesHttpPushes(t.target)) continue // (narrows the type)
    console.error(`  ${t.name}: unicast, closed loop, ${opts.concurrency} in flight`)
    const r = await scenario.closedLoop(t.target, t.devices, opts)
    t.r.unicast = { ...(t.r.unicast as scenario.UnicastResult), ...r }
  }
  for (const t of holding) await t.pool.disconnect()
  const offline = new Map<Running, scenario.OfflineResult[]>()
  // the first rounds unmeasured (DRAIN_WARM_UP_ROUNDS: V8 is still compiling in them)
  for (let i = -opts.offlineWarmUpRounds; i < opts.offlineRounds; i++) {
    for await (const t of inTurn(each('offline'), i < 0 ? undefined : 'offline')) {
      console.error(
        `  ${t.name}: offline, ${opts.offlineDevices} devices × ${opts.offlineMessages}, ` +
          (i < 0
            ? `warm-up round ${i + opts.offlineWarmUpRounds + 1} of ${opts.offlineWarmUpRounds}`
            : `round ${i + 1} of ${opts.offlineRounds}`),
      )
      const r = await scenario.offline(
        t.pool,
        t.target,
        opts.offlineDevices,
        opts.offlineMessages,
        opts.connectsInFlight,
      )
      if (i >= 0) offline.set(t, [...(offline.get(t) ?? []), r])
    }
  }
  for (const [t, rounds] of offline) t.r.offline = scenario.offlineSummary(rounds)
  // (SCENARIOS_OF gives the restart to mqpush alone)
  for await (const t of inTurn(each('restart'), 'restart')) {
    if (!scenario.isMqpush(t.target)) continue // (narrows the type)
    console.error(`  ${t.name}: restart, ${opts.restartMessages} messages queued, kill -9`)
    t.r.restart = await scenario.restart(t.pool, t.target, opts.restartMessages)
  }
  stolenByPhase()
} finally {
  await stopAll()
}

report.finishedAt = new Date().toISOString()
mkdirSync(dirname(resolve(opts.out)), { recursive: true })
writeFileSync(opts.out, JSON.stringify(report, null, 2))
console.log(renderMarkdown(report))
console.error(`\nresults: ${opts.out}`)
