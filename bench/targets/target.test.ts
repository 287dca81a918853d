import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import {
  HTTP_CONNECTIONS,
  httpPusher,
  listenOverflows,
  machineCpuTicks,
  parseCpuLine,
  parseListenOverflows,
  stolenShare,
} from './target.js'

describe('parseListenOverflows', () => {
  it("reads TcpExt's ListenOverflows from /proc/net/netstat's text", () => {
    const text = [
      'TcpExt: SyncookiesSent EmbryonicRsts ListenOverflows ListenDrops',
      'TcpExt: 11 0 1846 1850',
      'IpExt: InNoRoutes ListenOverflows',
      'IpExt: 0 7',
      '',
    ].join('\n')
    expect(parseListenOverflows(text)).toBe(1846)
  })

  it('gives undefined when the counter is not there', () => {
    expect(parseListenOverflows('TcpExt: SyncookiesSent\nTcpExt: 11\n')).toBeUndefined()
    expect(parseListenOverflows('')).toBeUndefined()
  })

  it.skipIf(process.platform !== 'linux')(
    "reads this machine's counter (skipped: not Linux)",
    () => {
      expect(listenOverflows()).toBeGreaterThanOrEqual(0)
    },
  )
})

describe('httpPusher', () => {
  /** An HTTP server that holds every answer until `release()`, counting connections. */
  async function holdingServer() {
    const held: ServerResponse[] = []
    let connections = 0
    const server = createServer((_req, res) => {
      held.push(res)
    })
    server.on('connection', () => connections++)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const release = () => {
      for (const res of held.splice(0)) res.writeHead(200, { 'content-length': '2' }).end('{}')
    }
    const close = async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
    return { url, held, release, close, connections: () => connections }
  }

  /** Pushes that count their answers; a failed test's `close()` rejects them quietly. */
  function pushAll(pusher: ReturnType<typeof httpPusher>, n: number) {
    const done = { answered: 0 }
    const answers = Array.from({ length: n }, (_, i) => pusher.push({ i }))
    for (const a of answers)
      void a.then(
        () => done.answered++,
        () => {},
      )
    return { answers, done }
  }

  it('opens at most maxConnections; the requests past them wait for one and are all answered', async () => {
    const s = await holdingServer()
    const pusher = httpPusher(s.url, {}, 3)
    try {
      const { answers, done } = pushAll(pusher, 10)
      // three requests reach the server, the other seven wait in the sender
      await expect.poll(() => s.held.length, { timeout: 5000 }).toBe(3)
      await new Promise((r) => setTimeout(r, 50))
      expect(s.held.length).toBe(3)
      // answered three at a time: each answer frees a connection for a waiting request
      while (done.answered < 10) {
        expect(s.held.length).toBeLessThanOrEqual(3)
        s.release()
        await new Promise((r) => setTimeout(r, 10))
      }
      expect(await Promise.all(answers)).toEqual(Array(10).fill(200))
      expect(s.connections()).toBe(3)
    } finally {
      pusher.close()
      await s.close()
    }
  })

  it(`opens ${HTTP_CONNECTIONS} by default, and no more`, async () => {
    expect(HTTP_CONNECTIONS).toBe(512)
    const s = await holdingServer()
    const pusher = httpPusher(s.url, {})
    const n = HTTP_CONNECTIONS + 1
    try {
      const { answers } = pushAll(pusher, n)
      await expect.poll(() => s.held.length, { timeout: 5000 }).toBe(HTTP_CONNECTIONS)
      await new Promise((r) => setTimeout(r, 50))
      expect(s.held.length).toBe(HTTP_CONNECTIONS)
      s.release()
      await expect.poll(() => s.held.length, { timeout: 5000 }).toBe(1)
      s.release()
      expect(await Promise.all(answers)).toEqual(Array(n).fill(200))
      expect(s.connections()).toBe(HTTP_CONNECTIONS)
    } finally {
      pusher.close()
      await s.close()
    }
  })
})

describe("the machine's stolen time", () => {
  it("reads steal and the total of the eight states from /proc/stat's cpu line", () => {
    // user nice system idle iowait irq softirq steal guest guest_nice
    expect(parseCpuLine('cpu  100 1 20 800 5 0 4 70 9 9')).toEqual({ steal: 70, total: 1000 })
    expect(parseCpuLine('cpu0 100 1 20 800 5 0 4 70 0 0')).toBeUndefined() // one core's line
    expect(parseCpuLine('cpu 100 1 20')).toBeUndefined() // a kernel without steal
  })

  it('gives the share stolen between two readings, none without both or without time', () => {
    const a = { steal: 70, total: 1000 }
    expect(stolenShare(a, { steal: 95, total: 1500 })).toBeCloseTo(0.05)
    expect(stolenShare(a, a)).toBeUndefined()
    expect(stolenShare(undefined, a)).toBeUndefined()
  })

  it('reads this machine (Linux)', () => {
    const now = machineCpuTicks()
    expect(now?.total).toBeGreaterThan(0)
    expect(now?.steal).toBeGreaterThanOrEqual(0)
  })
})
