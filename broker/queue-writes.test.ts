import { EventEmitter, once } from 'node:events'
import type { Socket } from 'node:net'
import { Readable } from 'node:stream'
import mqttPacket from 'mqtt-packet'
import { afterEach, describe, expect, it } from 'vitest'
import { arrived, socketPair } from '../test/helpers/socket-pair.js'
import { coalesceQueueWrites, coalesceWrites, QUEUE_FLUSH_BYTES } from './queue-writes.js'

let cleanup: Array<() => void> = []
afterEach(() => {
  for (const c of cleanup) c()
  cleanup = []
})

const publish = (i: number, bytes: number) =>
  ({
    cmd: 'publish',
    topic: 'a/b',
    payload: Buffer.alloc(bytes, i % 251),
    qos: 1,
    messageId: (i % 65535) + 1,
    retain: false,
    dup: false,
  }) as mqttPacket.IPublishPacket

/**
 * As aedes drains a queue: one packet per turn of the event loop, through mqtt-packet; a write
 * that returns false waits for 'drain' (aedes gives up after its drain timeout).
 */
async function drain(packets: mqttPacket.Packet[], conn: Socket): Promise<void> {
  for (const p of packets) {
    if (!mqttPacket.writeToStream(p, conn)) {
      const drained = once(conn, 'drain')
      const timeout = new Promise((_, reject) =>
        setTimeout(
          () => reject(new Error('no drain within 3 s: the device would be dropped')),
          3000,
        ),
      )
      await Promise.race([drained, timeout])
    }
    await new Promise((r) => setImmediate(r))
  }
}

const bytesOf = (packets: mqttPacket.Packet[]) =>
  Buffer.concat(packets.map((p) => mqttPacket.generate(p)))
/** Drains `packets` to a fresh socket pair with the coalescing on (or off), then ends it. */
async function drained(packets: mqttPacket.Packet[], coalesce = true) {
  const pair = await socketPair()
  cleanup.push(pair.close)
  const finish = coalesce ? coalesceWrites(pair.conn) : undefined
  await drain(packets, pair.conn)
  finish?.()
  await new Promise((r) => setImmediate(r))
  return pair
}

describe('coalesceWrites', () => {
  it('sends a small queue in one or two writes instead of one per packet', async () => {
    const packets = Array.from({ length: 20 }, (_, i) => publish(i, 100))

    const plain = await drained(packets, false)
    expect(plain.writes.length).toBe(20)
    const closeListeners = plain.conn.listenerCount('close')

    const pair = await drained(packets)
    expect(pair.writes.length).toBeLessThanOrEqual(2)
    expect(await arrived(pair, bytesOf(packets).length)).toEqual(bytesOf(packets))
    // the socket is left as it was: not corked, its own uncork again
    expect(pair.conn.writableCorked).toBe(0)
    expect(Object.prototype.hasOwnProperty.call(pair.conn, 'uncork')).toBe(false)
    expect(pair.conn.listenerCount('close')).toBe(closeListeners)
  })

  it('flushes a long queue every few kilobytes', async () => {
    const packets = Array.from({ length: 60 }, (_, i) => publish(i, 1000))
    const pair = await drained(packets)
    expect(pair.writes.length).toBeGreaterThan(3)
    expect(pair.writes.length).toBeLessThan(20)
    for (const bytes of pair.writes.slice(0, -1))
      expect(bytes).toBeGreaterThanOrEqual(QUEUE_FLUSH_BYTES)
    expect(await arrived(pair, bytesOf(packets).length)).toEqual(bytesOf(packets))
  })

  it('keeps a device that reads slowly: its queue arrives whole once it reads again', async () => {
    // ~6 MB: more than the kernel's buffers hold while the device does not read
    const packets = Array.from({ length: 2000 }, (_, i) => publish(i, 3000))
    const pair = await socketPair()
    cleanup.push(pair.close)
    const finish = coalesceWrites(pair.conn)
    pair.device.pause()
    setTimeout(() => pair.device.resume(), 500)
    await drain(packets, pair.conn)
    finish?.()
    const expected = bytesOf(packets)
    const got = await arrived(pair, expected.length)
    expect(got.length).toBe(expected.length)
    expect(got.equals(expected)).toBe(true)
    expect(pair.conn.writableCorked).toBe(0)
  })

  it('leaves connections that are not TCP sockets alone', () => {
    const notASocket = { cork: () => {}, uncork: () => {}, destroyed: false }
    expect(coalesceWrites(notASocket)).toBeUndefined()
    expect(notASocket.uncork.name).toBe('uncork')
  })

  it('ends by itself when the socket closes', async () => {
    const pair = await socketPair()
    cleanup.push(pair.close)
    coalesceWrites(pair.conn)
    expect(Object.prototype.hasOwnProperty.call(pair.conn, 'uncork')).toBe(true)
    pair.conn.destroy()
    await once(pair.conn, 'close')
    expect(Object.prototype.hasOwnProperty.call(pair.conn, 'uncork')).toBe(false)
  })
})

