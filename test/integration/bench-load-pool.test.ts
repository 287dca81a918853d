import { Aedes } from 'aedes'
import { readFileSync } from 'node:fs'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HARNESS_NODE_FLAGS, WorkerPool } from '../../bench/load/pool.js'
import { sourceAddress, stampClock } from '../../bench/load/protocol.js'

// The bench's load generator: its devices connect from loopback addresses of their own, so
// that the ports a round's closed connections leave waiting (TIME_WAIT) on an address do not
// slow the next round's connects. Real worker processes, a real broker, real sockets: which
// address a connection comes from is only seen on a socket.

let aedes: Aedes
let server: Server
let port: number
const pools: WorkerPool[] = []
/** clientId → the address each of its connections came from, in order */
const from = new Map<string, string[]>()

beforeAll(async () => {
  aedes = await Aedes.createBroker()
  aedes.on('client', (c) => {
    const address = (c.conn as unknown as { remoteAddress: string }).remoteAddress
    from.set(c.id, [...(from.get(c.id) ?? []), address])
  })
  server = createServer((s) => aedes.handle(s))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  port = (server.address() as AddressInfo).port
})

afterAll(async () => {
  for (const p of pools) p.close()
  await new Promise((r) => server?.close(r))
  await new Promise<void>((r) => aedes?.close(() => r()))
})

/** A QoS 1 message from the broker itself to whoever subscribed `topic`. */
const publish = (topic: string, payload: string) =>
  new Promise<void>((resolve, reject) =>
    aedes.publish(
      { cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain: false, dup: false },
      (err) => (err ? reject(err) : resolve()),
    ),
  )
const devices = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({ clientId: `${prefix}${i}` }))
/** A pool of `workers` whose `n` devices each subscribe to `{prefix}/{their id}`, reset. */
async function subscribedPool(workers: number, prefix: string, n: number) {
  const pool = await WorkerPool.start(workers)
  pools.push(pool)
  const list = devices(prefix, n)
  await pool.connect('127.0.0.1', port, list, { clean: false, subscribe: [`${prefix}/{id}`] })
  await pool.reset({ collectInWorkers: false })
  return { pool, list }
}
const firstAddresses = (list: Array<{ clientId: string }>) =>
  list.map((d) => from.get(d.clientId)?.[0])

describe('sourceAddress', () => {
  it('gives the n-th device of a net its own loopback address, 127.net.1–250.1–250', () => {
    const octet = '([1-9]\\d?|1\\d\\d|2[0-4]\\d|250)'
    const shape = new RegExp(`^127\\.7\\.${octet}\\.${octet}$`)
    const all = Array.from({ length: 62_500 }, (_, n) => sourceAddress(7, n))
    expect(all.filter((a) => !shape.test(a))).toEqual([])
    expect(new Set(all).size).toBe(62_500)
    expect(sourceAddress(7, 62_500)).toBe(sourceAddress(7, 0))
  })
})

describe('WorkerPool.connect', () => {
  it('connects each device from an address of its own, the same one when it comes back', async () => {
    const pool = await WorkerPool.start(2)
    pools.push(pool)
    const first = devices('a', 6)
    const second = devices('b', 4) // another connect, as the hold's measured devices after its warm-up
    expect(await pool.connect('127.0.0.1', port, first, { clean: false })).toMatchObject({ ok: 6 })
    expect(await pool.connect('127.0.0.1', port, second, { clean: false })).toMatchObject({ ok: 4 })
    await pool.disconnect()
    expect(await pool.connect('127.0.0.1', port, first, { clean: false })).toMatchObject({ ok: 6 })
    await pool.disconnect()

    for (const d of first) {
      const [once, again] = from.get(d.clientId) ?? []
      expect(once).toMatch(/^127\.\d+\.\d+\.\d+$/)
      expect(again).toBe(once)
    }
    const addresses = firstAddresses([...first, ...second])
    expect(new Set(addresses).size).toBe(10)
    // two workers: two nets
    expect(new Set(addresses.map((a) => a?.split('.')[1])).size).toBe(2)
  })

  it('refuses workers past the last net, before starting any', async () => {
    await expect(WorkerPool.start(300)).rejects.toThrow(/at most 253 workers in all/)
  })

  it("gives another pool's workers other nets (bench:ab and the bench run pools side by side)", async () => {
    const a = await WorkerPool.start(1)
    const b = await WorkerPool.start(1)
    pools.push(a, b)
    const da = devices('pa', 2)
    const db = devices('pb', 2)
    await a.connect('127.0.0.1', port, da, { clean: false })
    await b.connect('127.0.0.1', port, db, { clean: false })
    await a.disconnect()
    await b.disconnect()
    const net = (list: Array<{ clientId: string }>) =>
      new Set(firstAddresses(list).map((x) => x?.split('.')[1]))
    expect(net(da).size).toBe(1)
    expect(net(db).size).toBe(1)
    expect([...net(da)][0]).not.toBe([...net(db)][0])
  })
})

