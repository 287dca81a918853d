import type { WorkerPool } from './load/pool.js'
import { type DeviceCreds, stampClock } from './load/protocol.js'
import { ensureWrk, wrkPushRate } from './load/wrk.js'
import type { MqpushTarget } from './targets/mqpush.js'
import {
  cpuMs,
  cpuTimesMs,
  type HttpPushTarget,
  listenOverflows,
  rssBytes,
  takesHttpPushes,
  type Target,
} from './targets/target.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** The send times' clock (shared with the load workers, who read the latencies off it). */
const now = stampClock

export interface HoldResult {
  devices: number
  failed: number
  /** Connected before the measured ones, not counted in the memory per device. */
  warmUpDevices: number
  connectMs: number
  connectsPerSec: number
  /** Accept-queue drops while the measured devices connected (`listenOverflows`). */
  listenOverflows: number | null
  rssBeforeMb: number
  rssAfterMb: number
  bytesPerDevice: number
  /** Devices that connected at once, over all load workers (at most). */
  connectsInFlight: number
}

/**
 * Devices that connect before "before" is read, for every target alike: what the first
 * connections cost once (caches built on first use, such as mqtt-packet's 65536 encoded packet
 * ids, about 7 MB; code compiled for the connect path) is not a cost per device, and counting it
 * made the figure depend on the number of devices (0.7 KB more per device at 10000).
 */
const WARM_UP_DEVICES = 100

/** What `connect` resolves with, and the accept-queue drops meanwhile (null when unread). */
async function countingDrops<T>(connect: () => Promise<T>): Promise<[T, number | null]> {
  const before = listenOverflows()
  const result = await connect()
  const after = listenOverflows()
  return [result, before === undefined || after === undefined ? null : after - before]
}

/**
 * hold: N devices connect with persistent sessions and stay, at most `connectsInFlight` at a
 * time over all load workers (as `offline`); connect rate, memory per connected device.
 */
export async function hold(
  pool: Pick<WorkerPool, 'connect' | 'size'>,
  target: Target,
  n: number,
  connectsInFlight = CONNECTS_IN_FLIGHT,
): Promise<{ result: HoldResult; devices: DeviceCreds[] }> {
  const perWorker = connectsPerWorker(connectsInFlight, pool.size)
  const devices = await target.makeDevices(n)
  const o = { clean: false, subscribe: target.subscriptions, concurrency: perWorker }
  const warmUp = Math.min(WARM_UP_DEVICES, Math.floor(n / 10))
  const w = await pool.connect(target.host, target.port, devices.slice(0, warmUp), o)
  await sleep(1500)
  const before = rssBytes(target.pid)
  const [c, overflows] = await countingDrops(() =>
    pool.connect(target.host, target.port, devices.slice(warmUp), o),
  )
  const failed = w.failed + c.failed
  if (failed > 0)
    console.error(`  ${target.name}: ${failed} connections failed: ${w.firstError ?? c.firstError}`)
  await sleep(2500)
  const after = rssBytes(target.pid)
  return {
    devices,
    result: {
      devices: w.ok + c.ok,
      failed,
      warmUpDevices: w.ok,
      connectMs: Math.round(c.ms),
      connectsPerSec: Math.round((c.ok / c.ms) * 1000),
      listenOverflows: overflows,
      rssBeforeMb: round(before / 2 ** 20, 1),
      rssAfterMb: round(after / 2 ** 20, 1),
      bytesPerDevice: Math.round((after - before) / Math.max(1, c.ok)),
      connectsInFlight: perWorker * pool.size,
    },
  }
}

export interface BroadcastRound {
  /** Deliveries counted (every device, or the run reports it). */
  received: number
  lastMs: number
  deliveriesPerSec: number
  cpuUsPerDelivery: number
  /** Of which in user space: the broker's own work, without the kernel's socket work. */
  userCpuUsPerDelivery: number
}

