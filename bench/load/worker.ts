import { PerformanceObserver, constants } from 'node:perf_hooks'
import { collectGarbage } from './gc.js'
import { connectLite, type LiteClient } from './mqtt-lite.js'
import { isExpiredMark, messageIdOf, sendTimeOf } from './payload.js'
import {
  emptyWorkerStats,
  sourceAddress,
  stampClock,
  type WorkerReply,
  type WorkerRequest,
  type WorkerStats,
} from './protocol.js'

/**
 * A load-generator process: holds a slice of the devices (a process may open at most 20000
 * files here), counts what they receive, and answers the runner over IPC.
 */
const clients: LiteClient[] = []
/** Each device's own source address (`sourceAddress`), given when it first connects. */
const addresses = new Map<string, string>()
function addressOf(clientId: string, net: number): string {
  let a = addresses.get(clientId)
  if (a === undefined) {
    a = sourceAddress(net, addresses.size)
    addresses.set(clientId, a)
  }
  return a
}
let stats: WorkerStats
/** Counted for the stats (the tests read it): the full collections this worker ran. */
let fullCollections = 0
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as { detail?: { kind?: number } }).detail?.kind
    if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) fullCollections++
  }
}).observe({ entryTypes: ['gc'] })
const seen = new Set<string>()

function reset(): void {
  seen.clear()
  // (fullCollections stays 0 here: the running count is added when stats are asked for)
  stats = emptyWorkerStats()
}
reset()

function onMessage(clientId: string, payload: Buffer, at: number): void {
  stats.received++
  if (stats.firstAt === 0) stats.firstAt = at
  stats.lastAt = at
  // read off the bytes, without decoding the payload (see payload.ts)
  const key = `${clientId} ${messageIdOf(payload)}`
  if (seen.has(key)) stats.duplicates++
  else {
    seen.add(key)
    stats.distinct++
  }
  const sentAt = sendTimeOf(payload)
  if (sentAt !== undefined) {
    stats.latencies.push(stampClock() - sentAt)
    stats.sentAts.push(sentAt)
  }
  if (isExpiredMark(payload)) stats.expiredReceived++
}

const reply = (r: WorkerReply) => process.send?.(r)

// stopped by the runner: exit normally, so that node flags such as --cpu-prof write their output
process.on('SIGTERM', () => process.exit(0))
// the runner is gone (it exited, or was killed): so is the reason to hold the devices
process.on('disconnect', () => process.exit(0))

process.on('message', (req: WorkerRequest) => {
  void handle(req)
})

async function handle(req: WorkerRequest): Promise<void> {
  switch (req.type) {
    case 'connect': {
      const started = performance.now()
      let ok = 0
      let failed = 0
      let firstError: string | undefined
      let next = 0
      const runOne = async (): Promise<void> => {
        while (next < req.devices.length) {
          const d = req.devices[next++]!
          const client = connectLite({
            host: req.host,
            port: req.port,
            localAddress: addressOf(d.clientId, req.sourceNet),
            clientId: d.clientId,
            ...(d.username !== undefined && { username: d.username }),
            ...(d.password !== undefined && { password: d.password }),
            clean: req.clean,
            subscribe: req.subscribe.map((t) => t.replace('{id}', d.clientId)),
            onMessage: (_topic, payload, at) => onMessage(d.clientId, payload, at),
          })
          try {
            await client.connected
            clients.push(client)
            ok++
          } catch (err) {
            failed++
            firstError ??= (err as Error).message
            client.close()
          }
        }
      }
      await Promise.all(Array.from({ length: req.concurrency }, runOne))
      reply({
        type: 'connected',
        ok,
        failed,
        ms: performance.now() - started,
        ...(firstError && { firstError }),
      })
      break
    }
    case 'reset':
      reset()
      if (req.collect) collectGarbage()
      reply({ type: 'done' })
      break
    case 'stats':
      reply({ type: 'stats', stats: { ...stats, fullCollections } })
      break
    case 'disconnect':
      for (const c of clients.splice(0)) c.close()
      // let the FINs go out before answering
      await new Promise((r) => setTimeout(r, 200))
      reply({ type: 'done' })
      break
  }
}
