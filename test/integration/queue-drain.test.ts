import { syncBuiltinESMExports } from 'node:module'
import { connect, Socket } from 'node:net'
import stream, { Readable } from 'node:stream'
import mqttPacket from 'mqtt-packet'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { wroteWholeQueue } from '../../broker/queue-head.js'
import { connectDevice, connectPacket } from '../helpers/mqtt.js'
import { startTestServer, type TestServer } from '../helpers/server.js'

/**
 * A stored queue reaches a reconnecting device whole, however it reads (its head goes out with
 * the CONNACK, the rest in coalesced writes).
 */
describe('draining a stored queue', () => {
  let s: TestServer
  beforeAll(async () => {
    s = await startTestServer()
  })
  afterAll(() => s.stop())

  const queue = async (n: number, size: number) => {
    const reg = await s.register()
    const payload = 'x'.repeat(size)
    for (let i = 0; i < n; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, n - i) }, () =>
          s.push({ target: { regIds: [reg.regId] }, kind: 'passThrough', payload }),
        ),
      )
    }
    return reg
  }

  /** Counts the service's writes to the kernel on its MQTT sockets (one `writev` each). */
  const countWrites = () => {
    type Write = (this: Socket, ...args: unknown[]) => unknown
    const proto = Socket.prototype as unknown as Record<'_write' | '_writev', Write>
    const write = proto._write
    const writev = proto._writev
    const counted = { writes: 0 }
    const mqttPort = s.mqttPort
    const count = (original: Write): Write =>
      function (this: Socket, ...args: unknown[]) {
        if (this.localPort === mqttPort) counted.writes++
        return original.apply(this, args)
      }
    proto._write = count(write)
    proto._writev = count(writev)
    restore = () => {
      proto._write = write
      proto._writev = writev
    }
    return counted
  }
  let restore = () => {}
  afterEach(() => restore())

  for (const n of [3, 20]) {
    it(`a queue of ${n} short messages goes out in one write with the CONNACK`, async () => {
      const reg = await queue(n, 100)
      const counted = countWrites()
      const d = await connectDevice(s.mqttUrl, reg)
      try {
        await d.waitFor(n)
        // the CONNACK and the queue (under QUEUE_HEAD_BYTES) in one write; aedes alone writes
        // the CONNACK by itself, then each packet by itself
        expect(counted.writes).toBe(1)
        expect(d.received.map((r) => r.json?.payload)).toEqual(Array(n).fill('x'.repeat(100)))
      } finally {
        restore()
        await d.end()
      }
    })
  }

  /**
   * The object-mode streams given to Node's `stream.pipeline` (aedes' queue streams, at a
   * connect), watched from in front of whatever `stream.pipeline` is now.
   */
  const watchPipelines = () => {
    const current = stream.pipeline as unknown as (...args: unknown[]) => unknown
    const firsts: Readable[] = []
    ;(stream as { pipeline: unknown }).pipeline = function (this: unknown, ...args: unknown[]) {
      if (args[0] instanceof Readable && args[0].readableObjectMode) firsts.push(args[0])
      return current.apply(this, args)
    }
    syncBuiltinESMExports()
    restore = () => {
      ;(stream as { pipeline: unknown }).pipeline = current
      syncBuiltinESMExports()
    }
    return firsts
  }

  it("skips aedes' pipeline for a queue that went out whole with the CONNACK, not for a longer one", async () => {
    const small = await queue(3, 100)
    const long = await queue(40, 1000) // over the head's 16 KiB
    const firsts = watchPipelines()
    const d = await connectDevice(s.mqttUrl, small)
    const e = await connectDevice(s.mqttUrl, long)
    try {
      await d.waitFor(3)
      await e.waitFor(40)
      // both connects complete: a message sent now arrives
      await s.push({ target: { regIds: [small.regId] }, kind: 'passThrough', payload: 'next' })
      await d.waitFor(4)
      expect(d.received[3]?.json?.payload).toBe('next')
      expect(firsts).toHaveLength(2)
      const [whole, rest] = firsts as [Readable, Readable]
      // aedes' call was skipped (that its ES-module import reaches the fast path without this
      // watcher's own syncBuiltinESMExports: broker/queue-head.test.ts)
      expect(wroteWholeQueue(whole)).toBe(true)
      expect(whole.readableEnded).toBe(false) // never piped: Node's pipeline would end it
      // the longer queue's rest went through Node's pipeline
      expect(wroteWholeQueue(rest)).toBe(false)
      expect(rest.readableEnded).toBe(true)
    } finally {
      restore()
      await d.end()
      await e.end()
    }
  })

  /** A device on a raw socket: every packet it gets, in order; it acknowledges or not. */
  const rawDevice = async (
    reg: { regId: string; appId: string; token: string },
    acknowledge: boolean,
  ) => {
    const socket = connect(s.mqttPort, '127.0.0.1')
    socket.on('error', () => {})
    const parser = mqttPacket.parser()
    const got: mqttPacket.Packet[] = []
    parser.on('packet', (p) => {
      got.push(p)
      if (acknowledge && p.cmd === 'publish' && p.qos > 0)
        socket.write(mqttPacket.generate({ cmd: 'puback', messageId: p.messageId }))
    })
    socket.on('data', (d: Buffer) => parser.parse(d))
    await new Promise((r) => socket.once('connect', r))
    socket.write(connectPacket(reg))
    const publishes = () => got.filter((p): p is mqttPacket.IPublishPacket => p.cmd === 'publish')
    const until = async (n: number) => {
      const end = Date.now() + 5000
      while (publishes().length < n && Date.now() < end) await new Promise((r) => setTimeout(r, 10))
      return publishes()
    }
    return { socket, got, publishes, until }
  }

  it('a device taking over its own connection gets its CONNACK, then what the first left unacknowledged, then what comes next', async () => {
    const reg = await s.register()
    const first = await rawDevice(reg, false)
    const payloads = Array.from({ length: 30 }, (_, i) => `m${i}`.padEnd(1000, 'x'))
    try {
      await first.until(0)
      for (const payload of payloads)
        await s.push({ target: { regIds: [reg.regId] }, kind: 'passThrough', payload })
      const unacknowledged = await first.until(30)
      expect(unacknowledged).toHaveLength(30)
      const second = await rawDevice(reg, true)
      try {
        const again = await second.until(30)
        expect(second.got[0]?.cmd).toBe('connack')
        expect(again.map((p) => JSON.parse(p.payload.toString()).payload)).toEqual(payloads)
        // sent again with the identifiers they had
        expect(again.map((p) => p.messageId)).toEqual(unacknowledged.map((p) => p.messageId))
        // the connection is not left corked: a new message arrives at once
        await s.push({ target: { regIds: [reg.regId] }, kind: 'passThrough', payload: 'next' })
        const after = await second.until(31)
        expect(
          JSON.parse((after[30] as mqttPacket.IPublishPacket).payload.toString()).payload,
        ).toBe('next')
      } finally {
        second.socket.destroy()
      }
    } finally {
      first.socket.destroy()
    }
  })

  it('over WebSocket, more than a socket buffer of it', async () => {
    const reg = await queue(100, 3000)
    const d = await connectDevice(s.wsUrl, reg)
    await d.waitFor(100, 15_000)
    expect(d.received).toHaveLength(100)
    await d.end()
  }, 30_000)

  it('over TCP to a device that stops reading for a second', async () => {
    const reg = await queue(1000, 3000)
    const d = await connectDevice(s.mqttUrl, reg)
    const stream = (d.client as unknown as { stream: { pause(): void; resume(): void } }).stream
    stream.pause()
    await new Promise((r) => setTimeout(r, 1000))
    stream.resume()
    await d.waitFor(1000, 15_000)
    expect(d.received).toHaveLength(1000)
    await d.end()
  }, 40_000)
})
