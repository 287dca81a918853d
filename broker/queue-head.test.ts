import { EventEmitter } from 'node:events'
import stream, { Duplex, Readable, Transform } from 'node:stream'
import streamPromises from 'node:stream/promises'
import { promisify } from 'node:util'
import mqttPacket from 'mqtt-packet'
import { afterEach, describe, expect, it } from 'vitest'
import { arrived, socketPair } from '../test/helpers/socket-pair.js'
import {
  QUEUE_HEAD_BYTES,
  QUEUE_HEAD_PACKETS,
  type QueuedPacket,
  skipPipelinesOfWholeQueues,
  writeQueueHeads,
  wroteWholeQueue,
} from './queue-head.js'

let cleanup: Array<() => void> = []
afterEach(() => {
  for (const c of cleanup) c()
  cleanup = []
})

type Queued = QueuedPacket & { retain?: boolean; dup?: boolean }

const publish = (i: number, bytes = 100, messageId?: number): Queued => ({
  cmd: 'publish',
  topic: 'app/d',
  payload: Buffer.alloc(bytes, i % 251),
  qos: 1,
  retain: false,
  dup: false,
  brokerId: 'b',
  brokerCounter: i + 1,
  ...(messageId === undefined ? {} : { messageId }),
})

/**
 * A broker (its events and authorizeForward: refuses payloads starting with 0xff) and a
 * persistence whose queue is `queue` (fresh copies each time), recording aedes' calls on it.
 */
function setup(queue: Queued[]) {
  const broker = Object.assign(new EventEmitter(), {
    authorizeForward: (_client: unknown, packet: Queued) =>
      packet.payload?.[0] === 0xff ? null : packet,
  })
  const calls: Array<[string, number | undefined, number | undefined]> = []
  const persistence = {
    outgoingStream: (_client: unknown): unknown => {
      calls.push(['stream', undefined, undefined])
      return 'the persistence stream'
    },
    outgoingSnapshot: (_client: unknown) => queue.map((p) => ({ ...p })),
    outgoingUpdate: async (_client: unknown, p: Queued) => {
      calls.push(['update', p.brokerCounter, p.messageId])
    },
    outgoingClearMessageId: async (_client: unknown, p: Queued) => {
      calls.push(['clear', p.brokerCounter, p.messageId])
    },
  }
  writeQueueHeads(broker, persistence)
  return { broker, persistence, calls }
}

/** aedes' client, as far as the head is concerned: connecting, its next packet identifier. */
const clientOn = (conn: unknown, nextId = 7) => ({
  id: 'd',
  conn,
  connecting: true,
  connackSent: false,
  clean: false,
  _nextId: nextId,
  emit: () => true,
})

const wire = (packets: Queued[]) =>
  Buffer.concat(packets.map((p) => mqttPacket.generate(p as mqttPacket.Packet)))
const connack = { cmd: 'connack', returnCode: 0, sessionPresent: true } as mqttPacket.Packet

const rest = async (stream: unknown) => {
  const out: Queued[] = []
  for await (const p of stream as Readable) out.push(p as Queued)
  return out
}

