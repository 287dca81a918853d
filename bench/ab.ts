import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { WorkerPool, warnWithoutHarnessFlags } from './load/pool.js'
import { ensureWrk } from './load/wrk.js'
import { comparePaired, describePaired } from './paired.js'
import { buildOf, describeBuild } from './report.js'
import {
  alternate,
  broadcast,
  closedLoop as scenarioClosedLoop,
  hold,
  median,
  offline,
  SCENARIOS_OF,
  unicast,
  UNICAST_WARM_UP_SECONDS,
  CONNECTS_IN_FLIGHT,
  connectsPerWorker,
  DRAIN_WARM_UP_ROUNDS,
  unicastWarmUp,
} from './scenarios.js'
import { ensureMosquitto, startMosquitto, startPlainAedes } from './targets/baselines.js'
import { serviceNodeFlagsOf, startMqpush } from './targets/mqpush.js'
import { cpuTimesMs, type HttpPushTarget, type Target } from './targets/target.js'

/**
 * `npm run bench:ab`: this build against another one (or plain Aedes, Mosquitto, or plain Aedes
 * behind a bare node:http push endpoint: `aedes-http`), both running at once,
 * with the measured rounds alternating between them (A B, B A, A B …). On a shared machine a
 * run-to-run comparison moves by 10–50 %; rounds that alternate within one minute see the same
 * machine. Scenarios: `broadcast` (to all, CPU per delivery), `closed-loop` (wrk, CPU per
 * accepted push), `fixed-rate` (unicast at a fixed rate: CPU per message, p50, p99.8) and
 * `drain` (the offline scenario: CPU per delivered message, reconnects included, drain time).
 * Prints medians and every round, then the rounds compared pair by pair (`bench/paired.ts`):
 * the median ratio with an interval, and the sign test.
 */