export interface BroadcastResult {
  devices: number
  /** Deliveries counted in the slowest measured round (every device, or the run reports it). */
  received: number
  rounds: BroadcastRound[]
  /** The figures below are the medians over the measured rounds. */
  lastMs: number
  deliveriesPerSec: number
  /** The broker's CPU time (user + system) per delivery, acknowledgements included. */
  cpuUsPerDelivery: number
  userCpuUsPerDelivery: number
}

/**
 * broadcast: with the devices online, one message to all (or to a topic they all joined),
 * `rounds` times after one unmeasured round; each figure is the median over the rounds. One
 * broadcast to 10000 devices lasts under a second, so a single round is at the mercy of
 * whatever else the host does in that second. (`npm run bench` runs the same pieces —
 * `broadcastWarmUp`, then `broadcastRound` — with the rounds of its targets alternating.)
 */
export async function broadcast(
  pool: WorkerPool,
  target: Target,
  devices: DeviceCreds[],
  to: 'all' | 'topic',
  rounds: number,
): Promise<BroadcastResult> {
  await broadcastWarmUp(pool, target, devices, to)
  const measured: BroadcastRound[] = []
  for (let i = 0; i < rounds; i++) measured.push(await broadcastRound(pool, target, devices, to, i))
  return broadcastSummary(devices.length, measured)
}

/**
 * Before the measured rounds (to a topic: the devices join it first), one unmeasured round,
 * for every target alike: steady state, not the first call's compilation and cache filling.
 */
export async function broadcastWarmUp(
  pool: WorkerPool,
  target: Target,
  devices: DeviceCreds[],
  to: 'all' | 'topic',
): Promise<void> {
  if (to === 'topic') await target.joinTopic(devices)
  await pool.reset()
  await target.broadcast(to, `warm-up ${to}`)
  await pool.waitFor((st) => st.distinct >= devices.length, 120_000)
}

/** One measured broadcast. */
export async function broadcastRound(
  pool: WorkerPool,
  target: Target,
  devices: DeviceCreds[],
  to: 'all' | 'topic',
  i: number,
): Promise<BroadcastRound> {
  await pool.reset()
  const cpuBefore = cpuTimesMs(target.pid)
  const t0 = Date.now()
  await target.broadcast(to, `broadcast ${to} ${i}`)
  const s = await pool.waitFor((st) => st.distinct >= devices.length, 120_000)
  const lastMs = Math.max(1, s.lastAt - t0)
  // the last acknowledgements' bookkeeping (write-behind: up to 50 ms) is part of the cost
  await sleep(100)
  const cpu = cpuTimesMs(target.pid)
  const user = cpu.user - cpuBefore.user
  const all = user + cpu.system - cpuBefore.system
  const perDelivery = (ms: number) => round((ms * 1000) / Math.max(1, s.distinct), 1)
  return {
    received: s.distinct,
    lastMs,
    deliveriesPerSec: Math.round((s.distinct / lastMs) * 1000),
    cpuUsPerDelivery: perDelivery(all),
    userCpuUsPerDelivery: perDelivery(user),
  }
}

/** The medians of measured rounds; `received`: the fewest deliveries a round counted. */
export function broadcastSummary(
  devices: number,
  measured: ReadonlyArray<BroadcastRound>,
): BroadcastResult {
  return {
    devices,
    received: Math.min(devices, ...measured.map((r) => r.received)),
    rounds: [...measured],
    lastMs: median(measured.map((r) => r.lastMs)),
    deliveriesPerSec: median(measured.map((r) => r.deliveriesPerSec)),
    cpuUsPerDelivery: median(measured.map((r) => r.cpuUsPerDelivery)),
    userCpuUsPerDelivery: median(measured.map((r) => r.userCpuUsPerDelivery)),
  }
}

/**
 * Turn `k`'s order of the targets (or builds) measured in turns: as given on even turns,
 * reversed on odd ones (A B C, C B A, A B C …), so that none is always measured first or last.
 */
