import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { EventEmitter } from 'node:events'
import { afterEach, describe, expect, it } from 'vitest'
import { encodeEnvelope } from '../../../sdk/protocol/envelope.js'
import type { MessageId } from '../../../sdk/protocol/ids.js'
import { EmbeddedBrokerPersistence, FANOUT_MIN_CLIENTS } from './broker-persistence.js'
import { type Db, openDatabase } from './database.js'
import { EmbeddedMessageStore } from './message-store.js'
import { SqliteWriter, WRITE_BEHIND_MAX_OPS } from './writer.js'
import { databaseOfSchema } from '../../../test/helpers/embedded-db.js'

const broker = { id: 'broker-1' }
const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

/** A persistence on a database file that can be closed and opened again, as a restart does. */
async function open(dir?: string, errors?: unknown[]) {
  const dataDir = dir ?? mkdtempSync(join(tmpdir(), 'mqpush-bp-'))
  if (!dir) dirs.push(dataDir)
  const db = openDatabase({ dataDir })
  let crashed = false
  const writer = new SqliteWriter(db, (e) => {
    if (crashed) return // kill -9: the write-behind timer of a dead process never fires
    if (!errors) throw e
    errors.push(e) // a test that makes writes fail on purpose
  })
  const p = new EmbeddedBrokerPersistence(db, writer)
  await p.setup(broker)
  return {
    p,
    db,
    writer,
    dataDir,
    /** Simulates kill -9: whatever is committed stays, nothing else runs. */
    crash() {
      crashed = true
      db.close()
    },
    settle: () => writer.commit(() => {}),
  }
}

const list = async (stream: Readable) => {
  const out: any[] = []
  for await (const x of stream) out.push(x)
  return out
}

/** The payloads a client's queue holds, in order (publishes only). */
const payloadsOf = async (p: EmbeddedBrokerPersistence, clientId: string) =>
  (await list(p.outgoingStream({ id: clientId }))).map((x) => x.payload.toString())

const packet = (counter: number, payload: Buffer | string = 'hello') => ({
  cmd: 'publish',
  topic: 'mqp/t',
  payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
  qos: 1,
  retain: false,
  dup: false,
  brokerId: broker.id,
  brokerCounter: counter,
})

/**
 * What aedes does to two queued entries: the first is sent and released (QoS 2); the second is
 * sent, and another broker's packet (payload 'other broker') takes its packet identifier.
 */
async function releaseAndTakeOver(
  p: EmbeddedBrokerPersistence,
  released: { client: string; counter: number; messageId: number },
  taken: { client: string; counter: number; messageId: number },
) {
  const { messageId } = released
  await p.outgoingUpdate({ id: released.client }, { ...packet(released.counter), messageId })
  await p.outgoingUpdate({ id: released.client }, { cmd: 'pubrel', messageId })
  await p.outgoingUpdate(
    { id: taken.client },
    { ...packet(taken.counter), messageId: taken.messageId },
  )
  await p.outgoingUpdate(
    { id: taken.client },
    { ...packet(9, 'other broker'), brokerId: 'broker-2', messageId: taken.messageId },
  )
}

/** An accepted message as the pipeline stores it. */
const message = (id: string) => ({
  id: id as MessageId,
  appId: 'ap1' as never,
  targetType: 'regId' as const,
  target: { regIds: ['r1'] } as never,
  content: { kind: 'passThrough' as const, payload: 'x' },
  createdAt: 1000,
  expiresAt: 9_000_000_000_000,
  state: 'accepted' as const,
  funnel: { planned: 1, invalid: 0, filtered: 0, valid: 1, delivered: 0, clicked: 0 },
})

/** No device has a number: these tests keep no receipts. */
const noDevices = () => undefined

/** Ids of the messages still accepted (what recovery would dispatch again). */
const accepted = async (db: Db) =>
  (
    await new EmbeddedMessageStore(db, new SqliteWriter(db, () => {}), noDevices).listAccepted(10)
  ).messages.map((m) => m.id)

const ioError = () => {
  throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' })
}

/** The clients of the queue rows, in sequence order. */
const rowClients = (db: Db) =>
  (
    db.prepare('SELECT client_id FROM broker_outgoing ORDER BY seq').all() as Array<{
      client_id: string
    }>
  ).map((r) => r.client_id)