const { values: a } = parseArgs({
  options: {
    baseline: { type: 'string' },
    scenario: { type: 'string', default: 'broadcast' },
    rounds: { type: 'string', default: '10' },
    // no defaults here: an option the scenario does not use is refused (see below)
    devices: { type: 'string' },
    to: { type: 'string' },
    seconds: { type: 'string' },
    rate: { type: 'string' },
    'warm-up': { type: 'string' },
    'warm-up-rounds': { type: 'string' },
    'offline-devices': { type: 'string' },
    'offline-messages': { type: 'string' },
    'connects-in-flight': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
})
if (a.help || !a.baseline) {
  console.log(`npm run bench:ab -- --baseline DIR|aedes|mosquitto|aedes-http [options]
  --baseline DIR         another checkout, built (DIR/dist/api/main.js); or "aedes" or
                         "mosquitto" (not closed-loop; Mosquitto is installed from Debian if
                         missing); or "aedes-http", plain Aedes behind a bare node:http push
                         endpoint (closed-loop and fixed-rate: the floor of an HTTP push)
  --scenario broadcast|closed-loop|fixed-rate|drain                             [broadcast]
  --rounds N             measured rounds of each build                         [10]
  --devices N            broadcast, closed-loop, fixed-rate: devices held online [10000]
  --to all|topic         broadcast: to every device, or to a topic they all joined [all]
  --seconds S            closed-loop, fixed-rate: length of a round            [4]
  --rate R               fixed-rate: messages per second                       [2000]
  --warm-up S            fixed-rate: unmeasured seconds of each build, once    [${UNICAST_WARM_UP_SECONDS}]
  --warm-up-rounds N     drain: unmeasured rounds of each build, first         [${DRAIN_WARM_UP_ROUNDS}]
  --offline-devices K    drain: devices that reconnect each round (new ones)   [1000]
  --offline-messages Q   drain: messages queued for each                       [20]
  --connects-in-flight N drain: devices connecting at once, over both workers  [${CONNECTS_IN_FLIGHT}]`)
  process.exit(a.help ? 0 : 1)
}
const int = (name: string, v: string) => {
  const n = Number(v)
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer`)
  return n
}
/** The options each scenario reads; giving another one is a mistake worth saying. */
const USES: Record<string, ReadonlyArray<keyof typeof a>> = {
  broadcast: ['devices', 'to'],
  'closed-loop': ['devices', 'seconds'],
  'fixed-rate': ['devices', 'seconds', 'rate', 'warm-up'],
  drain: ['offline-devices', 'offline-messages', 'warm-up-rounds', 'connects-in-flight'],
}
const uses = USES[a.scenario]
if (!uses) throw new Error('--scenario is broadcast, closed-loop, fixed-rate or drain')
for (const name of new Set(Object.values(USES).flat())) {
  if (a[name] !== undefined && !uses.includes(name)) {
    throw new Error(`--${name} is not used by the ${a.scenario} scenario`)
  }
}
const to = a.to ?? 'all'
if (to !== 'all' && to !== 'topic') throw new Error('--to is all or topic')
const rounds = int('rounds', a.rounds)
const devicesPer = int('devices', a.devices ?? '10000')
const seconds = int('seconds', a.seconds ?? '4')
const rate = int('rate', a.rate ?? '2000')
const warmUpSeconds = int('warm-up', a['warm-up'] ?? String(UNICAST_WARM_UP_SECONDS))
const warmUpRounds =
  a['warm-up-rounds'] === '0'
    ? 0
    : int('warm-up-rounds', a['warm-up-rounds'] ?? String(DRAIN_WARM_UP_ROUNDS))
const offlineDevices = int('offline-devices', a['offline-devices'] ?? '1000')
const offlineMessages = int('offline-messages', a['offline-messages'] ?? '20')
const connectsInFlight = int(
  'connects-in-flight',
  a['connects-in-flight'] ?? String(CONNECTS_IN_FLIGHT),
)
/** Load workers a side. */
const WORKERS = 2
connectsPerWorker(connectsInFlight, WORKERS) // refused up front, not after the warm-up
if (devicesPer > 18_000 || offlineDevices > 18_000)
  throw new Error('more than 18000 devices exceeds the 20000 open files a process may hold')
const bare = a.baseline === 'aedes' || a.baseline === 'mosquitto'
// a named baseline runs what it runs in the full bench (SCENARIOS_OF)
const needs = {
  broadcast: 'broadcast',
  'closed-loop': 'unicast',
  'fixed-rate': 'unicast',
  drain: 'offline',
}
const baselineRuns = SCENARIOS_OF[a.baseline]
if (baselineRuns && !baselineRuns.includes(needs[a.scenario as keyof typeof needs])) {
  throw new Error(`the ${a.baseline} baseline does not run the ${a.scenario} scenario`)
}
if (a.scenario === 'closed-loop' && (bare || !ensureWrk())) {
  throw new Error('closed-loop needs wrk and two HTTP targets (mqpush builds, or aedes-http)')
}
warnWithoutHarnessFlags()

interface Round {
  cpuUs: number
  userCpuUs: number
  perSec: number
  /** fixed-rate only */
  p50Ms?: number
  p998Ms?: number
  /** fixed-rate only: how late after its time the sender sent its latest message */
  sendLateMs?: number
  /** drain only */
  drainMs?: number
  /** drain only: the accept-queue drops while reconnecting (`listenOverflows`), null unread */
  dropped?: number | null
}
const sides = ['baseline', 'this build'] as const
type Side = (typeof sides)[number]

if (a.baseline === 'mosquitto' && !ensureMosquitto()) process.exit(1)
// stopped by a signal (Ctrl-C, timeout): exit, so that the targets' clean-up at exit runs
// (killed at once; the default action would leave them running)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping`)
    process.exit(130)
  })
}
const targets: Record<Side, Target> = {
  baseline:
    a.baseline === 'aedes' || a.baseline === 'aedes-http'
      ? await startPlainAedes({ http: a.baseline === 'aedes-http' })
      : a.baseline === 'mosquitto'
        ? await startMosquitto()
        : await startMqpush({
            main: resolve(a.baseline, 'dist/api/main.js'),
            serviceFlags: await serviceNodeFlagsOf(resolve(a.baseline)),
          }),
  'this build': await startMqpush(),
}
const pools: Record<Side, WorkerPool> = {
  baseline: await WorkerPool.start(WORKERS),
  'this build': await WorkerPool.start(WORKERS),
}
const results: Record<Side, Round[]> = { baseline: [], 'this build': [] }
try {
  // the drain's rounds bring their own devices (each round new ones, offline): none held
  const held = async (side: Side) =>
    a.scenario === 'drain' ? [] : (await hold(pools[side], targets[side], devicesPer)).devices
  const devices = { baseline: await held('baseline'), 'this build': await held('this build') }
  const closedLoop = async (side: Side, s: number): Promise<Round> => {
    const r = await scenarioClosedLoop(targets[side] as HttpPushTarget, devices[side], {
      seconds: s,
      concurrency: 64,
      settleMs: 1000,
    })
    return { cpuUs: r.cpuUsPerPush, userCpuUs: r.userCpuUsPerPush, perSec: r.maxAcceptedPerSec }
  }
  const fixedRate = async (side: Side): Promise<Round> => {
    const t = targets[side]
    const before = cpuTimesMs(t.pid)
    // each round's own 2 s (the rounds before it warmed the build up: see the first warm-up)
    const r = await unicast(pools[side], t, devices[side], {
      rate,
      seconds,
      concurrency: 1,
      closedLoop: false,
      warmUpSeconds: 2,
      // the first warm-up collected; collected every round, the workers would scavenge together
      collectBeforeWarmUp: false,
    })
    const after = cpuTimesMs(t.pid)
    if (r.lost > 0) console.error(`  ${side}: ${r.lost} messages lost`)
    return {
      cpuUs: r.cpuUsPerMessageAtRate,
      // the user share of the round, warm-up included, applied to the measured figure
      userCpuUs: Math.round(
        (r.cpuUsPerMessageAtRate * (after.user - before.user)) /
          Math.max(1, after.user - before.user + after.system - before.system),
      ),
      perSec: r.ratePerSec,
      p50Ms: r.p50Ms,
      p998Ms: r.p998Ms,
      sendLateMs: r.maxSendLateMs,
    }
  }
  const drain = async (side: Side): Promise<Round> => {
    const r = await offline(
      pools[side],
      targets[side],
      offlineDevices,
      offlineMessages,
      connectsInFlight,
    )
    if (r.delivered < r.expected)
      console.error(`  ${side}: ${r.expected - r.delivered} not delivered`)
    return {
      cpuUs: r.cpuUsPerDelivery,
      userCpuUs: NaN,
      perSec: Math.round((r.delivered * 1000) / Math.max(1, r.drainMs)),
      drainMs: r.drainMs,
      dropped: r.listenOverflows,
    }
  }
  const round = async (side: Side): Promise<Round> => {
    if (a.scenario === 'closed-loop') return closedLoop(side, seconds)
    if (a.scenario === 'fixed-rate') return fixedRate(side)
    if (a.scenario === 'drain') return drain(side)
    // (to a topic: every round joins the devices again, before its unmeasured warm-up)
    const r = (await broadcast(pools[side], targets[side], devices[side], to, 1)).rounds[0]!
    return {
      cpuUs: r.cpuUsPerDelivery,
      userCpuUs: r.userCpuUsPerDelivery,
      perSec: r.deliveriesPerSec,
    }
  }
  if (a.scenario === 'closed-loop') for (const side of sides) await closedLoop(side, 2) // warm-up
  if (a.scenario === 'fixed-rate') {
    // as long as the full bench's, once: V8 optimizes the push path for some 5 s under load
    for (const side of sides) {
      await unicastWarmUp(pools[side], targets[side], devices[side], rate, warmUpSeconds)
    }
  }
  if (a.scenario === 'drain') {
    // until V8 has compiled the drain's code: its compiler thread's CPU counts in the rounds
    for (let i = 0; i < warmUpRounds; i++) for (const side of alternate(sides, i)) await drain(side)
  }
  for (let i = 0; i < rounds; i++) {
    for (const side of alternate(sides, i)) results[side].push(await round(side))
  }
} finally {
  for (const side of sides) {
    await pools[side].disconnect().catch(() => {})
    pools[side].close()
    await targets[side].stop()
  }
}