export function alternate<T>(list: readonly T[], k: number): T[] {
  return k % 2 === 0 ? [...list] : [...list].reverse()
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  const v = [...values].sort((x, y) => x - y)
  const mid = v.length >> 1
  if (v.length === 0) return NaN
  return v.length % 2 === 1 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2
}

export interface UnicastResult {
  ratePerSec: number
  seconds: number
  accepted: number
  delivered: number
  lost: number
  p50Ms: number
  p99Ms: number
  p998Ms: number
  maxMs: number
  /**
   * The broker's CPU time (user + system) per message at the fixed rate, delivery and
   * acknowledgements included: what a message costs when messages come one at a time.
   */
  cpuUsPerMessageAtRate: number
  /**
   * How late after its time the sender sent its latest message, ms: the load generator's own
   * lateness (it stamps a message when it leaves; after a stall it catches up in a burst).
   */
  maxSendLateMs: number
  /**
   * The broker's resident memory right after the fixed rate's slices (`npm run bench`), MB:
   * the heap as the push load left it (the hold's figures are read before any push).
   */
  rssAfterMb?: number
  /** The unmeasured warm-up before the slices (`npm run bench`): its seconds and tail. */
  warmUp?: UnicastWarmUp
  /** Each slice's own figures, when the fixed rate ran in slices (`npm run bench`). */
  slices?: Array<{
    accepted: number
    lost: number
    p50Ms: number
    p998Ms: number
    maxMs: number
    maxSendLateMs: number
  }>
  /** HTTP targets (mqpush, aedes-http), closed loop: accepted pushes a second. */
  maxAcceptedPerSec?: number
  /** HTTP targets, closed loop: the service's CPU time per accepted push, delivery included. */
  cpuUsPerPush?: number
  /** HTTP targets, closed loop: the user-space part of `cpuUsPerPush`. */
  userCpuUsPerPush?: number
  /** What sent the closed loop: wrk when available, else the bench's own Node client. */
  closedLoopClient?: 'wrk' | 'node'
  concurrency?: number
}

/**
 * unicast: one message to one device at a time, at a fixed rate, sent the way the target's
 * senders send (mqpush and the aedes-http baseline: an HTTP push by regId; a bare broker: an
 * MQTT publish to the device's topic, from one publisher connection); end-to-end latency. For
 * the HTTP targets, then the highest rate of accepted push requests. (`npm run bench` runs the
 * same pieces — `unicastWarmUp`, slices of the fixed rate with its targets' slices alternating,
 * then `closedLoop` — and merges the slices with `unicastSummary`.)
 */
export async function unicast(
  pool: WorkerPool,
  target: Target,
  devices: DeviceCreds[],
  o: {
    rate: number
    seconds: number
    concurrency: number
    closedLoop?: boolean
    /** default UNICAST_WARM_UP_SECONDS */
    warmUpSeconds?: number
    /** whether the load workers collect before the warm-up (default true; see unicastWarmUp) */
    collectBeforeWarmUp?: boolean
  },
): Promise<UnicastResult> {
  await unicastWarmUp(pool, target, devices, o.rate, o.warmUpSeconds, {
    collect: o.collectBeforeWarmUp ?? true,
  })
  const result = unicastSummary(o.rate, [
    await unicastSlice(pool, target, devices, o.rate, Math.round(o.rate * o.seconds), 0),
  ])
  if (!takesHttpPushes(target) || o.closedLoop === false) return result
  return { ...result, ...(await closedLoop(target, devices, o)) }
}

/** What one slice of the fixed rate measured; slices add up (`unicastSummary`). */
export interface UnicastSlice {
  seconds: number
  accepted: number
  /** Distinct messages delivered. */
  delivered: number
  /** End-to-end latency of every delivered message, ms. */
  latencies: number[]
  /** The broker's CPU time over the slice, deliveries included, ms. */
  cpuMs: number
  /** How late after its time the sender sent its latest message, ms (the generator's own). */
  maxSendLateMs: number
}