const count = (db: Db, table: string) =>
  (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n

describe('EmbeddedBrokerPersistence durability', () => {
  it('restores subscriptions and the topic trie after a crash', async () => {
    const a = await open()
    await a.p.addSubscriptions({ id: 'c1' }, [
      { topic: 'mqp/+/all', qos: 1, rh: 0, rap: true, nl: false },
      { topic: 'mqp/x', qos: 0 },
    ])
    await a.p.addSubscriptions({ id: 'c2' }, [{ topic: 'mqp/x', qos: 1 }])
    await a.p.removeSubscriptions({ id: 'c2' }, ['mqp/x'])
    a.crash()
    const b = await open(a.dataDir)
    expect(await b.p.subscriptionsByClient({ id: 'c1' })).toEqual([
      { topic: 'mqp/+/all', qos: 1, rh: 0, rap: true, nl: false },
      { topic: 'mqp/x', qos: 0 },
    ])
    expect(await b.p.subscriptionsByTopic('mqp/a/all')).toEqual([
      { clientId: 'c1', topic: 'mqp/+/all', qos: 1, rh: 0, rap: true, nl: false },
    ])
    expect(await b.p.subscriptionsByTopic('mqp/x')).toEqual([]) // QoS 0 is not queued for
    expect(await b.p.countOffline()).toEqual({ subsCount: 1, clientsCount: 1 })
    b.crash()
  })

  it('restores offline queues (QoS 2 releases included), stores a shared packet once', async () => {
    const a = await open()
    await a.p.outgoingEnqueueCombi(
      [{ clientId: 'c1' }, { clientId: 'c2' }, { clientId: 'c3' }],
      packet(1),
    )
    await a.p.outgoingEnqueueCombi([{ clientId: 'c1' }], packet(2, 'second'))
    // the shared packet has a row of its own; the one queued for c1 alone is in c1's queue row
    expect(count(a.db, 'broker_packets')).toBe(1)
    expect(count(a.db, 'broker_outgoing')).toBe(4)
    // c1 got the first in flight, c2 acknowledged it, c3 moved on to pubrel
    await a.p.outgoingUpdate({ id: 'c1' }, { ...packet(1), messageId: 11 })
    await a.p.outgoingUpdate({ id: 'c2' }, { ...packet(1), messageId: 12 })
    const acked = await a.p.outgoingClearMessageId({ id: 'c2' }, { messageId: 12 })
    expect(acked?.payload.toString()).toBe('hello')
    await a.p.outgoingUpdate({ id: 'c3' }, { ...packet(1), messageId: 13 })
    await a.p.outgoingUpdate({ id: 'c3' }, { cmd: 'pubrel', messageId: 13 })
    await a.settle()
    a.crash()

    const b = await open(a.dataDir)
    const c1 = await list(b.p.outgoingStream({ id: 'c1' }))
    // a QoS 1 packet id is not kept across a crash: the packet goes out again with a new one
    expect(c1.map((p) => [p.payload.toString(), p.messageId])).toEqual([
      ['hello', undefined],
      ['second', undefined],
    ])
    expect(await list(b.p.outgoingStream({ id: 'c2' }))).toEqual([])
    expect(await list(b.p.outgoingStream({ id: 'c3' }))).toEqual([{ cmd: 'pubrel', messageId: 13 }])
    // the first packet is still needed by c1; delivering and acknowledging it there frees it
    await b.p.outgoingUpdate({ id: 'c1' }, { ...packet(1), messageId: 21 })
    await b.p.outgoingClearMessageId({ id: 'c1' }, { messageId: 21 })
    await b.settle()
    expect(count(b.db, 'broker_packets')).toBe(0) // 'second' is in its queue row
    expect(b.p.queuedCount()).toBe(2)
    b.crash()
  })

  it('keeps string payloads, retained messages, wills and QoS 2 incoming packets', async () => {
    const a = await open()
    await a.p.outgoingEnqueue({ clientId: 'c1' }, { ...packet(5), payload: 'as string' })
    await a.p.storeRetained({
      ...packet(6),
      retain: true,
      topic: 'r/1',
      payload: Buffer.from('kept'),
    })
    await a.p.putWill(
      { id: 'c1' },
      { topic: 'w', payload: Buffer.from('bye'), qos: 0, retain: false },
    )
    await a.p.incomingStorePacket({ id: 'c1' }, { ...packet(7), qos: 2, messageId: 3 })
    a.crash()
    const b = await open(a.dataDir)
    expect((await list(b.p.outgoingStream({ id: 'c1' })))[0].payload).toBe('as string')
    expect((await list(b.p.createRetainedStream('r/#'))).map((p) => p.payload.toString())).toEqual([
      'kept',
    ])
    expect((await b.p.getWill({ id: 'c1' }))?.payload.toString()).toBe('bye')
    expect((await b.p.incomingGetPacket({ id: 'c1' }, { messageId: 3 })).messageId).toBe(3)
    b.crash()
  })

  it('sweeps expired envelopes from queues, leaving in-flight ones to their PUBACK', async () => {
    const a = await open()
    const env = (expiresAt: number) =>
      Buffer.from(
        encodeEnvelope({
          id: `m${'0'.repeat(18)}${expiresAt % 10}` as MessageId,
          expiresAt,
          kind: 'passThrough',
          sentAt: 1_700_000_000_000,
          target: { type: 'all' },
          payload: 'p',
        }),
      )
    await a.p.outgoingEnqueueCombi(
      [{ clientId: 'c1' }, { clientId: 'c2' }],
      packet(1, env(1_800_000_000_001)),
    )
    await a.p.outgoingEnqueueCombi([{ clientId: 'c1' }], packet(2, env(1_900_000_000_002)))
    await a.p.outgoingEnqueueCombi([{ clientId: 'c1' }], packet(3, 'not an envelope'))
    await a.p.outgoingUpdate({ id: 'c2' }, { ...packet(1), messageId: 4 }) // in flight at c2
    expect(await a.p.sweepExpired(1_850_000_000_000)).toBe(1)
    const c1 = await list(a.p.outgoingStream({ id: 'c1' }))
    expect(c1.map((p) => p.brokerCounter)).toEqual([2, 3])
    expect((await list(a.p.outgoingStream({ id: 'c2' }))).length).toBe(1)
    await a.settle()
    a.crash()
    const b = await open(a.dataDir)
    expect((await list(b.p.outgoingStream({ id: 'c1' }))).length).toBe(2)
    b.crash()
  })

  it('does not stream an entry before its enqueue is durable', async () => {
    const a = await open()
    const enqueued = a.p.outgoingEnqueueCombi([{ clientId: 'c1' }], packet(1))
    // a device connecting in this instant: aedes delivers the packet live after the commit
    expect(await list(a.p.outgoingStream({ id: 'c1' }))).toEqual([])
    await enqueued
    expect((await list(a.p.outgoingStream({ id: 'c1' }))).length).toBe(1)
    a.crash()
  })

  it('tolerates a packet identifier for a packet it does not queue (a racing unsubscribe)', async () => {
    const a = await open()
    await expect(
      a.p.outgoingUpdate({ id: 'c9' }, { ...packet(7), messageId: 1 }),
    ).resolves.toBeUndefined()
    await a.p.outgoingEnqueueCombi([{ clientId: 'c1' }], packet(1))
    await expect(
      a.p.outgoingUpdate({ id: 'c1' }, { ...packet(8), messageId: 2 }),
    ).resolves.toBeUndefined()
    expect((await list(a.p.outgoingStream({ id: 'c1' })))[0].messageId).toBeUndefined()
    a.crash()
  })

  it('drops a client entirely', async () => {
    const a = await open()
    await a.p.addSubscriptions({ id: 'c1' }, [{ topic: 'x', qos: 1 }])
    await a.p.outgoingEnqueueCombi([{ clientId: 'c1' }], packet(1))
    await a.p.dropClient('c1')
    a.crash()
    const b = await open(a.dataDir)
    expect(await b.p.subscriptionsByClient({ id: 'c1' })).toEqual([])
    expect(await list(b.p.outgoingStream({ id: 'c1' }))).toEqual([])
    expect(count(b.db, 'broker_packets')).toBe(0)
    b.crash()
  })

  it('keeps a client marked unsettled across a crash until it is settled', async () => {
    const a = await open()
    await a.p.markUnsettled('c1')
    await a.p.markUnsettled('c2')
    await a.p.markUnsettled('c2') // marked twice: one mark
    expect(a.p.isUnsettled('c1')).toBe(true)
    expect(a.p.isUnsettled('c3')).toBe(false)
    a.crash() // the marks were durable when their promises resolved
    const b = await open(a.dataDir)
    expect([b.p.isUnsettled('c1'), b.p.isUnsettled('c2')]).toEqual([true, true])
    expect(count(b.db, 'broker_unsettled')).toBe(2)
    b.p.settle('c1')
    expect(b.p.isUnsettled('c1')).toBe(false) // at once in memory; the row write-behind
    await b.settle()
    b.crash()
    const c = await open(a.dataDir)
    expect([c.p.isUnsettled('c1'), c.p.isUnsettled('c2')]).toEqual([false, true])
    // a dropped client takes its mark along
    await c.p.dropClient('c2')
    expect(c.p.isUnsettled('c2')).toBe(false)
    c.crash()
    const d = await open(a.dataDir)
    expect(d.p.isUnsettled('c2')).toBe(false)
    expect(count(d.db, 'broker_unsettled')).toBe(0)
    d.crash()
  })

  it('a settle lost in a crash leaves the mark (one reconcile more, nothing missed)', async () => {
    const a = await open()
    await a.p.markUnsettled('c1')
    a.p.settle('c1')
    a.crash() // before the write-behind delay: the settle is lost
    const b = await open(a.dataDir)
    expect(b.p.isUnsettled('c1')).toBe(true)
    // marked again after a settle still queued: the row stays (the writer keeps their order)
    b.p.settle('c1')
    await b.p.markUnsettled('c1')
    b.crash()
    const c = await open(a.dataDir)
    expect(c.p.isUnsettled('c1')).toBe(true)
    c.crash()
  })
})

describe('EmbeddedBrokerPersistence fan-outs (a packet queued for many clients at once)', () => {
  const N = 20000 // three chunks of bits
  const clients = Array.from({ length: N }, (_, i) => `c${i}`)
  const subs = clients.map((clientId) => ({ clientId }))
  const ack = async (p: EmbeddedBrokerPersistence, clientId: string, counter: number, id = 1) => {
    await p.outgoingUpdate({ id: clientId }, { ...packet(counter), messageId: id })
    await p.outgoingClearMessageId({ id: clientId }, { messageId: id })
  }

  it('writes one row for the whole enqueue, and restores exactly what was not acknowledged', async () => {
    const a = await open()
    expect(N).toBeGreaterThan(FANOUT_MIN_CLIENTS)
    await a.p.outgoingEnqueueCombi(subs, packet(1, 'broadcast'))
    // a smaller enqueue keeps its rows
    await a.p.outgoingEnqueueCombi(subs.slice(0, 3), packet(2, 'small'))
    expect(count(a.db, 'broker_fanouts')).toBe(1)
    expect(count(a.db, 'broker_outgoing')).toBe(3)
    // acknowledged: every third client, across all chunks
    const acked = clients.filter((_, i) => i % 3 === 0)
    for (const c of acked) await ack(a.p, c, 1)
    await a.settle()
    expect(count(a.db, 'broker_outgoing')).toBe(3) // no row per acknowledgement either
    expect(count(a.db, 'broker_fanout_done')).toBe(3)
    a.crash()

    const b = await open(a.dataDir)
    expect(b.p.queuedCount()).toBe(N - acked.length + 3)
    expect(await payloadsOf(b.p, 'c0')).toEqual(['small'])
    // order kept across the two sources: the fan-out entry came first
    expect(await payloadsOf(b.p, 'c1')).toEqual(['broadcast', 'small'])
    expect(await payloadsOf(b.p, 'c3')).toEqual([])
    expect(await payloadsOf(b.p, `c${N - 1}`)).toEqual(['broadcast'])
    expect(await payloadsOf(b.p, `c${N - 2}`)).toEqual([])
    // the rest acknowledged: the packet, its fan-out row and its bits all go
    const done = new Set(acked)
    for (const c of clients) if (!done.has(c)) await ack(b.p, c, 1)
    await b.settle()
    expect(count(b.db, 'broker_fanouts')).toBe(0)
    expect(count(b.db, 'broker_fanout_done')).toBe(0)
    expect(count(b.db, 'broker_packets')).toBe(1) // 'small' is still queued
    b.crash()
    const c = await open(a.dataDir)
    expect(c.p.queuedCount()).toBe(3)
    c.crash()
  })

  it('numbers later entries after a restored fan-out, and keeps a client’s queue in order', async () => {
    const a = await open()
    await a.p.outgoingEnqueueCombi(subs.slice(0, 100), packet(1, 'first'))
    a.crash()
    const b = await open(a.dataDir)
    await b.p.outgoingEnqueueCombi([{ clientId: 'c5' }], packet(2, 'second'))
    await b.p.outgoingEnqueueCombi(subs.slice(0, 100), packet(3, 'third'))
    b.crash()
    const c = await open(a.dataDir)
    expect(await payloadsOf(c.p, 'c5')).toEqual(['first', 'second', 'third'])
    c.crash()
  })

  it('moves an entry replaced by a QoS 2 release into a row of its own', async () => {
    const a = await open()
    await a.p.outgoingEnqueueCombi(subs.slice(0, 100), packet(1))
    await releaseAndTakeOver(
      a.p,
      { client: 'c7', counter: 1, messageId: 9 },
      { client: 'c8', counter: 1, messageId: 4 },
    )
    await a.settle()
    expect(count(a.db, 'broker_outgoing')).toBe(2)
    a.crash()
    const b = await open(a.dataDir)
    expect(await list(b.p.outgoingStream({ id: 'c7' }))).toEqual([{ cmd: 'pubrel', messageId: 9 }])
    expect(await payloadsOf(b.p, 'c8')).toEqual(['other broker'])
    expect(b.p.queuedCount()).toBe(100)
    b.crash()
  })

  it('drops a client’s entries and sweeps expired ones durably', async () => {
    const a = await open()
    const env = Buffer.from(
      encodeEnvelope({
        id: `m${'0'.repeat(19)}` as MessageId,
        expiresAt: 1_800_000_000_000,
        kind: 'passThrough',
        sentAt: 1_700_000_000_000,
        target: { type: 'all' },
        payload: 'p',
      }),
    )
    await a.p.outgoingEnqueueCombi(subs.slice(0, 100), packet(1, 'kept'))
    await a.p.outgoingEnqueueCombi(subs.slice(0, 100), packet(2, env))
    await a.p.dropClient('c1')
    // c2 has the expiring one in flight: its PUBACK clears it
    await a.p.outgoingUpdate({ id: 'c2' }, { ...packet(1), messageId: 1 })
    await a.p.outgoingUpdate({ id: 'c2' }, { ...packet(2), messageId: 2 })
    expect(await a.p.sweepExpired(1_850_000_000_000)).toBe(98)
    a.crash() // no settle: both were durable commits
    const b = await open(a.dataDir)
    expect(await payloadsOf(b.p, 'c1')).toEqual([])
    expect(await payloadsOf(b.p, 'c0')).toEqual(['kept'])
    expect((await list(b.p.outgoingStream({ id: 'c2' }))).length).toBe(2)
    expect(b.p.queuedCount()).toBe(99 + 1)
    b.crash()
  })
})

describe('EmbeddedBrokerPersistence queues of connected clients', () => {
  it('keeps a connected client’s emptied queue until the client disconnects', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'mqpush-bp-'))
    dirs.push(dataDir)
    const db = openDatabase({ dataDir })
    const writer = new SqliteWriter(db, (e) => {
      throw e
    })
    const clients: Record<string, unknown> = { on: {} }
    const aedes = Object.assign(new EventEmitter(), { id: 'broker-1', clients })
    const p = new EmbeddedBrokerPersistence(db, writer)
    await p.setup(aedes)
    await p.outgoingEnqueueCombi([{ clientId: 'on' }, { clientId: 'off' }], packet(1))
    for (const id of ['on', 'off']) {
      await p.outgoingUpdate({ id }, { ...packet(1), messageId: 1 })
      await p.outgoingClearMessageId({ id }, { messageId: 1 })
    }
    expect(p.queuedCount()).toBe(0)
    expect(p.queuesHeld()).toBe(1) // the connected one's, empty
    delete clients.on
    aedes.emit('clientDisconnect', { id: 'on' })
    expect(p.queuesHeld()).toBe(0)
    await writer.commit(() => {})
    db.close()
  })

  it('starts a kept queue over: a client matched twice gets both entries of each broadcast', async () => {
    // found in review: the emptied queue kept its lookup hint, and the second broadcast's two
    // packet ids both went to its first entry
    const db = openDatabase({ dataDir: ':memory:' })
    const writer = new SqliteWriter(db, (e) => {
      throw e
    })
    const aedes = Object.assign(new EventEmitter(), { id: 'broker-1', clients: { x: {} } })
    const p = new EmbeddedBrokerPersistence(db, writer)
    await p.setup(aedes)
    // x matched by two of its subscriptions (say a/+ and a/b), with other devices
    const subs = [
      { clientId: 'x' },
      { clientId: 'x' },
      ...Array.from({ length: FANOUT_MIN_CLIENTS }, (_, i) => ({ clientId: `d${i}` })),
    ]
    let id = 1
    for (const counter of [1, 2, 3]) {
      await p.outgoingEnqueueCombi(subs, packet(counter))
      const [first, second] = [id++, id++]
      await p.outgoingUpdate({ id: 'x' }, { ...packet(counter), messageId: first })
      await p.outgoingUpdate({ id: 'x' }, { ...packet(counter), messageId: second })
      expect(await p.outgoingClearMessageId({ id: 'x' }, { messageId: first })).toBeDefined()
      expect(await p.outgoingClearMessageId({ id: 'x' }, { messageId: second })).toBeDefined()
    }
    expect(await list(p.outgoingStream({ id: 'x' }))).toEqual([])
    await writer.commit(() => {})
    db.close()
  })
})