describe('writeQueueHeads', () => {
  it('writes the CONNACK and a small queue in one write, as aedes would send them', async () => {
    const queue = [publish(0), publish(1, 100, 300), publish(2)]
    const { broker, persistence, calls } = setup(queue)
    const pair = await socketPair()
    cleanup.push(pair.close)
    const client = clientOn(pair.conn, 65535)
    broker.emit('client', client)
    // aedes' doConnack: written through mqtt-packet while the client is registered
    mqttPacket.writeToStream(connack, pair.conn)
    await new Promise((r) => setImmediate(r))
    expect(pair.writes).toEqual([])
    const stream = persistence.outgoingStream(client)
    // nothing left for aedes (nor for the coalescing of its writes)
    expect(wroteWholeQueue(stream)).toBe(true)
    expect(await rest(stream)).toEqual([])
    // identifiers as aedes' QoSPacket gives them: wrapping after 65535; a packet sent before
    // keeps its own
    const sent = [
      { ...publish(0), messageId: 65535 },
      publish(1, 100, 300),
      { ...publish(2), messageId: 1 },
    ]
    expect(client._nextId).toBe(2)
    const expected = Buffer.concat([mqttPacket.generate(connack), wire(sent)])
    expect(await arrived(pair, expected.length)).toEqual(expected)
    expect(pair.writes).toEqual([expected.length])
    expect(pair.conn.writableCorked).toBe(0)
    expect(calls).toEqual([
      ['update', 1, 65535],
      ['update', 2, 300],
      ['update', 3, 1],
    ])
  })

  it('sends the head of a long queue and hands aedes the rest, in order', async () => {
    const queue = Array.from({ length: 40 }, (_, i) => publish(i, 1000))
    const { persistence, calls } = setup(queue)
    const pair = await socketPair()
    cleanup.push(pair.close)
    const client = clientOn(pair.conn)
    const stream = persistence.outgoingStream(client)
    expect(wroteWholeQueue(stream)).toBe(false)
    const left = await rest(stream)
    const head = calls.length
    expect(head).toBeGreaterThan(1)
    expect(head).toBeLessThan(40)
    // stops at the first packet after QUEUE_HEAD_BYTES
    const sent = queue.slice(0, head).map((p, i) => ({ ...p, messageId: 7 + i }))
    expect(wire(sent.slice(0, -1)).length).toBeLessThan(QUEUE_HEAD_BYTES)
    expect(wire(sent).length).toBeGreaterThanOrEqual(QUEUE_HEAD_BYTES)
    expect(await arrived(pair, wire(sent).length)).toEqual(wire(sent))
    // the rest as the persistence has it: no identifier yet (aedes gives them on)
    expect(left).toEqual(queue.slice(head))
    expect(client._nextId).toBe(7 + head)
  })

  it('clears a packet authorizeForward refuses (an expired message) instead of sending it', async () => {
    const refused = { ...publish(1), payload: Buffer.from([0xff, 1, 2]) }
    const { persistence, calls } = setup([publish(0), refused, publish(2)])
    const pair = await socketPair()
    cleanup.push(pair.close)
    await rest(persistence.outgoingStream(clientOn(pair.conn)))
    const sent = [
      { ...publish(0), messageId: 7 },
      { ...publish(2), messageId: 9 },
    ]
    expect(await arrived(pair, wire(sent).length)).toEqual(wire(sent))
    expect(calls).toEqual([
      ['update', 1, 7],
      ['update', 2, 8],
      ['clear', 2, 8],
      ['update', 3, 9],
    ])
  })

  it('leaves a QoS 2 release, and everything after it, to aedes', async () => {
    const release = { cmd: 'pubrel', messageId: 40 }
    const { persistence } = setup([publish(0), release, publish(2)])
    const pair = await socketPair()
    cleanup.push(pair.close)
    const left = await rest(persistence.outgoingStream(clientOn(pair.conn)))
    expect(left).toEqual([release, publish(2)])
    const sent = [{ ...publish(0), messageId: 7 }]
    expect(await arrived(pair, wire(sent).length)).toEqual(wire(sent))
  })

  it('leaves connections that are not TCP sockets, and queues opened after the connect, to the persistence', async () => {
    const { broker, persistence, calls } = setup([publish(0)])
    const ws = new Duplex({ read() {}, write: (_c, _e, cb) => cb() })
    broker.emit('client', clientOn(ws))
    expect(persistence.outgoingStream(clientOn(ws))).toBe('the persistence stream')
    const pair = await socketPair()
    cleanup.push(pair.close)
    const online = { ...clientOn(pair.conn), connecting: false }
    expect(persistence.outgoingStream(online)).toBe('the persistence stream')
    expect(calls).toEqual([
      ['stream', undefined, undefined],
      ['stream', undefined, undefined],
    ])
    expect(pair.writes).toEqual([])
  })

  it("writes the head once per connect: a second stream of it is the persistence's own", async () => {
    const { persistence, calls } = setup([publish(0)])
    const pair = await socketPair()
    cleanup.push(pair.close)
    const client = clientOn(pair.conn)
    await rest(persistence.outgoingStream(client))
    expect(persistence.outgoingStream(client)).toBe('the persistence stream')
    const sent = [{ ...publish(0), messageId: 7 }]
    expect(await arrived(pair, wire(sent).length)).toEqual(wire(sent))
    expect(calls.filter(([what]) => what === 'update')).toHaveLength(1)
  })

  it('takes at most QUEUE_HEAD_PACKETS at the connect, refused ones included', async () => {
    const refused = (i: number) => ({ ...publish(i), payload: Buffer.from([0xff]) })
    const queue = Array.from({ length: QUEUE_HEAD_PACKETS + 10 }, (_, i) => refused(i))
    const { persistence, calls } = setup(queue)
    const pair = await socketPair()
    cleanup.push(pair.close)
    const left = await rest(persistence.outgoingStream(clientOn(pair.conn)))
    expect(left).toHaveLength(10)
    expect(calls.filter(([what]) => what === 'clear')).toHaveLength(QUEUE_HEAD_PACKETS)
    expect(pair.writes).toEqual([])
  })

  it('uncorks the socket when the head fails (a hook that throws)', async () => {
    const { broker, persistence } = setup([publish(0)])
    broker.authorizeForward = () => {
      throw new Error('hook failed')
    }
    const pair = await socketPair()
    cleanup.push(pair.close)
    const client = clientOn(pair.conn)
    broker.emit('client', client)
    expect(pair.conn.writableCorked).toBe(1)
    expect(() => persistence.outgoingStream(client)).toThrow('hook failed')
    expect(pair.conn.writableCorked).toBe(0)
  })

  it('does not cork a socket that still has bytes to send (its CONNACK could wait for a drain)', async () => {
    const { broker } = setup([])
    const pair = await socketPair()
    cleanup.push(pair.close)
    pair.conn.cork()
    pair.conn.write(Buffer.alloc(10))
    const client = clientOn(pair.conn)
    broker.emit('client', client)
    expect(pair.conn.writableCorked).toBe(1)
    pair.conn.uncork()
  })

  it('does not cork a client registered after its CONNACK went out (one taking over an id)', async () => {
    const { broker, persistence } = setup([])
    const pair = await socketPair()
    cleanup.push(pair.close)
    const late = { ...clientOn(pair.conn), connackSent: true }
    broker.emit('client', late)
    expect(pair.conn.writableCorked).toBe(0)
    // nor does an empty queue uncork a socket it did not cork
    const client = clientOn(pair.conn)
    pair.conn.cork()
    await rest(persistence.outgoingStream(client))
    expect(pair.conn.writableCorked).toBe(1)
    pair.conn.uncork()
  })
})