/**
 * Open loop at a fixed rate: messages leave on schedule whatever the answers do. Returns how
 * many were accepted, and how late after its time the latest one left (a message is stamped
 * when it leaves: a sender that stalls, then catches up, hides its stall from the latencies
 * and sends a burst instead).
 */
async function openLoop(
  target: Target,
  devices: DeviceCreds[],
  rate: number,
  total: number,
  first: number,
): Promise<{ accepted: number; maxLateMs: number; startedAt: number }> {
  let ok = 0
  let maxLateMs = 0
  let failed = 0
  let firstError: unknown
  const inflight: Array<Promise<void>> = []
  const start = now()
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate
    const wait = due - now()
    if (wait > 1) await sleep(wait)
    const device = devices[(first + i) % devices.length] as DeviceCreds
    const sentAt = now()
    if (sentAt - due > maxLateMs) maxLateMs = sentAt - due
    inflight.push(
      target.sendOne(device, `t=${sentAt}`).then(
        (accepted) => {
          if (accepted) ok++
        },
        // not accepted: counted as such, never an unhandled rejection mid-loop
        (err: unknown) => {
          failed++
          firstError ??= err
        },
      ),
    )
  }
  await Promise.all(inflight)
  if (failed > 0) console.error(`  unicast: ${failed} messages failed: ${String(firstError)}`)
  return { accepted: ok, maxLateMs, startedAt: start }
}

/**
 * The fixed rate's unmeasured warm-up in `npm run bench`, seconds: steady state, not the
 * broker's start. A push through mqpush runs a few hundred functions that V8 goes on optimizing
 * for some 5 s under load; after the 2 s warm-up the bench had until the seventeenth session,
 * the service's one V8 helper thread was still compiling (~20 optimizations a second) in the
 * first measured seconds, whose p99.8 was about twice the later seconds' (docs/benchmarks-log.md,
 * "The fixed rate's first seconds, and the full collections"). The warm-up's own tail is still
 * reported, whole and split at its first second (see `warmUpTail`).
 */
export const UNICAST_WARM_UP_SECONDS = 8

/**
 * The offline drain's unmeasured rounds, per build in `npm run bench:ab` and per target in `npm
 * run bench` (there since the twenty-third session: run GA's first measured round cost mqpush
 * 56.5 µs a message, its others 27–28): as with the fixed rate, V8 goes on compiling the
 * reconnect and acknowledgement paths for several rounds, on its helper thread, whose CPU counts
 * in the service's (docs/benchmarks-log.md, "Queue-row deletes gathered, the drain's first rounds,
 * and a baseline's bytes").
 */
export const DRAIN_WARM_UP_ROUNDS = 4

/**
 * Devices that connect at once, over all load workers: the hold scenario's devices, and the
 * offline scenario's when they come back (and when they first create their sessions). Below
 * Mosquitto's listen backlog (100, fixed in its code; Node's is 511), so that no broker's accept
 * queue overflows: a SYN dropped there is sent again a second later, and a round with drops
 * measured the kernel's retransmission timer, not the broker. Before the twenty-third session
 * each worker opened 64 at once (128 in `bench:ab`, 256 in `npm run bench`); once the load
 * workers got cheaper, Mosquitto dropped SYNs in most drain rounds (docs/benchmarks-log.md, "The
 * load generator's own CPU"). The hold scenario took the bound in the twenty-fourth session
 * (Mosquitto had dropped 162–229 SYNs in each full run's hold).
 */
export const CONNECTS_IN_FLIGHT = 96

/**
 * The connects each of `workers` load workers keeps in flight for a bound over all of them: the
 * same number each, rounded down (what the bound really was is this times the workers). A bound
 * below one connect a worker is refused.
 */
