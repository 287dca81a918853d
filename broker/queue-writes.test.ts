import { Readable, Writable } from 'node:stream'
import mqttPacket from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import type { BrokerPersistence } from './ports.js'
import { coalesceQueueWrites, QUEUE_FLUSH_BYTES } from './queue-writes.js'

/** A socket stand-in that records each write it gets from its buffer (one per syscall). */
function recordingConn() {
  const writes: Buffer[] = []
  const conn = new Writable({
    highWaterMark: 16384,
    writev(chunks, cb) {
      writes.push(Buffer.concat(chunks.map((c) => c.chunk as Buffer)))
      cb()
    },
    write(chunk: Buffer, _enc, cb) {
      writes.push(chunk)
      cb()
    },
  })
  return { conn, writes }
}

const publish = (i: number, bytes: number) =>
  ({
    cmd: 'publish',
    topic: 'a/b',
    payload: Buffer.alloc(bytes, i),
    qos: 1,
    messageId: i + 1,
    retain: false,
    dup: false,
  }) as mqttPacket.IPublishPacket

/** As aedes drains a queue: one packet per turn of the event loop, each through mqtt-packet. */
async function drain(
  persistence: BrokerPersistence,
  client: { id: string; conn: Writable },
): Promise<boolean[]> {
  const results: boolean[] = []
  for await (const p of persistence.outgoingStream(client) as AsyncIterable<mqttPacket.Packet>) {
    results.push(mqttPacket.writeToStream(p, client.conn))
    await new Promise((r) => setImmediate(r))
  }
  return results
}

const persistenceOf = (packets: mqttPacket.Packet[]) =>
  ({ outgoingStream: () => Readable.from(packets) }) as unknown as BrokerPersistence

describe('coalesceQueueWrites', () => {
  it('sends a small queue in one write instead of one per packet', async () => {
    const packets = Array.from({ length: 20 }, (_, i) => publish(i, 100))
    const expected = Buffer.concat(packets.map((p) => mqttPacket.generate(p)))

    const plain = recordingConn()
    await drain(persistenceOf(packets), { id: 'd', conn: plain.conn })
    expect(plain.writes.length).toBe(20)

    const persistence = persistenceOf(packets)
    coalesceQueueWrites(persistence)
    const c = recordingConn()
    await drain(persistence, { id: 'd', conn: c.conn })
    await new Promise((r) => setImmediate(r))
    expect(c.writes.length).toBeLessThanOrEqual(2)
    expect(Buffer.concat(c.writes)).toEqual(expected)
    // the socket is left as it was: not corked, its own uncork again
    expect(c.conn.writableCorked).toBe(0)
    expect(Object.prototype.hasOwnProperty.call(c.conn, 'uncork')).toBe(false)
  })

  it('flushes a long queue every few kilobytes, below the high-water mark', async () => {
    const packets = Array.from({ length: 60 }, (_, i) => publish(i, 1000))
    const persistence = persistenceOf(packets)
    coalesceQueueWrites(persistence)
    const c = recordingConn()
    const results = await drain(persistence, { id: 'd', conn: c.conn })
    await new Promise((r) => setImmediate(r))
    // aedes waits for 'drain' when a write returns false: it never has to
    expect(results.every(Boolean)).toBe(true)
    expect(c.writes.length).toBeGreaterThan(3)
    expect(c.writes.length).toBeLessThan(20)
    for (const w of c.writes.slice(0, -1))
      expect(w.length).toBeGreaterThanOrEqual(QUEUE_FLUSH_BYTES)
    expect(Buffer.concat(c.writes)).toEqual(
      Buffer.concat(packets.map((p) => mqttPacket.generate(p))),
    )
  })
})