describe('EmbeddedBrokerPersistence after a failed write-behind batch', () => {
  it('writes a fan-out’s bits again with the next acknowledgement, those of the failed batch too', async () => {
    // found in review: the failed op stayed the one later acknowledgements gathered into
    const errors: unknown[] = []
    const { p, db, writer, dataDir } = await open(undefined, errors)
    const clients = Array.from({ length: 40 }, (_, i) => `c${i}`)
    await p.outgoingEnqueueCombi(
      clients.map((clientId) => ({ clientId })),
      packet(1),
    )
    const ack = async (clientId: string) => {
      await p.outgoingUpdate({ id: clientId }, { ...packet(1), messageId: 1 })
      await p.outgoingClearMessageId({ id: clientId }, { messageId: 1 })
    }
    // a batch fails for what is not one op's fault (disk full, I/O): c0's bit is not written
    writer.later(() => {
      throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' })
    })
    await ack('c0')
    writer.flush()
    expect(errors.length).toBeGreaterThan(0)
    for (const c of clients.slice(1, 30)) await ack(c)
    await writer.commit(() => {})
    db.close()
    const b = await open(dataDir)
    const queued: string[] = []
    for (const c of clients) if ((await list(b.p.outgoingStream({ id: c }))).length) queued.push(c)
    expect(queued).toEqual(clients.slice(30))
    b.crash()
  })
})