export function connectsPerWorker(connectsInFlight: number, workers: number): number {
  const perWorker = Math.floor(connectsInFlight / workers)
  if (perWorker < 1) {
    throw new Error(
      `${connectsInFlight} connects in flight cannot be spread over ${workers} load workers`,
    )
  }
  return perWorker
}

/** A process's resident memory in MB, to 0.1 (the figures' unit in the JSON). */
export function rssMb(pid: number): number {
  return round(rssBytes(pid) / 2 ** 20, 1)
}

/** What the warm-up's messages measured: the tail of a target's first seconds at the rate. */
export interface UnicastWarmUp {
  seconds: number
  /** absent when none of the warm-up's messages came back */
  p998Ms?: number
  /**
   * The same tail split at the warm-up's first second, by when each message was sent: a target
   * that falls behind at the start of the rate, while V8 compiles its push path, makes the
   * first; the second is the warm-up once started (twenty-fifth session: in runs whose warm-up
   * had a p99.8 of seconds, every message over 150 ms late had been sent in its first 1.2 s).
   * Absent when no message of that part came back.
   */
  firstSecondP998Ms?: number
  afterFirstSecondP998Ms?: number
}

/**
 * Unmeasured seconds at the rate before the measured ones (their tail is returned). The load
 * workers collect first (`WorkerPool.reset`), unless `collect` is false: a target's first warm-up
 * collects, and `bench:ab`'s short warm-up before each of its rounds does not (collected each
 * round, the workers would scavenge together in every round, as in the fifteenth session).
 */
export async function unicastWarmUp(
  pool: WorkerPool,
  target: Target,
  devices: DeviceCreds[],
  rate: number,
  seconds: number = UNICAST_WARM_UP_SECONDS,
  { collect = true }: { collect?: boolean } = {},
): Promise<UnicastWarmUp> {
  await pool.reset({ collectInWorkers: collect })
  const total = Math.round(rate * seconds)
  const { accepted: warm, startedAt } = await openLoop(target, devices, rate, total, 0)
  const s = await pool.waitFor((st) => st.distinct >= warm, 30_000)
  if (s.distinct < warm) console.error(`  warm-up: ${warm - s.distinct} messages not delivered`)
  return { seconds, ...warmUpTail(s.latencies, s.sentAts, startedAt) }
}

/**
 * The warm-up's p99.8, whole and split by send time at `startedAt + 1000` (a message sent
 * exactly then is after the first second). `sentAts` pairs with `latencies` index by index;
 * when the two do not line up the split is left out, and said so. A part none of whose messages
 * came back has no figure.
 */
export function warmUpTail(
  latencies: readonly number[],
  sentAts: readonly number[],
  startedAt: number,
): Omit<UnicastWarmUp, 'seconds'> {
  const tail = (xs: readonly number[]) => pctMs(ascending(xs), 0.998)
  const first: number[] = []
  const after: number[] = []
  if (sentAts.length === latencies.length) {
    latencies.forEach((l, i) => ((sentAts[i] as number) < startedAt + 1000 ? first : after).push(l))
  } else {
    console.error(
      `  warm-up: ${sentAts.length} send times for ${latencies.length} latencies: not split`,
    )
  }
  return {
    ...(latencies.length > 0 && { p998Ms: tail(latencies) }),
    ...(first.length > 0 && { firstSecondP998Ms: tail(first) }),
    ...(after.length > 0 && { afterFirstSecondP998Ms: tail(after) }),
  }
}

/**
 * Slice `i` of `slices` of the fixed rate: its first message's number and how many it sends.
 * The slices follow each other without gap or overlap and add up to `rate × seconds` messages
 * (rounded), whatever the rate.
 */
export function sliceOf(
  rate: number,
  seconds: number,
  slices: number,
  i: number,
): { first: number; count: number } {
  const at = (k: number) => Math.round((rate * seconds * k) / slices)
  return { first: at(i), count: at(i + 1) - at(i) }
}