describe('coalesceQueueWrites', () => {
  /** A broker (its events) and a persistence whose queue streams are empty. */
  const setup = (nothingLeft?: (stream: unknown) => boolean) => {
    const broker = new EventEmitter()
    const persistence = { outgoingStream: (_client: unknown) => Readable.from([]) }
    coalesceQueueWrites(broker, persistence, nothingLeft)
    return { broker, persistence }
  }
  const coalescing = (conn: Socket) => Object.prototype.hasOwnProperty.call(conn, 'uncork')

  it('coalesces a queue opened while the client connects, until the connect is complete', async () => {
    const { broker, persistence } = setup()
    const pair = await socketPair()
    cleanup.push(pair.close)
    const client = { id: 'd', conn: pair.conn, connecting: true }
    persistence.outgoingStream(client)
    expect(coalescing(pair.conn)).toBe(true)
    // the stream's end is not the end: aedes may still be writing what it read ahead
    broker.emit('clientReady', { id: 'another', conn: pair.conn })
    expect(coalescing(pair.conn)).toBe(true)
    broker.emit('clientReady', client)
    expect(coalescing(pair.conn)).toBe(false)
    expect(pair.conn.writableCorked).toBe(0)
  })

  it('leaves a queue opened outside a connect alone, and corks a connect only once', async () => {
    const { broker, persistence } = setup()
    const pair = await socketPair()
    cleanup.push(pair.close)
    persistence.outgoingStream({ id: 'd', conn: pair.conn, connecting: false })
    expect(coalescing(pair.conn)).toBe(false)
    const client = { id: 'd', conn: pair.conn, connecting: true }
    persistence.outgoingStream(client)
    persistence.outgoingStream(client)
    expect(pair.conn.writableCorked).toBe(1)
    broker.emit('clientReady', client)
    expect(pair.conn.writableCorked).toBe(0)
  })

  it('leaves a stream with nothing left to write alone (a queue that went out whole)', async () => {
    const { broker, persistence } = setup(() => true)
    const pair = await socketPair()
    cleanup.push(pair.close)
    const client = { id: 'd', conn: pair.conn, connecting: true }
    persistence.outgoingStream(client)
    expect(coalescing(pair.conn)).toBe(false)
    expect(pair.conn.writableCorked).toBe(0)
    broker.emit('clientReady', client)
    expect(pair.conn.writableCorked).toBe(0)
  })

  it('flushes a socket whose buffer fills below the flush size, so that its drain comes', async () => {
    const pair = await socketPair()
    cleanup.push(pair.close)
    const small = pair.conn as unknown as { _writableState: { highWaterMark: number } }
    small._writableState.highWaterMark = 1024
    const finish = coalesceWrites(pair.conn)
    const packets = Array.from({ length: 4 }, (_, i) => publish(i, 2000))
    // drain() fails if a write that returned false gets no 'drain'
    await drain(packets, pair.conn)
    finish?.()
    expect(await arrived(pair, bytesOf(packets).length)).toEqual(bytesOf(packets))
  })
})