describe('EmbeddedBrokerPersistence replaced entries', () => {
  it('restores a released entry that another broker’s packet took over as that packet', async () => {
    // found in review: the row kept cmd 'pubrel' when a publish replaced the release
    const a = await open()
    await a.p.outgoingEnqueueCombi([{ clientId: 'c1' }], packet(1))
    await a.p.outgoingUpdate({ id: 'c1' }, { ...packet(1), messageId: 5 })
    await a.p.outgoingUpdate({ id: 'c1' }, { cmd: 'pubrel', messageId: 5 })
    await a.p.outgoingUpdate(
      { id: 'c1' },
      { ...packet(9, 'other broker'), brokerId: 'broker-2', messageId: 5 },
    )
    await a.settle()
    a.crash()
    const b = await open(a.dataDir)
    const restored = await list(b.p.outgoingStream({ id: 'c1' }))
    expect(restored.map((x) => [x.cmd, x.payload?.toString()])).toEqual([
      ['publish', 'other broker'],
    ])
    b.crash()
  })
})

describe('EmbeddedBrokerPersistence recoverable enqueues (the message pipeline’s)', () => {
  const changes = (db: Db) => (db.prepare('SELECT total_changes() AS n').get() as { n: number }).n
  const ack = async (
    p: EmbeddedBrokerPersistence,
    clientId: string,
    counter: number,
    id: number,
  ) => {
    await p.outgoingUpdate({ id: clientId }, { ...packet(counter), messageId: id })
    await p.outgoingClearMessageId({ id: clientId }, { messageId: id })
  }

  it('never writes an entry acknowledged within the write-behind delay; writes and restores the rest', async () => {
    const a = await open()
    await a.p.enqueueRecoverable([{ clientId: 'c1' }, { clientId: 'c2' }], packet(1))
    expect((await list(a.p.outgoingStream({ id: 'c2' }))).length).toBe(1) // queued at once
    await ack(a.p, 'c1', 1, 1)
    await a.settle() // a durable commit does not take the deferred rows along
    expect(count(a.db, 'broker_packets') + count(a.db, 'broker_outgoing')).toBe(0)
    const before = changes(a.db)
    a.writer.flush()
    // the packet and c2's row; c1's row neither inserted nor deleted
    expect(changes(a.db) - before).toBe(2)
    expect(count(a.db, 'broker_outgoing')).toBe(1)

    // all acknowledged before the flush: nothing at all
    await a.p.enqueueRecoverable([{ clientId: 'c1' }], packet(2))
    await ack(a.p, 'c1', 2, 2)
    const quiet = changes(a.db)
    a.writer.flush()
    expect(changes(a.db)).toBe(quiet)
    a.crash()
    const b = await open(a.dataDir)
    expect((await list(b.p.outgoingStream({ id: 'c1' }))).length).toBe(0)
    const c2 = await list(b.p.outgoingStream({ id: 'c2' }))
    expect(c2.map((x) => x.payload.toString())).toEqual(['hello'])
    // written, then acknowledged: deleted as usual
    await ack(b.p, 'c2', 1, 7)
    b.writer.flush()
    expect(count(b.db, 'broker_outgoing') + count(b.db, 'broker_packets')).toBe(0)
    b.crash()
  })

  it('deletes an entry’s row and packet when it is acknowledged after the deferred lane wrote them', async () => {
    // the same process throughout: once the deferred lane has committed, the entry and its
    // packet are ordinary rows, and an acknowledgement must delete them (not drop them as
    // never written)
    const a = await open()
    await a.p.enqueueRecoverable([{ clientId: 'c1' }, { clientId: 'c2' }], packet(1))
    a.writer.flush()
    expect(rowClients(a.db)).toEqual(['c1', 'c2'])
    expect(count(a.db, 'broker_packets')).toBe(1)
    await ack(a.p, 'c1', 1, 1)
    a.writer.flush()
    expect(rowClients(a.db)).toEqual(['c2'])
    expect(count(a.db, 'broker_packets')).toBe(1) // c2's entry still holds it
    await ack(a.p, 'c2', 1, 2)
    a.writer.flush()
    expect(count(a.db, 'broker_outgoing') + count(a.db, 'broker_packets')).toBe(0)
    a.crash()
    const b = await open(a.dataDir)
    for (const c of ['c1', 'c2']) expect(await list(b.p.outgoingStream({ id: c }))).toEqual([])
    b.crash()
  })

  it('makes the message’s dispatched mark durable with its queue, never before', async () => {
    // the pipeline: message accepted (durable), enqueued recoverably, marked dispatched; a
    // later push's commit must not make the mark durable while the queue row is not
    const a = await open()
    const messages = new EmbeddedMessageStore(a.db, a.writer, noDevices)
    await messages.insertMessage(message('m1'))
    await a.p.enqueueRecoverable([{ clientId: 'offline' }], packet(1))
    messages.markDispatched('m1' as MessageId)
    await messages.insertMessage(message('m2')) // the next push: a durable commit
    // a crash now: m1 still accepted (recovery dispatches it again), its row not written
    a.crash()
    const b = await open(a.dataDir)
    expect(await accepted(b.db)).toEqual(['m1', 'm2'])
    expect((await list(b.p.outgoingStream({ id: 'offline' }))).length).toBe(0)
    // the same with the deferred lane committed: m1 dispatched, its row there
    await b.p.enqueueRecoverable([{ clientId: 'offline' }], packet(2))
    new EmbeddedMessageStore(b.db, b.writer, noDevices).markDispatched('m1' as MessageId)
    b.writer.flush()
    b.crash()
    const c = await open(a.dataDir)
    expect(await accepted(c.db)).toEqual(['m2'])
    expect((await list(c.p.outgoingStream({ id: 'offline' }))).length).toBe(1)
    c.crash()
  })

  it('writes nothing for entries dropped or expired before the flush', async () => {
    const a = await open()
    const expiring = Buffer.from(
      encodeEnvelope({
        id: 'm0000000000000000000' as MessageId,
        kind: 'passThrough',
        sentAt: 1,
        expiresAt: 1_800_000_000_000,
        target: { type: 'regId' },
        payload: 'x',
      }),
    )
    await a.p.enqueueRecoverable([{ clientId: 'c1' }, { clientId: 'c2' }], packet(1))
    await a.p.enqueueRecoverable([{ clientId: 'c3' }], packet(2, expiring))
    await a.p.dropClient('c1')
    expect(await a.p.sweepExpired(1_850_000_000_000)).toBe(1)
    a.writer.flush()
    expect(rowClients(a.db)).toEqual(['c2'])
    expect(count(a.db, 'broker_packets')).toBe(1)
    a.crash()
  })

  it('writes a replaced entry as it stands when the deferred lane commits', async () => {
    const a = await open()
    await a.p.enqueueRecoverable([{ clientId: 'c1' }, { clientId: 'c2' }], packet(1))
    for (const c of ['c1', 'c2'])
      await a.p.outgoingUpdate({ id: c }, { ...packet(1), messageId: 5 })
    // c1's is released (QoS 2); c2's taken over by another broker's packet
    await a.p.outgoingUpdate({ id: 'c1' }, { cmd: 'pubrel', messageId: 5 })
    await a.p.outgoingUpdate(
      { id: 'c2' },
      { ...packet(9, 'other broker'), brokerId: 'broker-2', messageId: 5 },
    )
    await a.settle() // a commit: nothing of theirs is written yet
    expect(count(a.db, 'broker_outgoing')).toBe(0)
    a.writer.flush()
    a.crash()
    const b = await open(a.dataDir)
    expect(await list(b.p.outgoingStream({ id: 'c1' }))).toEqual([{ cmd: 'pubrel', messageId: 5 }])
    const c2 = await list(b.p.outgoingStream({ id: 'c2' }))
    expect(c2.map((x) => [x.brokerId, x.payload.toString()])).toEqual([
      ['broker-2', 'other broker'],
    ])
    expect(count(b.db, 'broker_packets')).toBe(1) // the first packet was never written
    b.crash()
  })

  it('writes a deferred entry’s new packet with it, even when a commit in between fails', async () => {
    const errors: unknown[] = []
    const { p, db, writer, dataDir } = await open(undefined, errors)
    await p.enqueueRecoverable([{ clientId: 'c1' }], packet(1))
    await p.outgoingUpdate({ id: 'c1' }, { ...packet(1), messageId: 5 })
    await p.outgoingUpdate(
      { id: 'c1' },
      { ...packet(9, 'other'), brokerId: 'broker-2', messageId: 5 },
    )
    // the next commit's batch fails (I/O): nothing the entry needs may be lost with it
    writer.later(() => {
      throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' })
    })
    await writer.commit(() => {}).catch(() => {})
    expect(errors.length).toBeGreaterThan(0)
    writer.flush()
    db.close()
    const b = await open(dataDir)
    const got = await list(b.p.outgoingStream({ id: 'c1' }))
    expect(got.map((x) => x.payload.toString())).toEqual(['other'])
    b.crash()
  })

  it('keeps a queue in enqueue order across a crash: a durable enqueue takes the deferred rows along', async () => {
    // found in review: a broadcast's durable commit kept it while the unicast push queued
    // before it was lost, and recovery then queued that push after the broadcast
    const a = await open()
    await a.p.enqueueRecoverable([{ clientId: 'c0' }], packet(1))
    const all = Array.from({ length: FANOUT_MIN_CLIENTS }, (_, i) => ({ clientId: `c${i}` }))
    await a.p.enqueueRecoverable(all, packet(2)) // a fan-out: durable
    await a.p.outgoingEnqueueCombi([{ clientId: 'c0' }], packet(3)) // an MQTT client's publish
    a.crash()
    const b = await open(a.dataDir)
    const got = await list(b.p.outgoingStream({ id: 'c0' }))
    expect(got.map((x) => x.brokerCounter)).toEqual([1, 2, 3])
    b.crash()
  })

  it('is not stopped by a stray row where it writes', async () => {
    // found in review: an insert failing on a key would have failed every later deferred batch
    const a = await open()
    const messages = new EmbeddedMessageStore(a.db, a.writer, noDevices)
    a.db
      .prepare("INSERT INTO broker_outgoing (seq, client_id, packet_id) VALUES (1, 'x', 999)")
      .run()
    await a.p.enqueueRecoverable([{ clientId: 'c1' }], packet(1))
    messages.markDispatched('m1' as MessageId)
    a.writer.flush()
    expect(rowClients(a.db)).toEqual(['c1'])
    a.crash()
  })

  it('commits a batch of WRITE_BEHIND_MAX_OPS rows at once, not after the delay', async () => {
    const a = await open()
    for (let i = 0; i < WRITE_BEHIND_MAX_OPS + 10; i++) {
      await a.p.enqueueRecoverable([{ clientId: `c${i % 50}` }], packet(i + 1))
    }
    await new Promise((resolve) => setImmediate(resolve))
    // the full batch, and the one begun after it, behind it in the lane
    expect(count(a.db, 'broker_outgoing')).toBe(WRITE_BEHIND_MAX_OPS + 10)
    a.crash()
  })

  it('carries both batches of a failed transaction to the next one, in order', async () => {
    const errors: unknown[] = []
    const { p, db, writer, dataDir } = await open(undefined, errors)
    for (let i = 0; i < WRITE_BEHIND_MAX_OPS + 10; i++) {
      await p.enqueueRecoverable([{ clientId: `c${i % 50}` }], packet(i + 1))
    }
    writer.later(() => {
      throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' })
    })
    await new Promise((resolve) => setImmediate(resolve))
    expect(errors.length).toBeGreaterThan(0)
    expect(count(db, 'broker_outgoing')).toBe(0)
    await p.enqueueRecoverable([{ clientId: 'c0' }], packet(WRITE_BEHIND_MAX_OPS + 11))
    writer.flush()
    expect(count(db, 'broker_outgoing')).toBe(WRITE_BEHIND_MAX_OPS + 11)
    db.close()
    const b = await open(dataDir)
    const c0 = await list(b.p.outgoingStream({ id: 'c0' }))
    const counters = c0.map((x) => x.brokerCounter as number)
    expect(counters).toEqual([...counters].sort((x, y) => x - y))
    b.crash()
  })

  it('never makes a mark durable without its rows when a durable enqueue took their batch along and failed', async () => {
    // found in the second review: rows joined the batch whose op had left with the commit, their
    // mark went to the lane, and only the mark committed once the disk was back
    const errors: unknown[] = []
    const a = await open(undefined, errors)
    const messages = new EmbeddedMessageStore(a.db, a.writer, noDevices)
    await messages.insertMessage(message('m1'))
    await messages.insertMessage(message('m2'))
    await a.p.enqueueRecoverable([{ clientId: 'off1' }], packet(1))
    messages.markDispatched('m1' as MessageId)
    const durable = a.p.outgoingEnqueueCombi([{ clientId: 'x' }], packet(2)).catch(() => {})
    a.writer.later(ioError) // that commit's transaction fails
    await a.p.enqueueRecoverable([{ clientId: 'off2' }], packet(3))
    messages.markDispatched('m2' as MessageId)
    await durable
    expect(errors.length).toBeGreaterThan(0)
    a.writer.flush() // the disk is back
    a.crash()
    const b = await open(a.dataDir)
    const off2 = await list(b.p.outgoingStream({ id: 'off2' }))
    expect((await accepted(b.db)).includes('m2' as MessageId) || off2.length === 1).toBe(true)
    b.crash()
  })

  it('writes a replaced entry’s new packet with its row, whichever batch holds the packet', async () => {
    // found in the second review: the row could commit in an earlier transaction than the packet
    const a = await open()
    await a.p.enqueueRecoverable([{ clientId: 'c0' }], packet(1))
    await a.p.outgoingUpdate({ id: 'c0' }, { ...packet(1), messageId: 5 })
    const durable = a.p.outgoingEnqueueCombi([{ clientId: 'x' }], packet(2)) // takes c0's row
    await a.p.outgoingUpdate(
      { id: 'c0' },
      { ...packet(9, 'other'), brokerId: 'broker-2', messageId: 5 },
    )
    await durable
    a.crash() // before the write-behind timer
    const b = await open(a.dataDir)
    const c0 = await list(b.p.outgoingStream({ id: 'c0' }))
    expect(c0.map((x) => x.payload.toString())).toEqual(['other'])
    b.crash()
  })

  it('writes the rows of a failed batch with the next one', async () => {
    const errors: unknown[] = []
    const { p, db, writer, dataDir } = await open(undefined, errors)
    await p.enqueueRecoverable([{ clientId: 'c1' }], packet(1))
    writer.deferred(() => {
      throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' })
    })
    writer.flush()
    expect(errors.length).toBe(2) // the batch's two ops
    expect(count(db, 'broker_outgoing')).toBe(0)
    await p.enqueueRecoverable([{ clientId: 'c1' }], packet(2))
    writer.flush()
    db.close()
    const b = await open(dataDir)
    const restored = await list(b.p.outgoingStream({ id: 'c1' }))
    expect(restored.map((x) => x.brokerCounter)).toEqual([1, 2])
    b.crash()
  })
})