/**
 * `count` messages of the fixed rate, measured; they go to the devices from the `first`-th on
 * (slices that follow each other pass on through the devices, see `sliceOf`).
 */
export async function unicastSlice(
  pool: WorkerPool,
  target: Target,
  devices: DeviceCreds[],
  rate: number,
  count: number,
  first: number,
): Promise<UnicastSlice> {
  const seconds = count / rate
  await pool.reset({ collectInWorkers: false })
  const cpuBefore = cpuMs(target.pid)
  const { accepted, maxLateMs } = await openLoop(target, devices, rate, count, first)
  const s = await pool.waitFor((st) => st.distinct >= accepted, 30_000)
  return {
    seconds,
    accepted,
    delivered: Math.min(s.distinct, accepted),
    latencies: s.latencies,
    cpuMs: cpuMs(target.pid) - cpuBefore,
    maxSendLateMs: maxLateMs,
  }
}

/** Slices of the fixed rate as one result: their latencies merged, their counts and CPU added. */
export function unicastSummary(rate: number, slices: readonly UnicastSlice[]): UnicastResult {
  const sum = (f: (s: UnicastSlice) => number) => slices.reduce((a, s) => a + f(s), 0)
  const accepted = sum((s) => s.accepted)
  const lat = ascending(slices.flatMap((s) => s.latencies))
  return {
    ratePerSec: rate,
    seconds: sum((s) => s.seconds),
    accepted,
    delivered: sum((s) => s.delivered),
    lost: accepted - sum((s) => s.delivered),
    p50Ms: pctMs(lat, 0.5),
    p99Ms: pctMs(lat, 0.99),
    p998Ms: pctMs(lat, 0.998),
    maxMs: round(lat[lat.length - 1] ?? 0, 2),
    cpuUsPerMessageAtRate: Math.round((sum((s) => s.cpuMs) * 1000) / Math.max(1, accepted)),
    maxSendLateMs: round(Math.max(0, ...slices.map((s) => s.maxSendLateMs)), 2),
    ...(slices.length > 1 && {
      slices: slices.map((s) => {
        const l = ascending(s.latencies)
        return {
          accepted: s.accepted,
          lost: s.accepted - s.delivered,
          p50Ms: pctMs(l, 0.5),
          p998Ms: pctMs(l, 0.998),
          maxMs: round(l[l.length - 1] ?? 0, 2),
          maxSendLateMs: round(s.maxSendLateMs, 2),
        }
      }),
    }),
  }
}

/**
 * HTTP targets only (mqpush, aedes-http) — closed loop: as many push requests as the service
 * accepts with `concurrency` in flight (wrk when available, else the bench's own Node client).
 * The service's CPU is read until `settleMs` after the last request (default 2 s): the
 * deliveries of the last requests are part of the cost, and done before what comes next.
 */
export async function closedLoop(
  target: HttpPushTarget,
  devices: DeviceCreds[],
  o: { seconds: number; concurrency: number; settleMs?: number },
): Promise<
  Required<
    Pick<
      UnicastResult,
      'maxAcceptedPerSec' | 'cpuUsPerPush' | 'userCpuUsPerPush' | 'closedLoopClient'
    >
  > & {
    concurrency: number
  }