const unit = {
  broadcast: 'delivery',
  'closed-loop': 'accepted push',
  'fixed-rate': 'message',
  drain: 'delivered message',
}[a.scenario as 'broadcast' | 'closed-loop' | 'fixed-rate' | 'drain']
const latency = a.scenario === 'fixed-rate'
const drained = a.scenario === 'drain'
const r2 = (x: number) => Math.round(x * 100) / 100
// which builds ran (absent outside a git checkout): a comparison kept names what it compared
const builds: Array<[string, ReturnType<typeof buildOf>]> = [
  ['this build', buildOf(fileURLToPath(new URL('.', import.meta.url)))],
]
if (!bare && !baselineRuns) builds.push([String(a.baseline), buildOf(resolve(a.baseline))])
const named = builds.flatMap(([name, build]) => (build ? [`${name} ${describeBuild(build)}`] : []))
if (named.length > 0) console.log(`\nBuilds: ${named.join('; ')}.`)
console.log(
  `\n${a.scenario}${a.scenario === 'broadcast' ? ` to ${to}` : ''}${drained ? `, at most ${connectsInFlight} connects in flight` : ''}, ${rounds} rounds each, alternating; medians (↓ CPU, ↑ rate):\n`,
)
console.log(
  `| build | CPU per ${unit} | of which user | per second |${latency ? " p50 | p99.8 | p99.8 each round | the sender's latest send each round |" : ''}${drained ? ' drain time | drain time each round | accept-queue drops each round |' : ''} CPU each round |`,
)
console.log(
  `|---|---|---|---|${latency ? '---|---|---|---|' : ''}${drained ? '---|---|---|' : ''}---|`,
)
for (const side of sides) {
  const r = results[side]
  const name = side === 'baseline' ? String(a.baseline) : side
  const lat = latency
    ? ` ${r2(median(r.map((x) => x.p50Ms ?? NaN)))} ms | ${r2(median(r.map((x) => x.p998Ms ?? NaN)))} ms | ${r.map((x) => x.p998Ms).join(', ')} | ${r.map((x) => x.sendLateMs).join(', ')} |`
    : ''
  // the offline scenario reads the service's CPU as one figure: no user share
  const user = drained ? '—' : `${median(r.map((x) => x.userCpuUs))} µs`
  const drain = drained
    ? ` ${median(r.map((x) => x.drainMs ?? NaN))} ms | ${r.map((x) => x.drainMs).join(', ')} | ${r.map((x) => x.dropped ?? '—').join(', ')} |`
    : ''
  console.log(
    `| ${name} | ${median(r.map((x) => x.cpuUs))} µs | ${user} | ${median(r.map((x) => x.perSec))} |${lat}${drain} ${r.map((x) => x.cpuUs).join(', ')} |`,
  )
}
// round i of each build ran back to back: compared pair by pair (bench/paired.ts)
const paired = (figure: string, f: (r: Round) => number | undefined) => {
  const of = (side: Side) => results[side].map((r) => f(r) ?? NaN)
  console.log(`- ${describePaired(figure, comparePaired(of('baseline'), of('this build')))}`)
}
console.log(`\nthis build ÷ ${String(a.baseline)}, round by round (rounds paired as they ran):\n`)
paired(`CPU per ${unit}`, (r) => r.cpuUs)
if (latency) paired('p99.8', (r) => r.p998Ms)
if (drained) paired('drain time', (r) => r.drainMs)
else if (!latency) paired('per second (↑ better)', (r) => r.perSec)
