import type { WorkerPool } from './load/pool.js'
import type { DeviceCreds } from './load/protocol.js'
import { ensureWrk, wrkPushRate } from './load/wrk.js'
import type { MqpushTarget } from './targets/mqpush.js'
import { cpuMs, cpuTimesMs, rssBytes, type Target } from './targets/target.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const now = () => performance.timeOrigin + performance.now()

export interface HoldResult {
  devices: number
  failed: number
  /** Connected before the measured ones, not counted in the memory per device. */
  warmUpDevices: number
  connectMs: number
  connectsPerSec: number
  rssBeforeMb: number
  rssAfterMb: number
  bytesPerDevice: number
}

/**
 * Devices that connect before "before" is read, for every target alike: what the first
 * connections cost once (caches built on first use, such as mqtt-packet's 65536 encoded packet
 * ids, about 7 MB; code compiled for the connect path) is not a cost per device, and counting it
 * made the figure depend on the number of devices (0.7 KB more per device at 10000).
 */
const WARM_UP_DEVICES = 100

/** hold: N devices connect with persistent sessions and stay; memory per connected device. */
export async function hold(
  pool: WorkerPool,
  target: Target,
  n: number,
): Promise<{ result: HoldResult; devices: DeviceCreds[] }> {
  const devices = await target.makeDevices(n)
  const o = { clean: false, subscribe: target.subscriptions }
  const warmUp = Math.min(WARM_UP_DEVICES, Math.floor(n / 10))
  const w = await pool.connect(target.host, target.port, devices.slice(0, warmUp), o)
  await sleep(1500)
  const before = rssBytes(target.pid)
  const c = await pool.connect(target.host, target.port, devices.slice(warmUp), o)
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
      rssBeforeMb: round(before / 2 ** 20, 1),
      rssAfterMb: round(after / 2 ** 20, 1),
      bytesPerDevice: Math.round((after - before) / Math.max(1, c.ok)),
    },
  }
}