describe('skipPipelinesOfWholeQueues', () => {
  /** A transform that records what goes through it. */
  const recorder = () => {
    const seen: unknown[] = []
    const transform = new Transform({
      objectMode: true,
      transform(chunk, _encoding, next) {
        seen.push(chunk)
        next()
      },
    })
    return { seen, transform }
  }

  it("skips Node's pipeline for the rest of a queue that went out whole, as aedes calls it", async () => {
    const { persistence } = setup([publish(0)]) // (writeQueueHeads installs it)
    const pair = await socketPair()
    cleanup.push(pair.close)
    const whole = persistence.outgoingStream(clientOn(pair.conn)) as Readable
    expect(wroteWholeQueue(whole)).toBe(true)
    const { transform } = recorder()
    const done: unknown[][] = []
    // aedes' emptyQueue: pipeline(outgoing, through(clearQueue), done)
    const returned = stream.pipeline(whole, transform, (...args: unknown[]) => done.push(args))
    expect(returned).toBe(transform)
    // called back later, without an error, as after an empty stream; the stream never read
    expect(done).toEqual([])
    await new Promise((r) => process.nextTick(r))
    expect(done).toEqual([[]])
    // never read: Node's pipeline would have ended it by now
    await new Promise((r) => setTimeout(r, 20))
    expect(whole.readableEnded).toBe(false)
    expect(done).toHaveLength(1)
  })

  it("leaves every other pipeline to Node's, installed once, its promise form Node's own", async () => {
    skipPipelinesOfWholeQueues()
    const installed = stream.pipeline
    skipPipelinesOfWholeQueues()
    expect(stream.pipeline).toBe(installed)
    const { seen, transform } = recorder()
    await new Promise((resolve, reject) =>
      stream.pipeline(Readable.from([1, 2, 3]), transform, (err) =>
        err ? reject(err) : resolve(undefined),
      ),
    )
    expect(seen).toEqual([1, 2, 3])
    // a queue's rest with packets left (not whole) goes through Node's pipeline too
    const { persistence } = setup(Array.from({ length: 40 }, (_, i) => publish(i, 1000)))
    const pair = await socketPair()
    cleanup.push(pair.close)
    const rest = persistence.outgoingStream(clientOn(pair.conn)) as Readable
    expect(wroteWholeQueue(rest)).toBe(false)
    const left = recorder()
    await new Promise((resolve, reject) =>
      stream.pipeline(rest, left.transform, (err) => (err ? reject(err) : resolve(undefined))),
    )
    expect(left.seen.length).toBeGreaterThan(0)
    expect(promisify(stream.pipeline)).toBe(streamPromises.pipeline)
  })

  it('reaches modules that import pipeline as an ES module, as aedes does', async () => {
    skipPipelinesOfWholeQueues()
    // an ES module's named import of a built-in follows its CommonJS export only once
    // syncBuiltinESMExports has run
    const esm = (await import('node:stream')) as { pipeline: unknown }
    expect(esm.pipeline).toBe(stream.pipeline)
  })
})
