import type { ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { LeanHttpSender } from '../load/http-sender.js'
import type { DeviceCreds } from '../load/protocol.js'

/** A broker under test: mqpush (full pipeline) or a baseline (plain Aedes, Mosquitto). */
export interface Target {
  name: string
  host: string
  port: number
  pid: number
  /** Credentials of `n` devices (mqpush registers them over HTTP). */
  makeDevices(n: number): Promise<DeviceCreds[]>
  /** What each device SUBSCRIBEs itself after connecting (`{id}` = its client id). */
  subscriptions: string[]
  /** Makes the devices members of the topic `news`. */
  joinTopic(devices: DeviceCreds[]): Promise<void>
  /** One QoS 1 message to every device (`all`) or to the members of `news`. */
  broadcast(to: 'all' | 'topic', payload: string): Promise<void>
  /** One QoS 1 message to each of these devices, by their own address. */
  unicast(devices: DeviceCreds[], payload: string, ttlSeconds?: number): Promise<void>
  /**
   * One QoS 1 message to one device the way its senders send it (mqpush: an HTTP push by
   * regId; a bare broker: an MQTT publish to the device's topic); true once accepted.
   */
  sendOne(device: DeviceCreds, payload: string): Promise<boolean>
  stop(): Promise<void>
}

/** A target that takes pushes over HTTP (mqpush, and the `aedes-http` baseline). */
export interface HttpPushTarget extends Target {
  httpUrl: string
  /** The app secret its push requests carry (the `aedes-http` baseline ignores it). */
  secret: string
  /** POST /v1/messages; resolves with the status. */
  push(body: unknown): Promise<number>
}

export const takesHttpPushes = (t: Target): t is HttpPushTarget => 'httpUrl' in t

/**
 * The most connections the bench's sender opens to an HTTP target (`--http-connections`): a
 * request that finds every open connection busy opens another, up to this; past it, it waits
 * for one (its message carries the time it was handed to the sender, so the wait counts in its
 * latency).
 */
export const HTTP_CONNECTIONS = 512

/**
 * The push requests of an HTTP target, as its app servers send them: `POST /v1/messages` over
 * the bench's lean keep-alive sender (opened at the first push; `close()` ends its connections,
 * and the next push opens new ones), with at most `maxConnections` connections. `sendOne` is a
 * push by regId, accepted on a 200.
 */
export function httpPusher(
  httpUrl: string,
  headers: Record<string, string>,
  maxConnections = HTTP_CONNECTIONS,
): Pick<HttpPushTarget, 'push' | 'sendOne'> & { close(): void } {
  let sender: LeanHttpSender | undefined
  const push = (body: unknown) => {
    sender ??= new LeanHttpSender(`${httpUrl}/v1/messages`, headers, maxConnections)
    return sender.post(JSON.stringify(body))
  }
  return {
    push,
    async sendOne(device, payload) {
      const body = { target: { regIds: [device.clientId] }, kind: 'passThrough', payload }
      return (await push(body)) === 200
    },
    close() {
      sender?.close()
      sender = undefined
    },
  }
}

/** Resident memory of a process, bytes (Linux). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1]
  return Number(kb) * 1024
}

/**
 * Accept-queue drops: the kernel's count of handshake packets dropped because a listening
 * socket's accept queue was full (`TcpExt: ListenOverflows` in /proc/net/netstat),
 * machine-wide; undefined where it cannot be read. A dropped SYN goes unanswered and the client
 * sends it again a second later, so each drop can add a second to a device's connect; one
 * connect may count more than once (its SYN sent again and dropped again, or its last ACK
 * dropped). What a broker's listen backlog does to a reconnect storm: Mosquitto listens with a
 * backlog of 100, Node with 511.
 */
export function listenOverflows(): number | undefined {
  try {
    return parseListenOverflows(readFileSync('/proc/net/netstat', 'utf8'))
  } catch {
    return undefined
  }
}

/** `ListenOverflows` from the text of /proc/net/netstat (a line of names, then of values). */
export function parseListenOverflows(netstat: string): number | undefined {
  const lines = netstat.split('\n').filter((l) => l.startsWith('TcpExt:'))
  const names = lines[0]?.split(/\s+/) ?? []
  const values = lines[1]?.split(/\s+/) ?? []
  const i = names.indexOf('ListenOverflows')
  const n = i < 0 ? NaN : Number(values[i])
  return Number.isFinite(n) ? n : undefined
}

/** CPU time a process has used, user + system, in milliseconds (Linux; clock ticks of 10 ms). */
export function cpuMs(pid: number): number {
  const t = cpuTimesMs(pid)
  return t.user + t.system
}

/** A process's CPU time so far, in user space (its own code) and in the kernel, ms. */
export function cpuTimesMs(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // the fields after the command name, which is in parentheses and may hold spaces
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return { user: Number(fields[11]) * 10, system: Number(fields[12]) * 10 }
}

/**
 * The machine's CPU time so far, all cores, from the first line of `/proc/stat` (in clock
 * ticks): `steal` is the time the hypervisor gave the virtual CPUs' turns to someone else,
 * `total` every state's time (idle included). Undefined where there is no `/proc/stat`.
 */
export function machineCpuTicks(): { steal: number; total: number } | undefined {
  try {
    return parseCpuLine(readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '')
  } catch {
    return undefined
  }
}

/** `cpu  user nice system idle iowait irq softirq steal guest guest_nice` → steal and total. */
export function parseCpuLine(line: string): { steal: number; total: number } | undefined {
  const fields = line.trim().split(/\s+/)
  if (fields[0] !== 'cpu' || fields.length < 9) return undefined
  // guest and guest_nice are already counted in user and nice: not added again
  const ticks = fields.slice(1, 9).map(Number)
  if (ticks.some((x) => !Number.isFinite(x))) return undefined
  return { steal: ticks[7] as number, total: ticks.reduce((a, b) => a + b, 0) }
}

/** The share of the machine's CPU time stolen between two readings; undefined without both. */
export function stolenShare(
  before: { steal: number; total: number } | undefined,
  after: { steal: number; total: number } | undefined,
): number | undefined {
  if (!before || !after || after.total <= before.total) return undefined
  return (after.steal - before.steal) / (after.total - before.total)
}

/**
 * What the targets not yet stopped leave behind if the bench exits first (an error, or a signal
 * while a target is still starting, before anything could stop it): run, synchronously, when
 * the process exits. A target registers its clean-up when it starts and drops it in stop().
 */
const leftovers = new Set<() => void>()
process.on('exit', () => {
  for (const cleanUp of leftovers) cleanUp()
})
export function cleanUpAtExit(cleanUp: () => void): () => void {
  leftovers.add(cleanUp)
  return () => leftovers.delete(cleanUp)
}

/** Sends the signal and waits until the process has exited (at once if it has already). */
export async function kill(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((r) => child.once('exit', r))
  child.kill(signal)
  await exited
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

export async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string) {
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    if (await check().catch(() => false)) return
    await new Promise((r) => setTimeout(r, 25))
  }
  throw new Error(`timed out waiting for ${what}`)
}