describe('EmbeddedBrokerPersistence queue-row deletes (write-behind, gathered)', () => {
  const ack = async (p: EmbeddedBrokerPersistence, clientId: string, counter: number, id = 1) => {
    await p.outgoingUpdate({ id: clientId }, { ...packet(counter), messageId: id })
    await p.outgoingClearMessageId({ id: clientId }, { messageId: id })
  }

  /** Clients c0, c1 and c2, each with one queued packet (counters 1, 2 and 3) in a row of its own. */
  const threeQueued = async (errors?: unknown[]) => {
    const a = await open(undefined, errors)
    for (let i = 0; i < 3; i++) {
      await a.p.outgoingEnqueueCombi([{ clientId: `c${i}` }], packet(i + 1))
    }
    return a
  }

  it('deletes the rows of many acknowledgements in one op', async () => {
    const a = await open()
    for (let i = 0; i < 5; i++) {
      await a.p.outgoingEnqueueCombi([{ clientId: `c${i}` }], packet(i + 1, `m${i}`))
    }
    expect(count(a.db, 'broker_outgoing')).toBe(5)
    for (let i = 0; i < 4; i++) await ack(a.p, `c${i}`, i + 1)
    expect(a.writer.pending).toBe(1)
    a.writer.flush()
    expect(rowClients(a.db)).toEqual(['c4'])
    a.crash()
    const b = await open(a.dataDir)
    expect(b.p.queuedCount()).toBe(1)
    expect(await payloadsOf(b.p, 'c4')).toEqual(['m4'])
    b.crash()
  })

  it('starts a new op for deletes asked after the op ran', async () => {
    const a = await threeQueued()
    await ack(a.p, 'c0', 1)
    a.writer.flush() // the span's op runs
    await ack(a.p, 'c1', 2)
    a.writer.flush()
    expect(rowClients(a.db)).toEqual(['c2'])
    a.crash()
  })

  it('deletes the same rows when a constraint error runs the batch again', async () => {
    const errors: unknown[] = []
    const a = await threeQueued(errors)
    await ack(a.p, 'c0', 1)
    await ack(a.p, 'c1', 2)
    a.writer.later(() => {
      a.db.prepare(`INSERT INTO broker_retained (topic, meta) VALUES ('dup', '{}')`).run()
      a.db.prepare(`INSERT INTO broker_retained (topic, meta) VALUES ('dup', '{}')`).run()
    })
    a.writer.flush()
    expect(errors).toHaveLength(1)
    expect(rowClients(a.db)).toEqual(['c2'])
    a.crash()
  })

  it('starts a new op after a failed batch in which the op never ran', async () => {
    const errors: unknown[] = []
    const a = await threeQueued(errors)
    a.writer.later(ioError) // fails the batch before the deletes' op runs
    await ack(a.p, 'c0', 1)
    a.writer.flush()
    expect(errors.length).toBeGreaterThan(0)
    await ack(a.p, 'c1', 2)
    a.writer.flush()
    // c0's row stays (delivered again after a restart, as after a crash); c1's goes
    expect(rowClients(a.db)).toEqual(['c0', 'c2'])
    a.crash()
  })

  it('ends a span at WRITE_BEHIND_MAX_OPS rows', async () => {
    const a = await open()
    const n = WRITE_BEHIND_MAX_OPS + 2
    const subs = Array.from({ length: n }, (_, i) => ({ clientId: `c${i}` }))
    // one at a time: queue rows of their own (an enqueue for many clients is a fan-out)
    for (const sub of subs) await a.p.outgoingEnqueueCombi([sub], packet(1))
    for (const { clientId } of subs) await ack(a.p, clientId, 1)
    expect(a.writer.pending).toBe(2)
    a.writer.flush()
    expect(count(a.db, 'broker_outgoing')).toBe(0)
    a.crash()
  })

  it('never deletes a row before an op queued earlier writes it', async () => {
    const a = await open()
    await a.p.outgoingEnqueueCombi([{ clientId: 'c1' }], packet(1, 'first'))
    await a.p.outgoingEnqueueCombi(
      Array.from({ length: FANOUT_MIN_CLIENTS }, (_, i) => ({ clientId: `f${i}` })),
      packet(2, 'broadcast'),
    )
    // c1's acknowledgement queues a delete; then, before anything commits, c2 gets a row (a
    // durable enqueue) and leaves its queue, then f1's fan-out entry gets a row of its own (a
    // QoS 2 release) and leaves: each delete must run after its row's write, not with the
    // deletes queued before it
    await ack(a.p, 'c1', 1)
    const enqueued = a.p.outgoingEnqueueCombi([{ clientId: 'c2' }], packet(3, 'second'))
    await ack(a.p, 'c2', 3)
    await a.p.outgoingUpdate({ id: 'f1' }, { ...packet(2), messageId: 7 })
    await a.p.outgoingUpdate({ id: 'f1' }, { cmd: 'pubrel', messageId: 7 })
    await a.p.outgoingClearMessageId({ id: 'f1' }, { messageId: 7 })
    // and f2's entry, taken over by another broker's packet (a row of its own too)
    await a.p.outgoingUpdate({ id: 'f2' }, { ...packet(2), messageId: 8 })
    await a.p.outgoingUpdate(
      { id: 'f2' },
      { ...packet(9, 'other broker'), brokerId: 'broker-2', messageId: 8 },
    )
    await a.p.outgoingClearMessageId({ id: 'f2' }, { messageId: 8 })
    await enqueued
    a.writer.flush()
    expect(count(a.db, 'broker_outgoing')).toBe(0)
    a.crash()
    const b = await open(a.dataDir)
    expect(await payloadsOf(b.p, 'c1')).toEqual([])
    expect(await payloadsOf(b.p, 'c2')).toEqual([])
    expect(await list(b.p.outgoingStream({ id: 'f1' }))).toEqual([])
    expect(await list(b.p.outgoingStream({ id: 'f2' }))).toEqual([])
    expect(b.p.queuedCount()).toBe(FANOUT_MIN_CLIENTS - 2)
    b.crash()
  })
})

