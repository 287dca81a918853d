import { Aedes } from 'aedes'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WorkerPool } from './pool.js'
import { sourceAddress } from './protocol.js'

// The load generator's devices connect from loopback addresses of their own, so that the ports
// a round's closed connections leave waiting (TIME_WAIT) on an address do not slow the next
// round's connects. Real worker processes, a real broker, real sockets.

let aedes: Aedes
let server: Server
let port: number
let pool: WorkerPool
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
  pool = await WorkerPool.start(2)
})

afterAll(async () => {
  pool?.close()
  await new Promise((r) => server?.close(r))
  await new Promise<void>((r) => aedes?.close(() => r()))
})

describe('sourceAddress', () => {
  it('gives each place of a slice its own loopback address, 127.net.1–250.1–250', () => {
    const octet = '([1-9]\\d?|1\\d\\d|2[0-4]\\d|250)'
    const shape = new RegExp(`^127\\.7\\.${octet}\\.${octet}$`)
    const all = Array.from({ length: 62_500 }, (_, i) => sourceAddress(7, i))
    expect(all.filter((a) => !shape.test(a))).toEqual([])
    expect(new Set(all).size).toBe(62_500)
    expect(sourceAddress(7, 62_500)).toBe(sourceAddress(7, 0))
  })
})

describe('WorkerPool.connect', () => {
  it('connects each device from an address of its own, the same one when it comes back', async () => {
    const devices = Array.from({ length: 6 }, (_, i) => ({ clientId: `dev${i}` }))
    const first = await pool.connect('127.0.0.1', port, devices, { clean: false })
    expect(first).toMatchObject({ ok: 6, failed: 0 })
    await pool.disconnect()
    const again = await pool.connect('127.0.0.1', port, devices, { clean: false })
    expect(again).toMatchObject({ ok: 6, failed: 0 })
    await pool.disconnect()

    const addresses = devices.map((d) => from.get(d.clientId) ?? [])
    for (const [first, second] of addresses) {
      expect(first).toMatch(/^127\.[23]\.\d+\.\d+$/) // worker 0 or 1
      expect(second).toBe(first)
    }
    expect(new Set(addresses.map(([a]) => a)).size).toBe(6)
  })
})