describe('latencies', () => {
  // The sender (the bench's process) stamps a message with its send time and a load worker,
  // another process started at another moment, subtracts it from its own clock: both must read
  // one clock. The wall clock read at each process's start (what they used before) moves apart
  // from process to process when the machine's clock is stepped between their starts.
  it("are read off the sender's clock in another process: a message's own transit time", async () => {
    const { pool } = await subscribedPool(1, 'lat', 1)
    const sent = stampClock()
    await publish('lat/lat0', `id=m1 t=${sent}`)
    const s = await pool.waitFor((st) => st.latencies.length >= 1, 5_000)
    const elapsed = stampClock() - sent
    expect(s.latencies).toHaveLength(1)
    expect(s.latencies[0]).toBeGreaterThan(0)
    expect(s.latencies[0]).toBeLessThanOrEqual(elapsed)
    // with the send time it was read off (the warm-up splits its tail by it)
    expect(s.sentAts).toEqual([sent])
    await pool.disconnect()
  })

  it('pair each latency with its own send time, over several workers', async () => {
    const { pool, list } = await subscribedPool(2, 'pair', 4)
    // stamps 10, 20, 30 and 40 s in the past: a latency paired with another message's send time
    // would put its arrival 10 s or more away from now
    const base = stampClock()
    const stamps = list.map((_, k) => base - 10_000 * (k + 1))
    for (const [k, d] of list.entries())
      await publish(`pair/${d.clientId}`, `id=p${k} t=${stamps[k]}`)
    const s = await pool.waitFor((st) => st.latencies.length >= 4, 5_000)
    const readBy = stampClock()
    expect([...s.sentAts].sort((a, b) => a - b)).toEqual([...stamps].sort((a, b) => a - b))
    s.latencies.forEach((l, i) => {
      const arrived = (s.sentAts[i] as number) + l
      expect(arrived).toBeGreaterThanOrEqual(base)
      expect(arrived).toBeLessThanOrEqual(readBy)
    })
    await pool.disconnect()
  })
})

describe('what a worker counts', () => {
  // A device counts what it gets off the payload's bytes (bench/load/payload.ts): a message
  // again by its id is a duplicate, a bare payload is its own id, `expired=1` is counted.
  it('counts distinct messages, duplicates and expired marks by id, per device', async () => {
    const { pool } = await subscribedPool(1, 'cnt', 2)
    const envelope = (id: string, text: string) => `{"id":"${id}","payload":"${text}"}`
    await publish('cnt/cnt0', envelope('m1', 'hello'))
    await publish('cnt/cnt0', envelope('m1', 'hello again')) // the same message again
    await publish('cnt/cnt1', envelope('m1', 'hello')) // the same id to another device
    await publish('cnt/cnt1', envelope('m2', 'expired=1'))
    await publish('cnt/cnt1', 'bare payload')
    await publish('cnt/cnt1', 'bare payload')
    const s = await pool.waitFor((st) => st.received >= 6, 5_000)
    expect(s).toMatchObject({ received: 6, distinct: 4, duplicates: 2, expiredReceived: 1 })
    await pool.disconnect()
  })
})

describe('WorkerPool.start', () => {
  // V8's collections on helper threads let one harness process hold both of this machine's
  // cores for tens of milliseconds, and the broker under test waited: the workers collect on
  // their main thread. Seen in the worker's own command line (/proc: Linux, as the nets are).
  it('starts its workers with the harness node flags (garbage collection on one thread)', async () => {
    expect(HARNESS_NODE_FLAGS).toContain('--single-threaded-gc')
    const pool = await WorkerPool.start(2)
    pools.push(pool)
    for (const pid of pool.pids) {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
      for (const flag of HARNESS_NODE_FLAGS) expect(argv).toContain(flag)
    }
  })
})

describe('WorkerPool.reset', () => {
  // The fixed rate's slices reset without forced collections in the workers: after one, the
  // measured target's workers scavenged together a second into the phase, and every target's
  // deliveries of that moment were late (its warm-up collects). The workers report their full
  // collections (V8 tells them a moment after each ends).
  it('collects in the workers unless told not to', async () => {
    const pool = await WorkerPool.start(2)
    pools.push(pool)
    const start = (await pool.stats()).fullCollections
    await pool.reset({ collectInWorkers: false })
    await new Promise((r) => setTimeout(r, 500))
    expect((await pool.stats()).fullCollections).toBe(start)

    await pool.reset()
    const after = await pool.waitFor((s) => s.fullCollections >= start + 2, 5_000)
    expect(after.fullCollections).toBe(start + 2)
  })
})