> {
  let maxAcceptedPerSec: number
  let acceptedClosed: number
  let closedClient: 'wrk' | 'node'
  const before = cpuTimesMs(target.pid)
  if (ensureWrk()) {
    closedClient = 'wrk'
    const r = await wrkPushRate({
      url: `${target.httpUrl}/v1/messages`,
      secret: target.secret,
      regIds: devices.map((d) => d.clientId),
      seconds: o.seconds,
      connections: o.concurrency,
    })
    maxAcceptedPerSec = r.acceptedPerSec
    acceptedClosed = r.accepted
  } else {
    closedClient = 'node'
    let okClosed = 0
    const until = now() + o.seconds * 1000
    let k = 0
    const closedStart = now()
    await Promise.all(
      Array.from({ length: o.concurrency }, async () => {
        while (now() < until) {
          const device = devices[k++ % devices.length] as DeviceCreds
          if (await target.sendOne(device, `t=${now()}`)) okClosed++
        }
      }),
    )
    maxAcceptedPerSec = Math.round((okClosed / (now() - closedStart)) * 1000)
    acceptedClosed = okClosed
  }
  await sleep(o.settleMs ?? 2000)
  const after = cpuTimesMs(target.pid)
  const per = (ms: number) => Math.round((ms * 1000) / Math.max(1, acceptedClosed))
  return {
    maxAcceptedPerSec,
    cpuUsPerPush: per(after.user - before.user + after.system - before.system),
    userCpuUsPerPush: per(after.user - before.user),
    closedLoopClient: closedClient,
    concurrency: o.concurrency,
  }
}

export const isMqpush = (t: Target): t is MqpushTarget => 'crashAndRestart' in t

export interface OfflineResult {
  devices: number
  perDevice: number
  expected: number
  delivered: number
  duplicates: number
  drainMs: number
  /** The broker's CPU time (user + system) per delivered message: reconnects, drain, acks. */
  cpuUsPerDelivery: number
  expiredDelivered: number | null
  /** Accept-queue drops while the devices reconnected (`listenOverflows`). */
  listenOverflows: number | null
  /** Devices that connected at once at the reconnect, over all load workers (at most). */
  connectsInFlight: number
}

/**
 * The scenarios each target runs: a bare broker what a bare broker can, the aedes-http floor
 * the unicast (its devices held), mqpush all.
 */
export const SCENARIOS_OF: Readonly<Record<string, readonly string[]>> = {
  mqpush: ['hold', 'broadcast', 'unicast', 'offline', 'restart'],
  aedes: ['hold', 'broadcast', 'unicast', 'offline'],
  mosquitto: ['hold', 'broadcast', 'unicast', 'offline'],
  'aedes-http': ['hold', 'unicast'],
}

/**
 * offline: K new devices away while Q messages each are queued, then all reconnect, at most
 * `connectsInFlight` at a time over all load workers (`connectsPerWorker`). One round; `npm run
 * bench` runs several, the targets' rounds alternating, and reports the medians
 * (`offlineSummary`).
 */
export async function offline(
  pool: Pick<WorkerPool, 'connect' | 'disconnect' | 'reset' | 'waitFor' | 'size'>,
  target: Target,
  k: number,
  q: number,
  connectsInFlight = CONNECTS_IN_FLIGHT,
): Promise<OfflineResult> {
  const perWorker = connectsPerWorker(connectsInFlight, pool.size)
  const devices = await target.makeDevices(k)
  // a first connection creates the persistent sessions (the baselines subscribe here)
  await pool.connect(target.host, target.port, devices, {
    clean: false,
    subscribe: target.subscriptions,
    concurrency: perWorker,
  })
  await pool.disconnect()
  for (let j = 0; j < q; j++) await target.unicast(devices, `id=q${j}`)
  let expiredDelivered: number | null = null
  if (target.name === 'mqpush') {
    await target.unicast(devices, 'expired=1', 1)
    await sleep(1200)
    expiredDelivered = 0
  }
  await pool.reset()
  const cpuBefore = cpuMs(target.pid)
  const t0 = Date.now()
  const [, overflows] = await countingDrops(() =>
    pool.connect(target.host, target.port, devices, {
      clean: false,
      concurrency: perWorker,
    }),
  )
  const s = await pool.waitFor((st) => st.distinct >= k * q, 120_000)
  await sleep(100)
  const cpu = cpuMs(target.pid) - cpuBefore
  if (expiredDelivered !== null) expiredDelivered = s.expiredReceived
  await pool.disconnect()
  // a bare broker's sessions of this round end with a clean connect, so that it does not carry
  // earlier rounds' sessions into the next (Mosquitto's drains got slower round after round).
  // mqpush refuses clean sessions (CONNACK 5): a device's session lasts as long as its
  // registration, and the round's devices stay registered, as an app's would
  if (!isMqpush(target)) {
    const ended = await pool.connect(target.host, target.port, devices, {
      clean: true,
      concurrency: perWorker,
    })
    if (ended.failed > 0) {
      console.error(
        `  ${target.name}: ${ended.failed} sessions not ended after the round: ${ended.firstError}`,
      )
    }
    await pool.disconnect()
  }
  return {
    devices: k,
    perDevice: q,
    expected: k * q,
    delivered: s.distinct - (expiredDelivered ?? 0),
    duplicates: s.duplicates,
    drainMs: Math.max(0, s.lastAt - t0),
    cpuUsPerDelivery: round((cpu * 1000) / Math.max(1, s.distinct), 1),
    expiredDelivered,
    listenOverflows: overflows,
    connectsInFlight: perWorker * pool.size,
  }
}