export interface BroadcastRound {
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
 * whatever else the host does in that second.
 */
export async function broadcast(
  pool: WorkerPool,
  target: Target,
  devices: DeviceCreds[],
  to: 'all' | 'topic',
  rounds: number,
): Promise<BroadcastResult> {
  if (to === 'topic') await target.joinTopic(devices)
  // one unmeasured round first, for every target alike: steady state, not the first call's
  // compilation and cache filling
  await pool.reset()
  await target.broadcast(to, `warm-up ${to}`)
  await pool.waitFor((st) => st.distinct >= devices.length, 120_000)
  const measured: BroadcastRound[] = []
  let received = devices.length
  for (let i = 0; i < rounds; i++) {
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
    received = Math.min(received, s.distinct)
    const perDelivery = (ms: number) => round((ms * 1000) / Math.max(1, s.distinct), 1)
    measured.push({
      lastMs,
      deliveriesPerSec: Math.round((s.distinct / lastMs) * 1000),
      cpuUsPerDelivery: perDelivery(all),
      userCpuUsPerDelivery: perDelivery(user),
    })
  }
  return {
    devices: devices.length,
    received,
    rounds: measured,
    lastMs: median(measured.map((r) => r.lastMs)),
    deliveriesPerSec: median(measured.map((r) => r.deliveriesPerSec)),
    cpuUsPerDelivery: median(measured.map((r) => r.cpuUsPerDelivery)),
    userCpuUsPerDelivery: median(measured.map((r) => r.userCpuUsPerDelivery)),
  }
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
  /** mqpush only — closed loop: accepted push requests per second at `concurrency` in flight. */
  maxAcceptedPerSec?: number
  /** mqpush only — closed loop: the service's CPU time per accepted push, delivery included. */
  cpuUsPerPush?: number
  /** What sent the closed loop: wrk when available, else the bench's own Node client. */
  closedLoopClient?: 'wrk' | 'node'
  concurrency?: number
}

/**
 * unicast: one message to one device at a time, at a fixed rate, sent the way the target's
 * senders send (mqpush: HTTP push by regId; a bare broker: an MQTT publish to the device's
 * topic, from one publisher connection); end-to-end latency. For mqpush, then the highest rate
 * of accepted push requests.
 */
export async function unicast(
  pool: WorkerPool,
  target: Target,
  devices: DeviceCreds[],
  o: { rate: number; seconds: number; concurrency: number; closedLoop?: boolean },
): Promise<UnicastResult> {
  const sendOne = (i: number) => target.sendOne(devices[i % devices.length]!, `t=${now()}`)

  // open loop at a fixed rate: messages leave on schedule whatever the answers do
  const openLoop = async (seconds: number) => {
    const total = o.rate * seconds
    let ok = 0
    let failed = 0
    let firstError: unknown
    const inflight: Array<Promise<void>> = []
    const start = now()
    for (let i = 0; i < total; i++) {
      const due = start + (i * 1000) / o.rate
      const wait = due - now()
      if (wait > 1) await sleep(wait)
      inflight.push(
        sendOne(i).then(
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
    return ok
  }
  // two unmeasured seconds at the same rate first: steady state, not the service's warm-up
  await pool.reset()
  const warm = await openLoop(2)
  await pool.waitFor((st) => st.distinct >= warm, 30_000)
  await pool.reset()
  const cpuAtRateBefore = cpuMs(target.pid)
  const accepted = await openLoop(o.seconds)
  const s = await pool.waitFor((st) => st.distinct >= accepted, 30_000)
  const cpuUsPerMessageAtRate = Math.round(
    ((cpuMs(target.pid) - cpuAtRateBefore) * 1000) / Math.max(1, accepted),
  )
  const lat = s.latencies.sort((a, b) => a - b)
  const result: UnicastResult = {
    ratePerSec: o.rate,
    seconds: o.seconds,
    accepted,
    delivered: Math.min(s.distinct, accepted),
    lost: Math.max(0, accepted - s.distinct),
    p50Ms: round(pct(lat, 0.5), 2),
    p99Ms: round(pct(lat, 0.99), 2),
    p998Ms: round(pct(lat, 0.998), 2),
    maxMs: round(lat[lat.length - 1] ?? 0, 2),
    cpuUsPerMessageAtRate,
  }
  if (!isMqpush(target) || o.closedLoop === false) return result

  // closed loop: as many requests as the service accepts with `concurrency` in flight
  let maxAcceptedPerSec: number
  let acceptedClosed: number
  let closedClient: 'wrk' | 'node'
  const cpuBefore = cpuMs(target.pid)
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
    // let the deliveries of the last requests finish before the next scenario
    await sleep(2000)
  } else {
    closedClient = 'node'
    let okClosed = 0
    const until = now() + o.seconds * 1000
    let k = 0
    const closedStart = now()
    await Promise.all(
      Array.from({ length: o.concurrency }, async () => {
        while (now() < until) {
          if (await sendOne(k++)) okClosed++
        }
      }),
    )
    maxAcceptedPerSec = Math.round((okClosed / (now() - closedStart)) * 1000)
    acceptedClosed = okClosed
    await sleep(2000)
  }
  return {
    ...result,
    maxAcceptedPerSec,
    cpuUsPerPush: Math.round(((cpuMs(target.pid) - cpuBefore) * 1000) / acceptedClosed),
    closedLoopClient: closedClient,
    concurrency: o.concurrency,
  }
}

const isMqpush = (t: Target): t is MqpushTarget => 'httpUrl' in t

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
}

/** offline: K devices away while Q messages each are queued, then all reconnect. */
export async function offline(
  pool: WorkerPool,
  target: Target,
  k: number,
  q: number,
): Promise<OfflineResult> {
  const devices = await target.makeDevices(k)
  // a first connection creates the persistent sessions (the baselines subscribe here)
  await pool.connect(target.host, target.port, devices, {
    clean: false,
    subscribe: target.subscriptions,
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
  await pool.connect(target.host, target.port, devices, { clean: false })
  const s = await pool.waitFor((st) => st.distinct >= k * q, 120_000)
  await sleep(100)
  const cpu = cpuMs(target.pid) - cpuBefore
  if (expiredDelivered !== null) expiredDelivered = s.expiredReceived
  await pool.disconnect()
  return {
    devices: k,
    perDevice: q,
    expected: k * q,
    delivered: s.distinct - (expiredDelivered ?? 0),
    duplicates: s.duplicates,
    drainMs: Math.max(0, s.lastAt - t0),
    cpuUsPerDelivery: round((cpu * 1000) / Math.max(1, s.distinct), 1),
    expiredDelivered,
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

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number
}

function round(x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}