describe('EmbeddedBrokerPersistence packets queued for one client (stored in the queue row)', () => {
  const changes = (db: Db) => (db.prepare('SELECT total_changes() AS n').get() as { n: number }).n
  const rows = (db: Db) =>
    db
      .prepare('SELECT client_id, packet_id, cmd, meta IS NOT NULL AS inline FROM broker_outgoing')
      .all() as Array<{ client_id: string; packet_id: number; cmd: string | null; inline: number }>
  const expiring = (counter: number) => ({
    ...packet(
      counter,
      Buffer.from(
        encodeEnvelope({
          id: `m${String(counter).padStart(19, '0')}` as MessageId,
          expiresAt: 1_800_000_000_000,
          kind: 'passThrough',
          sentAt: 1_700_000_000_000,
          target: { type: 'all' },
          payload: 'p',
        }),
      ),
    ),
  })

  it('writes one row per queued packet and deletes one per acknowledgement, durable or recoverable', async () => {
    const a = await open()
    let before = changes(a.db)
    await a.p.outgoingEnqueueCombi([{ clientId: 'c1' }], packet(1, 'durable'))
    expect(changes(a.db) - before).toBe(1)
    await a.p.enqueueRecoverable([{ clientId: 'c1' }], packet(2, 'recoverable'))
    before = changes(a.db)
    a.writer.flush()
    expect(changes(a.db) - before).toBe(1)
    expect(count(a.db, 'broker_packets')).toBe(0)
    expect(rows(a.db).map((r) => [r.client_id, r.inline])).toEqual([
      ['c1', 1],
      ['c1', 1],
    ])
    a.crash()

    const b = await open(a.dataDir)
    const c1 = await list(b.p.outgoingStream({ id: 'c1' }))
    expect(c1.map((x) => [x.payload.toString(), x.brokerCounter])).toEqual([
      ['durable', 1],
      ['recoverable', 2],
    ])
    expect([...b.p.queuedPayloads()].map(String)).toEqual(['durable', 'recoverable'])
    before = changes(b.db)
    await b.p.outgoingUpdate({ id: 'c1' }, { ...packet(1), messageId: 1 })
    await b.p.outgoingClearMessageId({ id: 'c1' }, { messageId: 1 })
    b.writer.flush()
    expect(changes(b.db) - before).toBe(1) // the row, and the packet with it
    expect(count(b.db, 'broker_outgoing')).toBe(1)
    b.crash()
  })

  it('keeps the expiry of a packet in its queue row: restored, it is swept', async () => {
    const a = await open()
    await a.p.outgoingEnqueueCombi([{ clientId: 'c1' }], expiring(1))
    await a.p.outgoingEnqueueCombi([{ clientId: 'c1' }], packet(2, 'stays'))
    a.crash()
    const b = await open(a.dataDir)
    expect(await b.p.sweepExpired(1_800_000_000_001)).toBe(1)
    await b.settle()
    b.crash()
    const c = await open(a.dataDir)
    expect(await payloadsOf(c.p, 'c1')).toEqual(['stays'])
    expect(count(c.db, 'broker_outgoing')).toBe(1)
    c.crash()
  })

  it('gives the row its new packet when the entry is released (QoS 2) or taken over by another broker’s', async () => {
    const a = await open()
    await a.p.outgoingEnqueueCombi([{ clientId: 'c1' }], packet(1, 'first'))
    await a.p.outgoingEnqueueCombi([{ clientId: 'c2' }], packet(2, 'second'))
    await releaseAndTakeOver(
      a.p,
      { client: 'c1', counter: 1, messageId: 5 },
      { client: 'c2', counter: 2, messageId: 6 },
    )
    await a.settle()
    // c1's row is a release, c2's refers to the other broker's packet, stored on its own
    expect(rows(a.db).map((r) => [r.client_id, r.cmd, r.inline])).toEqual([
      ['c1', 'pubrel', 0],
      ['c2', null, 0],
    ])
    expect(count(a.db, 'broker_packets')).toBe(1)
    a.crash()
    const b = await open(a.dataDir)
    expect(await list(b.p.outgoingStream({ id: 'c1' }))).toEqual([{ cmd: 'pubrel', messageId: 5 }])
    expect(await payloadsOf(b.p, 'c2')).toEqual(['other broker'])
    b.crash()
  })

  it('keeps the expiry of a recoverable packet in its queue row', async () => {
    const a = await open()
    await a.p.enqueueRecoverable([{ clientId: 'c1' }], expiring(1))
    await a.p.enqueueRecoverable([{ clientId: 'c1' }], packet(2, 'stays'))
    a.writer.flush()
    a.crash()
    const b = await open(a.dataDir)
    expect(await b.p.sweepExpired(1_800_000_000_001)).toBe(1)
    expect(await payloadsOf(b.p, 'c1')).toEqual(['stays'])
    b.crash()
  })

  it('drops a client in one transaction: a crash cannot keep its queue without its session', async () => {
    const a = await open()
    await a.p.addSubscriptions({ id: 'c1' }, [{ topic: 't', qos: 1 }])
    await a.p.outgoingEnqueueCombi([{ clientId: 'c1' }], packet(1, 'alone'))
    const dropped = a.p.dropClient('c1')
    await a.writer.commit(() => {}) // commits what dropClient queued so far
    a.crash()
    await dropped.catch(() => {})
    const b = await open(a.dataDir)
    const subs = await b.p.subscriptionsByClient({ id: 'c1' })
    const queued = await list(b.p.outgoingStream({ id: 'c1' }))
    // both gone, or (had the commit not run) both there; never the queue alone
    expect([subs.length, queued.length]).toEqual([0, 0])
    expect([...b.p.queuedPayloads()]).toEqual([])
    b.crash()
  })

  it('keeps a packet in a queue row apart from a stored packet that has its id', async () => {
    const a = await open()
    await a.p.outgoingEnqueueCombi([{ clientId: 'c1' }, { clientId: 'c2' }], packet(1, 'shared'))
    const { id } = a.db.prepare('SELECT id FROM broker_packets').get() as { id: number }
    // a row that should not be there: before the others, with the stored packet's id
    a.db
      .prepare(
        `INSERT INTO broker_outgoing (seq, client_id, packet_id, meta, payload)
         VALUES (0, 'c3', ?, ?, ?)`,
      )
      .run(id, JSON.stringify({ cmd: 'publish', topic: 'mqp/t', qos: 1 }), Buffer.from('alone'))
    a.crash()
    const b = await open(a.dataDir)
    expect(await payloadsOf(b.p, 'c1')).toEqual(['shared'])
    expect(await payloadsOf(b.p, 'c2')).toEqual(['shared'])
    expect(await payloadsOf(b.p, 'c3')).toEqual(['alone'])
    expect([...b.p.queuedPayloads()].map(String).sort()).toEqual(['alone', 'shared'])
    b.crash()
  })

  it('marks every client with a session in a database from before the marks (schema 7)', async () => {
    // a crash in a membership change left nothing to tell before schema 8: each session is
    // reconciled once at its next connect, as every connect was then
    const { dir, old } = databaseOfSchema(7, dirs)
    const sub = old.prepare(
      'INSERT INTO broker_subscriptions (client_id, topic, qos, options) VALUES (?, ?, 1, NULL)',
    )
    sub.run('c1', 'mqp/a/c1')
    sub.run('c1', 'mqp/a/all')
    sub.run('c2', 'mqp/a/c2')
    old.close()
    const b = await open(dir)
    expect([b.p.isUnsettled('c1'), b.p.isUnsettled('c2'), b.p.isUnsettled('c3')]).toEqual([
      true,
      true,
      false,
    ])
    b.crash()
  })

  it('loads the queues of a database written before queue rows held packets', async () => {
    // schema 6: every packet in broker_packets, the queue rows refer to it
    const { dir, old } = databaseOfSchema(6, dirs)
    const meta = (counter: number) =>
      JSON.stringify({
        cmd: 'publish',
        topic: 'mqp/t',
        qos: 1,
        brokerId: 'old',
        brokerCounter: counter,
      })
    const putPacket = old.prepare('INSERT INTO broker_packets (id, meta, payload) VALUES (?, ?, ?)')
    putPacket.run(3, meta(1), Buffer.from('one'))
    putPacket.run(7, meta(2), Buffer.from('both'))
    const putOut = old.prepare(
      'INSERT INTO broker_outgoing (seq, client_id, packet_id, message_id, cmd) VALUES (?, ?, ?, ?, ?)',
    )
    putOut.run(1, 'c1', 3, null, null)
    putOut.run(2, 'c1', 7, null, null)
    putOut.run(3, 'c2', 7, null, null)
    putOut.run(4, 'c2', 5, 9, 'pubrel')
    old.close()
    const b = await open(dir)
    const payloads = async (client: string) =>
      (await list(b.p.outgoingStream({ id: client }))).map((x) => x.payload?.toString() ?? x.cmd)
    expect(await payloads('c1')).toEqual(['one', 'both'])
    expect(await payloads('c2')).toEqual(['both', 'pubrel'])
    // a new packet is numbered after the old ones, and delivering an old one deletes its row
    await b.p.outgoingEnqueueCombi([{ clientId: 'c3' }, { clientId: 'c4' }], packet(9, 'new'))
    expect(b.db.prepare('SELECT max(id) AS id FROM broker_packets').get()).toEqual({ id: 8 })
    await b.p.outgoingUpdate({ id: 'c1' }, { ...packet(1), brokerId: 'old', messageId: 1 })
    await b.p.outgoingClearMessageId({ id: 'c1' }, { messageId: 1 })
    await b.settle()
    expect(b.db.prepare('SELECT id FROM broker_packets ORDER BY id').all()).toEqual([
      { id: 7 },
      { id: 8 },
    ])
    b.crash()
  })

  it('numbers packets after those in queue rows when it starts again', async () => {
    const a = await open()
    await a.p.outgoingEnqueueCombi([{ clientId: 'c1' }], packet(1, 'alone'))
    a.crash()
    const b = await open(a.dataDir)
    // a packet shared by two clients gets a row of its own, with an id of its own
    await b.p.outgoingEnqueueCombi([{ clientId: 'c2' }, { clientId: 'c3' }], packet(2, 'shared'))
    b.crash()
    const c = await open(a.dataDir)
    expect(await payloadsOf(c.p, 'c1')).toEqual(['alone'])
    expect(await payloadsOf(c.p, 'c2')).toEqual(['shared'])
    expect(await payloadsOf(c.p, 'c3')).toEqual(['shared'])
    c.crash()
  })
})