export interface OfflineSummary extends OfflineResult {
  /** Every round's figures; the summary's times are their medians, its counts their sums. */
  rounds: OfflineResult[]
}

/**
 * Rounds of the offline scenario as one result: the drain time and the CPU per delivered
 * message are the medians over the rounds, what was expected, delivered, duplicated or expired
 * and delivered anyway the sums (a message lost in any round shows), and so are the
 * accept-queue drops while reconnecting.
 */
export function offlineSummary(rounds: readonly OfflineResult[]): OfflineSummary {
  const sum = (f: (r: OfflineResult) => number) => rounds.reduce((a, r) => a + f(r), 0)
  /** A count some rounds could not give (null): none for the whole. */
  const sumOrNull = (f: (r: OfflineResult) => number | null) =>
    rounds.some((r) => f(r) === null) ? null : sum((r) => f(r) ?? 0)
  const first = rounds[0]
  if (!first) throw new Error('no offline rounds')
  return {
    devices: first.devices,
    perDevice: first.perDevice,
    expected: sum((r) => r.expected),
    delivered: sum((r) => r.delivered),
    duplicates: sum((r) => r.duplicates),
    drainMs: median(rounds.map((r) => r.drainMs)),
    cpuUsPerDelivery: median(rounds.map((r) => r.cpuUsPerDelivery)),
    expiredDelivered: sumOrNull((r) => r.expiredDelivered),
    listenOverflows: sumOrNull((r) => r.listenOverflows),
    connectsInFlight: first.connectsInFlight,
    rounds: [...rounds],
  }
}

export interface RestartResult {
  queued: number
  servingAgainMs: number
  delivered: number
  lost: number
}

/** restart: M messages queued for offline devices, kill -9, start again, count what arrives. */
export async function restart(
  pool: WorkerPool,
  target: MqpushTarget,
  m: number,
): Promise<RestartResult> {
  const k = Math.min(1000, m)
  const q = Math.ceil(m / k)
  const devices = await target.makeDevices(k)
  for (let j = 0; j < q; j++) await target.unicast(devices, `id=r${j}`)
  const servingAgainMs = await target.crashAndRestart()
  await pool.reset()
  await pool.connect(target.host, target.port, devices, { clean: false })
  const s = await pool.waitFor((st) => st.distinct >= k * q, 180_000)
  await pool.disconnect()
  return {
    queued: k * q,
    servingAgainMs: Math.round(servingAgainMs),
    delivered: s.distinct,
    lost: Math.max(0, k * q - s.distinct),
  }
}

/** A sorted copy, lowest first. */
const ascending = (xs: readonly number[]): number[] => [...xs].sort((a, b) => a - b)

/** The `p` quantile of ascending latencies, in ms to 0.01 (0 when there are none). */
function pctMs(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0
  return round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number, 2)
}

function round(x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}
