import Packet from 'aedes-packet'
import { QlobberTrue } from 'qlobber'
import { Readable } from 'node:stream'
import { readEnvelopeExpiry } from '../../../sdk/protocol/envelope.js'
import type { Db } from './database.js'
import { SubscriptionIndex } from './subscription-index.js'
import { LaterBatch, type SqliteWriter, WRITE_BEHIND_MAX_OPS } from './writer.js'

/**
 * The broker's session persistence on the embedded store: an aedes persistence (the async
 * interface of aedes-persistence 11, checked by its abstract test suite) whose state lives in
 * memory for reads and in SQLite for durability.
 *
 * Reads never touch the disk: subscriptions (SubscriptionIndex), offline queues, retained
 * messages and wills are loaded once at setup. Writes go through the shared SqliteWriter: those a
 * protocol guarantee depends on (a queued packet, a subscription, a QoS 2 incoming packet, a
 * retained message, a will) resolve after their commit; queue bookkeeping (packet id assigned,
 * packet acknowledged) is write-behind, since losing it in a crash only means a redelivery,
 * which devices de-duplicate by message id.
 *
 * A packet published to many subscribers is stored once and referenced by each queue entry.
 * Queued for many clients at once (a broadcast), its entries are one fan-out row rather than a
 * row each, and the entries that left the queue are bits (see Fanout). Queued for one client
 * alone (a push by regId), it is stored in that entry's queue row (see StoredPacket.inline).
 */

/* eslint-disable @typescript-eslint/no-explicit-any -- aedes hands us loosely shaped packets */
type AnyPacket = Record<string, any>
type Client = { id: string }
interface Sub {
  topic: string
  qos: number
  rh?: number
  rap?: boolean | number
  nl?: boolean | number
  subscriptionIdentifier?: number
}
interface SubRecord {
  qos: number
  rh?: number
  rap?: boolean | number
  nl?: boolean | number
  subscriptionIdentifier?: number
}

interface StoredPacket {
  id: number
  packet: AnyPacket
  /** Envelope expiry (ms), for the expiry sweep; undefined for non-mqpush payloads. */
  expiresAt: number | undefined
  refs: number
  /** Its row waits in the writer's deferred lane (enqueueRecoverable); unwritten if released. */
  deferred: boolean
  /**
   * Queued for one client alone: durably it is part of its entry's broker_outgoing row (meta,
   * payload, expires_at), with no broker_packets row; the entry's row goes, and the packet with
   * it. An entry whose packet is replaced (outgoingUpdate) gets a plain row.
   */
  inline: boolean
}

/**
 * A packet queued for FANOUT_MIN_CLIENTS or more clients in one enqueue: durably one row with
 * its clients in order (entry i has sequence firstSeq + i) and a bit per entry once it left
 * the queue (acknowledged, expired, dropped, or moved to a broker_outgoing row of its own). A
 * broadcast to 10000 devices writes one row and 1.25 KB of bits (two rows) in place of 10000
 * queue rows inserted and 10000 deleted.
 */
class Fanout {
  readonly stored: StoredPacket
  readonly firstSeq: number
  readonly done: Buffer
  /** Chunks changed since the write-behind op that will write them was queued. */
  pending: Set<number> | undefined
  /** Chunks whose write failed with its batch: the next op writes them. */
  unwritten: Set<number> | undefined

  constructor(stored: StoredPacket, firstSeq: number, count: number) {
    this.stored = stored
    this.firstSeq = firstSeq
    this.done = Buffer.alloc(Math.ceil(count / 8))
  }

  /** Marks the entry as gone; returns its chunk. */
  markDone(seq: number): number {
    const i = seq - this.firstSeq
    this.done[i >> 3] = (this.done[i >> 3] as number) | (1 << (i & 7))
    return Math.floor(i / FANOUT_CHUNK_ENTRIES)
  }

  isDone(i: number): boolean {
    return ((this.done[i >> 3] as number) & (1 << (i & 7))) !== 0
  }

  chunkBits(chunk: number): Buffer {
    const bytes = FANOUT_CHUNK_ENTRIES / 8
    return this.done.subarray(chunk * bytes, (chunk + 1) * bytes)
  }
}

/** An enqueue for at least this many clients is stored as one fan-out row. */
export const FANOUT_MIN_CLIENTS = 32
/** Entries per row of broker_fanout_done (1 KB of bits). */
const FANOUT_CHUNK_ENTRIES = 8192

interface QueueEntry {
  seq: number
  /** Set while the entry is part of a fan-out row rather than a row of its own. */
  fanout: Fanout | undefined
  stored: StoredPacket | undefined
  messageId: number | undefined
  /** 'pubrel' once a QoS 2 publish was released; the packet is no longer needed then. */
  cmd: 'publish' | 'pubrel'
  /**
   * False until the enqueue commit is durable. A device connecting meanwhile does not get the
   * entry from its queue: aedes delivers it live right after the commit, and sending it from
   * both places would make the second delivery find its entry gone.
   */
  committed: boolean
  /**
   * 'deferred' while its row waits in the writer's deferred lane (enqueueRecoverable);
   * 'dropped' once it left the queue before that: its row is never written, nor deleted.
   */
  row: 'deferred' | 'dropped' | undefined
}

/** Rows of enqueueRecoverable waiting for one op of the writer's deferred lane. */
interface DeferredRows {
  packets: StoredPacket[]
  entries: QueueEntry[]
  clients: string[]
  /** Packets its op wrote (its own, and those of its entries that joined a later batch). */
  written: Set<StoredPacket>
}

const QLOBBER_OPTIONS = { wildcard_one: '+', wildcard_some: '#', separator: '/' }
const makePacket = Packet as unknown as new (original: AnyPacket, broker?: unknown) => AnyPacket

/**
 * A copy of a stored packet (one `makePacket` made: every field of aedes' Packet set) with this
 * packet identifier: what `new makePacket(stored)` gives, its identifier then set, without the
 * constructor's four `hasOwnProperty` calls and defaults (the stored packet has them already).
 * Called twice per delivered packet (the queue's snapshot, the PUBACK's packet).
 */
function copyStored(stored: AnyPacket, messageId: number | undefined): AnyPacket {
  const p: AnyPacket = {
    cmd: stored.cmd,
    brokerId: stored.brokerId,
    brokerCounter: stored.brokerCounter,
    topic: stored.topic,
    payload: stored.payload,
    qos: stored.qos,
    retain: stored.retain,
    dup: stored.dup,
    messageId,
  }
  // the optional fields Packet copies when present (MQTT 5's among them)
  if (stored.clientId !== undefined) p.clientId = stored.clientId
  if (stored.nl !== undefined) p.nl = stored.nl
  if (stored.properties !== undefined) p.properties = stored.properties
  if (stored.messageExpiry !== undefined) p.messageExpiry = stored.messageExpiry
  return p
}

/** Per-client queue: ordered, cleared mostly from the front, compacted lazily. */
class OutQueue {
  items: Array<QueueEntry | null> = []
  head = 0
  live = 0
  /** Where the first entry without a packet id probably is: deliveries assign ids in order. */
  hint = 0

  push(e: QueueEntry): void {
    this.items.push(e)
    this.live++
  }

  *entries(): Generator<QueueEntry> {
    for (let i = this.head; i < this.items.length; i++) {
      const e = this.items[i]
      if (e) yield e
    }
  }

  indexWhere(match: (e: QueueEntry) => boolean): number {
    for (let i = this.head; i < this.items.length; i++) {
      const e = this.items[i]
      if (e && match(e)) return i
    }
    return -1
  }

  /** Removes every entry the predicate selects; returns them. */
  removeWhere(select: (e: QueueEntry) => boolean): QueueEntry[] {
    let any = false
    for (const e of this.entries()) if ((any = select(e))) break
    if (!any) return []
    const removed: QueueEntry[] = []
    const kept: QueueEntry[] = []
    for (const e of this.entries()) (select(e) ? removed : kept).push(e)
    if (removed.length === 0) return removed
    this.items = kept
    this.head = 0
    this.hint = 0
    this.live = kept.length
    return removed
  }

  /** The entry of this broker packet, looked up from the hint first (O(1) while draining). */
  indexOfPacket(brokerId: string, brokerCounter: number): number {
    const from = Math.max(this.hint, this.head)
    const near = Math.min(this.items.length, from + 4)
    for (let i = from; i < near; i++) if (isPacket(this.items[i], brokerId, brokerCounter)) return i
    for (let i = this.head; i < this.items.length; i++) {
      if (isPacket(this.items[i], brokerId, brokerCounter)) return i
    }
    return -1
  }

  /** The entry sent with this packet identifier (no closure: called per PUBACK). */
  indexOfMessageId(messageId: number): number {
    for (let i = this.head; i < this.items.length; i++) {
      if (this.items[i]?.messageId === messageId) return i
    }
    return -1
  }

  removeAt(i: number): QueueEntry {
    const e = this.items[i] as QueueEntry
    this.items[i] = null
    this.live--
    while (this.head < this.items.length && this.items[this.head] === null) this.head++
    if (this.head === this.items.length) {
      // an emptied queue can stay (its client is connected): it starts over, hint included
      this.items = []
      this.head = 0
      this.hint = 0
    } else if (this.items.length > 64 && this.live < this.items.length / 2) {
      this.items = this.items.filter((x) => x !== null)
      this.head = 0
      this.hint = 0
    }
    return e
  }
}

function appendRows(to: DeferredRows, from: DeferredRows): void {
  for (const p of from.packets) to.packets.push(p)
  for (const e of from.entries) to.entries.push(e)
  for (const c of from.clients) to.clients.push(c)
}

function isPacket(e: QueueEntry | null | undefined, brokerId: string, counter: number): boolean {
  const p = e?.stored?.packet
  return p !== undefined && p.brokerId === brokerId && p.brokerCounter === counter
}

/** Buffers inside packet metadata survive JSON. */
function reviveBuffers(_key: string, value: any): any {
  if (value && value.type === 'Buffer' && Array.isArray(value.data)) return Buffer.from(value.data)
  return value
}

/**
 * The retained packets whose topics match any of these patterns (aedes asks on every SUBSCRIBE).
 * A generator declared once: a generator function declared inside the method was a new closure
 * per call, and each got a hidden class of its own for its generator objects (V8's log of
 * hidden classes: one per subscribing device).
 */
function* retainedMatching(
  retained: ReadonlyMap<string, AnyPacket>,
  patterns: readonly string[],
): Generator<AnyPacket> {
  if (retained.size === 0) return
  for (const pattern of patterns) {
    const q = new QlobberTrue(QLOBBER_OPTIONS)
    q.add(pattern)
    for (const [topic, packet] of retained) if (q.test(topic)) yield packet
  }
}

function splitPacket(packet: AnyPacket): [string, Buffer | null] {
  const { payload, ...meta } = packet
  if (typeof payload === 'string') {
    meta.payloadString = true
    return [JSON.stringify(meta), Buffer.from(payload)]
  }
  const bytes = payload == null ? null : Buffer.isBuffer(payload) ? payload : Buffer.from(payload)
  return [JSON.stringify(meta), bytes]
}

function joinPacket(meta: string, payload: Buffer | null): AnyPacket {
  const { payloadString, ...packet } = JSON.parse(meta, reviveBuffers)
  if (payloadString) packet.payload = payload ? payload.toString() : ''
  else packet.payload = payload ?? Buffer.alloc(0)
  return packet
}

function expiryOf(packet: AnyPacket): number | undefined {
  return Buffer.isBuffer(packet.payload) ? readEnvelopeExpiry(packet.payload) : undefined
}

export class EmbeddedBrokerPersistence {
  readonly #db: Db
  readonly #w: SqliteWriter
  readonly #s
  #broker: any
  #destroyed = false

  readonly #subscriptions = new Map<string, Map<string, SubRecord>>()
  readonly #index = new SubscriptionIndex()
  readonly #retained = new Map<string, AnyPacket>()
  readonly #outgoing = new Map<string, OutQueue>()
  readonly #packets = new Map<number, StoredPacket>()
  /** Fan-outs by packet id, while any of their entries is queued. */
  readonly #fanouts = new Map<number, Fanout>()
  readonly #incoming = new Map<string, Map<number, AnyPacket>>()
  readonly #wills = new Map<string, AnyPacket>()
  /** Clients whose session may be behind the core's record (see markUnsettled). */
  readonly #unsettled = new Set<string>()
  #nextSeq = 1
  #nextPacketId = 1
  /** Rows of enqueueRecoverable not yet written, in one op of the deferred lane each batch. */
  readonly #deferredRows: LaterBatch<DeferredRows>
  /** A failed batch of deferred rows, for the next batch to take along. */
  #unwrittenRows: DeferredRows | undefined
  /**
   * Sequences of queue rows to delete, in one write-behind op (see #deleteRow); closed once an
   * op that writes queue rows is queued after it, or once full.
   */
  readonly #rowDeletes: LaterBatch<number[]>

  constructor(db: Db, writer: SqliteWriter) {
    this.#db = db
    this.#w = writer
    // a failed batch (I/O, disk full; reported): these rows stay, their entries are delivered
    // again after a restart, as after a crash
    this.#rowDeletes = new LaterBatch(
      writer,
      (): number[] => [],
      (seqs) => {
        if (seqs.length === 1) this.#s.deleteOut.run(seqs[0])
        else this.#s.deleteOuts.run(JSON.stringify(seqs))
      },
    )
    this.#deferredRows = new LaterBatch(
      writer,
      (): DeferredRows => {
        const owned: DeferredRows = { packets: [], entries: [], clients: [], written: new Set() }
        // the rows of a failed batch go along with the next one
        const unwritten = this.#unwrittenRows
        if (unwritten) {
          this.#unwrittenRows = undefined
          appendRows(owned, unwritten)
        }
        return owned
      },
      (rows) => this.#writeDeferred(rows),
      {
        lane: 'deferred',
        committed: (rows) => {
          for (const p of rows.written) p.deferred = false
          for (const e of rows.entries) if (e.row === 'deferred') e.row = undefined
        },
        // the batch failed (I/O, disk full; reported, and the pipeline's marks queued after
        // these failed with it, so their messages stay accepted): the next batch takes along
        // what is still queued
        failed: (rows) => {
          const carried = this.#unwrittenRows
          if (!carried) this.#unwrittenRows = rows
          else appendRows(carried, rows) // two batches of one transaction failed, in this order
        },
      },
    )
    this.#s = {
      upsertSub: db.prepare(
        `INSERT INTO broker_subscriptions (client_id, topic, qos, options) VALUES (?, ?, ?, ?)
         ON CONFLICT (client_id, topic) DO UPDATE SET qos = excluded.qos, options = excluded.options`,
      ),
      deleteSub: db.prepare('DELETE FROM broker_subscriptions WHERE client_id = ? AND topic = ?'),
      deleteSubs: db.prepare('DELETE FROM broker_subscriptions WHERE client_id = ?'),
      insertPacket: db.prepare(
        'INSERT INTO broker_packets (id, meta, payload, expires_at) VALUES (?, ?, ?, ?)',
      ),
      deletePacket: db.prepare('DELETE FROM broker_packets WHERE id = ?'),
      insertOut: db.prepare(
        'INSERT INTO broker_outgoing (seq, client_id, packet_id, message_id, cmd) VALUES (?, ?, ?, ?, ?)',
      ),
      insertOutInline: db.prepare(
        `INSERT INTO broker_outgoing (seq, client_id, packet_id, message_id, cmd, meta, payload, expires_at)
         VALUES (?, ?, ?, NULL, NULL, ?, ?, ?)`,
      ),
      // the two updates drop an inline packet: the entry has another packet (or none) now
      updateOut: db.prepare(
        `UPDATE broker_outgoing SET message_id = ?, cmd = ?, meta = NULL, payload = NULL,
         expires_at = NULL WHERE seq = ?`,
      ),
      // a publish again (another broker's packet took the identifier of a released one)
      updateOutPacket: db.prepare(
        `UPDATE broker_outgoing SET packet_id = ?, message_id = NULL, cmd = NULL, meta = NULL,
         payload = NULL, expires_at = NULL WHERE seq = ?`,
      ),
      deleteOut: db.prepare('DELETE FROM broker_outgoing WHERE seq = ?'),
      // many at once (a draining device's acknowledgements): ~20 % less per row than one each
      deleteOuts: db.prepare(
        'DELETE FROM broker_outgoing WHERE seq IN (SELECT value FROM json_each(?))',
      ),
      // the deferred lane's writes replace what holds their key: ids and sequences are this
      // process's own, so only a stray row could be there, and an insert failing on it would
      // fail every later deferred batch that takes the rows along
      putPacket: db.prepare(
        'INSERT OR REPLACE INTO broker_packets (id, meta, payload, expires_at) VALUES (?, ?, ?, ?)',
      ),
      putOut: db.prepare(
        `INSERT OR REPLACE INTO broker_outgoing (seq, client_id, packet_id, message_id, cmd, meta, payload, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertFanout: db.prepare(
        'INSERT INTO broker_fanouts (packet_id, first_seq, clients) VALUES (?, ?, ?)',
      ),
      upsertDone: db.prepare(
        `INSERT INTO broker_fanout_done (packet_id, chunk, bits) VALUES (?, ?, ?)
         ON CONFLICT (packet_id, chunk) DO UPDATE SET bits = excluded.bits`,
      ),
      doneOf: db.prepare('SELECT chunk, bits FROM broker_fanout_done WHERE packet_id = ?'),
      // one op deletes a fan-out row with its bits
      deleteFanoutRow: db.prepare('DELETE FROM broker_fanouts WHERE packet_id = ?'),
      deleteFanoutDone: db.prepare('DELETE FROM broker_fanout_done WHERE packet_id = ?'),
      upsertIncoming: db.prepare(
        `INSERT INTO broker_incoming (client_id, message_id, meta, payload) VALUES (?, ?, ?, ?)
         ON CONFLICT (client_id, message_id) DO UPDATE SET meta = excluded.meta, payload = excluded.payload`,
      ),
      deleteIncoming: db.prepare(
        'DELETE FROM broker_incoming WHERE client_id = ? AND message_id = ?',
      ),
      deleteIncomingOf: db.prepare('DELETE FROM broker_incoming WHERE client_id = ?'),
      upsertRetained: db.prepare(
        `INSERT INTO broker_retained (topic, meta, payload) VALUES (?, ?, ?)
         ON CONFLICT (topic) DO UPDATE SET meta = excluded.meta, payload = excluded.payload`,
      ),
      deleteRetained: db.prepare('DELETE FROM broker_retained WHERE topic = ?'),
      upsertWill: db.prepare(
        `INSERT INTO broker_wills (client_id, meta, payload) VALUES (?, ?, ?)
         ON CONFLICT (client_id) DO UPDATE SET meta = excluded.meta, payload = excluded.payload`,
      ),
      deleteWill: db.prepare('DELETE FROM broker_wills WHERE client_id = ?'),
      markUnsettled: db.prepare(
        'INSERT INTO broker_unsettled (client_id) VALUES (?) ON CONFLICT DO NOTHING',
      ),
      settle: db.prepare('DELETE FROM broker_unsettled WHERE client_id = ?'),
    }
  }

  get broker(): any {
    return this.#broker
  }

  /** Loads the persisted state into memory. */
  async setup(broker: any): Promise<void> {
    this.#broker = broker
    this.#load()
    // a connected client's queue stays when it empties (see outgoingClearMessageId): it goes
    // when the client leaves, if still empty
    if (typeof broker?.on === 'function') {
      broker.on('clientDisconnect', (client: Client) => {
        if (this.#outgoing.get(client.id)?.live === 0) this.#outgoing.delete(client.id)
      })
    }
  }

  #load(): void {
    const db = this.#db
    for (const r of db
      .prepare<[], { client_id: string }>('SELECT client_id FROM broker_unsettled')
      .iterate()) {
      this.#unsettled.add(r.client_id)
    }
    for (const r of db
      .prepare<[], { client_id: string; topic: string; qos: number; options: string | null }>(
        'SELECT client_id, topic, qos, options FROM broker_subscriptions',
      )
      .iterate()) {
      const record: SubRecord = { qos: r.qos, ...(r.options ? JSON.parse(r.options) : {}) }
      this.#setSub(r.client_id, r.topic, record)
    }
    for (const r of db
      .prepare<[], { meta: string; payload: Buffer | null }>(
        'SELECT meta, payload FROM broker_retained',
      )
      .iterate()) {
      const p = joinPacket(r.meta, r.payload)
      this.#retained.set(p.topic, p)
    }
    for (const r of db
      .prepare<[], { client_id: string; meta: string; payload: Buffer | null }>(
        'SELECT client_id, meta, payload FROM broker_wills',
      )
      .iterate()) {
      this.#wills.set(r.client_id, joinPacket(r.meta, r.payload))
    }
    for (const r of db
      .prepare<[], { client_id: string; message_id: number; meta: string; payload: Buffer | null }>(
        'SELECT client_id, message_id, meta, payload FROM broker_incoming',
      )
      .iterate()) {
      this.#incomingOf(r.client_id, true).set(r.message_id, joinPacket(r.meta, r.payload))
    }
    for (const r of db
      .prepare<[], { id: number; meta: string; payload: Buffer | null; expires_at: number | null }>(
        'SELECT id, meta, payload, expires_at FROM broker_packets',
      )
      .iterate()) {
      this.#packets.set(r.id, {
        id: r.id,
        packet: joinPacket(r.meta, r.payload),
        expiresAt: r.expires_at ?? undefined,
        refs: 0,
        deferred: false,
        inline: false,
      })
      if (r.id >= this.#nextPacketId) this.#nextPacketId = r.id + 1
    }
    // queue entries come from two places, rows and fan-outs; each client's queue is in seq order
    const loaded: Array<[clientId: string, entry: QueueEntry]> = []
    const staleFanouts: number[] = []
    for (const r of db
      .prepare<[], { packet_id: number; first_seq: number; clients: string }>(
        'SELECT packet_id, first_seq, clients FROM broker_fanouts',
      )
      .all()) {
      const stored = this.#packets.get(r.packet_id)
      if (!stored) {
        staleFanouts.push(r.packet_id)
        continue
      }
      const clients = JSON.parse(r.clients) as string[]
      const fanout = new Fanout(stored, r.first_seq, clients.length)
      for (const d of this.#s.doneOf.all(r.packet_id) as Array<{ chunk: number; bits: Buffer }>) {
        d.bits.copy(fanout.done, d.chunk * (FANOUT_CHUNK_ENTRIES / 8))
      }
      this.#fanouts.set(stored.id, fanout)
      clients.forEach((clientId, i) => {
        if (fanout.isDone(i)) return
        stored.refs++
        loaded.push([
          clientId,
          {
            seq: r.first_seq + i,
            fanout,
            stored,
            messageId: undefined,
            cmd: 'publish',
            committed: true,
            row: undefined,
          },
        ])
      })
      if (r.first_seq + clients.length > this.#nextSeq) {
        this.#nextSeq = r.first_seq + clients.length
      }
    }
    const fromFanouts = loaded.length > 0
    const stale: number[] = []
    for (const r of db
      .prepare<
        [],
        {
          client_id: string
          seq: number
          packet_id: number
          message_id: number | null
          cmd: string | null
          meta: string | null
          payload: Buffer | null
          expires_at: number | null
        }
      >(
        `SELECT client_id, seq, packet_id, message_id, cmd, meta, payload, expires_at
         FROM broker_outgoing ORDER BY seq`,
      )
      .iterate()) {
      const cmd = r.cmd === 'pubrel' ? 'pubrel' : 'publish'
      let stored: StoredPacket | undefined
      if (cmd === 'publish' && r.meta !== null) {
        // its packet is in the row (queued for this client alone). That id names nothing on
        // disk; were it taken (it is not: one counter numbers both kinds), a number of its own
        // keeps the two packets apart rather than handing one's entries the other's packet
        stored = {
          id: this.#packets.has(r.packet_id) ? -r.seq : r.packet_id,
          packet: joinPacket(r.meta, r.payload),
          expiresAt: r.expires_at ?? undefined,
          refs: 0,
          deferred: false,
          inline: true,
        }
        this.#packets.set(stored.id, stored)
        if (r.packet_id >= this.#nextPacketId) this.#nextPacketId = r.packet_id + 1
      } else if (cmd === 'publish') stored = this.#packets.get(r.packet_id)
      if (cmd === 'publish' && !stored) {
        // a row whose packet is gone (a crash between two write-behind deletes): drop it
        stale.push(r.seq)
        continue
      }
      if (stored) stored.refs++
      loaded.push([
        r.client_id,
        {
          seq: r.seq,
          fanout: undefined,
          stored,
          messageId: r.message_id ?? undefined,
          cmd,
          committed: true,
          row: undefined,
        },
      ])
      if (r.seq >= this.#nextSeq) this.#nextSeq = r.seq + 1
    }
    if (fromFanouts) loaded.sort((a, b) => a[1].seq - b[1].seq)
    for (const [clientId, entry] of loaded) this.#queueOf(clientId, true).push(entry)
    if (stale.length > 0) {
      db.transaction(() => {
        for (const seq of stale) this.#s.deleteOut.run(seq)
      })()
    }
    // packets nobody references any more (acknowledged before a crash) go now, with their
    // fan-out rows; so do the bits of fan-outs that are gone
    const orphans = [...this.#packets.values()].filter((p) => p.refs === 0)
    for (const p of orphans) {
      this.#packets.delete(p.id)
      this.#fanouts.delete(p.id)
    }
    db.transaction(() => {
      for (const p of orphans) {
        this.#s.deletePacket.run(p.id)
        this.#deleteFanoutRows(p.id)
      }
      for (const id of staleFanouts) this.#deleteFanoutRows(id)
      db.prepare(
        'DELETE FROM broker_fanout_done WHERE packet_id NOT IN (SELECT packet_id FROM broker_fanouts)',
      ).run()
    })()
  }

  /** Extension: the payloads of every packet still queued for some client. */
  *queuedPayloads(): IterableIterator<Buffer> {
    for (const p of this.#packets.values()) {
      if (p.refs > 0 && Buffer.isBuffer(p.packet.payload)) yield p.packet.payload
    }
  }

  // --- retained ---------------------------------------------------------------------------

  async storeRetained(pkt: AnyPacket): Promise<void> {
    const packet = Object.assign({}, pkt)
    if (!packet.payload || packet.payload.length === 0) {
      this.#retained.delete(packet.topic)
      return this.#w.commit(() => {
        this.#s.deleteRetained.run(packet.topic)
      })
    }
    this.#retained.set(packet.topic, packet)
    const [meta, payload] = splitPacket(packet)
    return this.#w.commit(() => {
      this.#s.upsertRetained.run(packet.topic, meta, payload)
    })
  }

  createRetainedStream(pattern: string): Readable {
    return this.createRetainedStreamCombi([pattern])
  }

  createRetainedStreamCombi(patterns: string[]): Readable {
    return Readable.from(retainedMatching(this.#retained, patterns))
  }

  // --- subscriptions ----------------------------------------------------------------------

  #setSub(clientId: string, topic: string, record: SubRecord): void {
    let stored = this.#subscriptions.get(clientId)
    if (!stored) {
      stored = new Map()
      this.#subscriptions.set(clientId, stored)
    }
    const previous = stored.get(topic)
    if (record.qos > 0) {
      this.#index.add({
        clientId,
        topic,
        qos: record.qos,
        rh: record.rh,
        rap: record.rap,
        nl: record.nl,
      })
    } else if (previous && previous.qos > 0) {
      this.#index.remove(clientId, topic)
    }
    stored.set(topic, record)
  }

  async addSubscriptions(client: Client, subs: Sub[]): Promise<void> {
    const rows: Array<[string, number, string | null]> = []
    for (const sub of subs) {
      const record: SubRecord = { qos: sub.qos, rh: sub.rh, rap: sub.rap, nl: sub.nl }
      if (sub.subscriptionIdentifier !== undefined) {
        record.subscriptionIdentifier = sub.subscriptionIdentifier
      }
      this.#setSub(client.id, sub.topic, record)
      const { qos, ...options } = record
      rows.push([sub.topic, qos, JSON.stringify(options)])
    }
    return this.#w.commit(() => {
      for (const [topic, qos, options] of rows)
        this.#s.upsertSub.run(client.id, topic, qos, options)
    })
  }

  async removeSubscriptions(client: Client, topics: string[]): Promise<void> {
    const stored = this.#subscriptions.get(client.id)
    if (stored) {
      for (const topic of topics) {
        const sub = stored.get(topic)
        if (sub === undefined) continue
        if (sub.qos > 0) this.#index.remove(client.id, topic)
        stored.delete(topic)
      }
      if (stored.size === 0) this.#subscriptions.delete(client.id)
    }
    return this.#w.commit(() => {
      for (const topic of topics) this.#s.deleteSub.run(client.id, topic)
    })
  }

  async subscriptionsByClient(client: Client): Promise<Sub[]> {
    const stored = this.#subscriptions.get(client.id)
    if (!stored) return []
    return [...stored].map(([topic, record]) => ({ topic, ...record }))
  }

  async countOffline(): Promise<{ subsCount: number; clientsCount: number }> {
    return { subsCount: this.#index.count, clientsCount: this.#subscriptions.size }
  }

  async subscriptionsByTopic(topic: string) {
    return this.#index.match(topic)
  }

  async cleanSubscriptions(client: Client): Promise<void> {
    this.#forgetSubscriptions(client.id)
    return this.#w.commit(() => {
      this.#s.deleteSubs.run(client.id)
    })
  }

  #forgetSubscriptions(clientId: string): void {
    const stored = this.#subscriptions.get(clientId)
    if (!stored) return
    for (const [topic, sub] of stored) {
      if (sub.qos > 0) this.#index.remove(clientId, topic)
    }
    this.#subscriptions.delete(clientId)
  }

  getClientList(topic: string): Readable {
    const subscriptions = this.#subscriptions
    function* clients() {
      for (const [clientId, topics] of subscriptions) if (topics.has(topic)) yield clientId
    }
    return Readable.from(clients())
  }

  // --- outgoing queues --------------------------------------------------------------------

  #queueOf(clientId: string, create: true): OutQueue
  #queueOf(clientId: string, create?: false): OutQueue | undefined
  #queueOf(clientId: string, create = false): OutQueue | undefined {
    let q = this.#outgoing.get(clientId)
    if (!q && create) {
      q = new OutQueue()
      this.#outgoing.set(clientId, q)
    }
    return q
  }

  /** `inline`: queued for one client alone (see StoredPacket.inline). */
  #storePacket(packet: AnyPacket, inline = false): StoredPacket {
    const copy = new makePacket(packet)
    const stored: StoredPacket = {
      id: this.#nextPacketId++,
      packet: copy,
      expiresAt: expiryOf(copy),
      refs: 0,
      deferred: false,
      inline,
    }
    this.#packets.set(stored.id, stored)
    return stored
  }

  #release(stored: StoredPacket | undefined): void {
    if (!stored) return
    stored.refs--
    if (stored.refs === 0) {
      this.#packets.delete(stored.id)
      // a row still waiting in the deferred lane is not written (see #writeDeferred); an inline
      // packet has no row of its own (its entry's row goes, or no longer holds it)
      if (stored.deferred || stored.inline) return
      const hadFanout = this.#fanouts.delete(stored.id)
      this.#w.later(() => {
        this.#s.deletePacket.run(stored.id)
        if (hadFanout) this.#deleteFanoutRows(stored.id)
      })
    }
  }

  /**
   * Deletes a queue row, write-behind: the deletes of one span go in one op, queued where the
   * span's first one was. A delete so runs earlier than it was asked for, which is safe while
   * no op queued meanwhile writes the row: every op of the main queue that writes queue rows
   * ends the span first (#rowsWritten). The deferred lane's rows (#writeDeferred) need not:
   * it writes only entries still `deferred`, and those are never deleted (they are dropped).
   * A span ends at WRITE_BEHIND_MAX_OPS rows too (one statement's JSON stays bounded).
   */
  #deleteRow(seq: number): void {
    const batch = this.#rowDeletes.open()
    batch.push(seq)
    if (batch.length >= WRITE_BEHIND_MAX_OPS) this.#rowDeletes.close()
  }

  /** An op that writes queue rows is about to be queued: later deletes go in an op after it. */
  #rowsWritten(): void {
    this.#rowDeletes.close()
  }

  #deleteFanoutRows(packetId: number): void {
    this.#s.deleteFanoutRow.run(packetId)
    this.#s.deleteFanoutDone.run(packetId)
  }

  /**
   * The entry left its client's queue for good: its row goes, or its fan-out bit is set (both
   * write-behind: lost in a crash, the entry is delivered again). Call before releasing its
   * packet, so that the packet's deletion is queued after.
   */
  #forget(e: QueueEntry): void {
    const fanout = e.fanout
    if (!fanout) {
      if (e.row === 'deferred') {
        e.row = 'dropped'
        return
      }
      this.#deleteRow(e.seq)
      return
    }
    const chunk = fanout.markDone(e.seq)
    if (fanout.pending) {
      fanout.pending.add(chunk)
      return
    }
    // the op owns its set of chunks: run again after a rollback, it writes them again
    const chunks = new Set([chunk])
    if (fanout.unwritten) {
      for (const c of fanout.unwritten) chunks.add(c)
      fanout.unwritten = undefined
    }
    fanout.pending = chunks
    this.#w.later(
      () => {
        if (fanout.pending === chunks) fanout.pending = undefined
        this.#writeChunks(fanout, chunks)
      },
      undefined,
      () => {
        // the batch failed (I/O, disk full): the next acknowledgement writes these chunks too
        if (fanout.pending === chunks) fanout.pending = undefined
        fanout.unwritten = new Set([...(fanout.unwritten ?? []), ...chunks])
      },
    )
  }

  /** Writes these chunks of the fan-out's bits as they stand (within a writer op). */
  #writeChunks(fanout: Fanout, chunks: Iterable<number>): void {
    // a fan-out released meanwhile has its rows deleted by an op queued after this one
    if (this.#fanouts.get(fanout.stored.id) !== fanout) return
    for (const c of chunks) this.#s.upsertDone.run(fanout.stored.id, c, fanout.chunkBits(c))
  }

  /** A fresh packet object for aedes, as the queue entry stands now. */
  #materialize(e: QueueEntry): AnyPacket {
    if (e.cmd === 'pubrel') return { cmd: 'pubrel', messageId: e.messageId }
    return copyStored((e.stored as StoredPacket).packet, e.messageId)
  }

  async outgoingEnqueue(sub: { clientId: string }, packet: AnyPacket): Promise<void> {
    return this.outgoingEnqueueCombi([sub], packet)
  }

  outgoingEnqueueCombi(subs: Array<{ clientId: string }>, packet: AnyPacket): Promise<void> {
    return this.#enqueueDurably(subs, packet)
  }

  // (not through outgoingEnqueueCombi from within: the dispatcher wraps that method)
  async #enqueueDurably(subs: Array<{ clientId: string }>, packet: AnyPacket): Promise<void> {
    if (subs.length === 0) return
    const inline = subs.length === 1
    const stored = this.#storePacket(packet, inline)
    const fanout =
      subs.length >= FANOUT_MIN_CLIENTS ? new Fanout(stored, this.#nextSeq, subs.length) : undefined
    if (fanout) this.#fanouts.set(stored.id, fanout)
    const entries: QueueEntry[] = new Array(subs.length)
    for (let i = 0; i < subs.length; i++) {
      const entry: QueueEntry = {
        seq: this.#nextSeq++,
        fanout,
        stored,
        messageId: undefined,
        cmd: 'publish',
        committed: false,
        row: undefined,
      }
      stored.refs++
      this.#queueOf((subs[i] as { clientId: string }).clientId, true).push(entry)
      entries[i] = entry
    }
    const [meta, payload] = splitPacket(stored.packet)
    const clients = fanout ? JSON.stringify(subs.map((s) => s.clientId)) : undefined
    // with the deferred lane: a recoverable entry queued before this one is then never durable
    // after it (a crash would otherwise keep this one, and recovery queue the earlier one after).
    // The current batch of deferred rows leaves the lane with it: later rows start a new one,
    // whose op is queued before their messages' marks (found in review: rows joining the batch
    // that left were not in the transaction of their marks)
    this.#deferredRows.close()
    this.#rowsWritten()
    await this.#w.commit(() => {
      if (inline) {
        const { clientId } = subs[0] as { clientId: string }
        const { seq } = entries[0] as QueueEntry
        this.#s.insertOutInline.run(
          seq,
          clientId,
          stored.id,
          meta,
          payload,
          stored.expiresAt ?? null,
        )
        return
      }
      this.#s.insertPacket.run(stored.id, meta, payload, stored.expiresAt ?? null)
      if (fanout) {
        this.#s.insertFanout.run(stored.id, fanout.firstSeq, clients)
        return
      }
      for (let i = 0; i < subs.length; i++) {
        const seq = (entries[i] as QueueEntry).seq
        this.#s.insertOut.run(
          seq,
          (subs[i] as { clientId: string }).clientId,
          stored.id,
          null,
          null,
        )
      }
    }, true)
    for (const e of entries) e.committed = true
  }

  /**
   * Extension: as outgoingEnqueueCombi, for a packet whose publisher recovers it by itself after
   * a crash — the message pipeline: the message row is durable and says `accepted` until a mark
   * the pipeline queues in the writer's deferred lane after this enqueue. The packet and its
   * queue rows go in that lane too, so they are never durable later than the mark, and an entry
   * that leaves its queue within the write-behind delay (an online device acknowledged it) is
   * never written: no insert and no delete. Resolves at once. An enqueue for
   * FANOUT_MIN_CLIENTS or more clients is one fan-out row, durable as ever.
   */
  async enqueueRecoverable(subs: Array<{ clientId: string }>, packet: AnyPacket): Promise<void> {
    if (subs.length >= FANOUT_MIN_CLIENTS) return this.#enqueueDurably(subs, packet)
    if (subs.length === 0) return
    const stored = this.#storePacket(packet, subs.length === 1)
    stored.deferred = true
    const rows = this.#deferredRowsBatch()
    rows.packets.push(stored)
    for (const sub of subs) {
      const entry: QueueEntry = {
        seq: this.#nextSeq++,
        fanout: undefined,
        stored,
        messageId: undefined,
        cmd: 'publish',
        committed: true,
        row: 'deferred',
      }
      stored.refs++
      this.#queueOf(sub.clientId, true).push(entry)
      rows.entries.push(entry)
      rows.clients.push(sub.clientId)
    }
  }

  /** The batch of deferred rows that the next op of the deferred lane writes. */
  #deferredRowsBatch(): DeferredRows {
    const current = this.#deferredRows.current
    if (current && current.entries.length >= WRITE_BEHIND_MAX_OPS) {
      // a full batch goes at once (a transaction of many thousand rows would hold the event
      // loop); the next one starts here, behind it in the lane
      this.#deferredRows.close()
      this.#w.soon()
    }
    return this.#deferredRows.open()
  }

  /** Writes the packets and queue rows of a deferred batch that are still queued (a writer op). */
  #writeDeferred(rows: DeferredRows): void {
    rows.written.clear() // run again after a rollback: writes it all again
    const put = (p: StoredPacket) => {
      // released meanwhile, or written already, or written with its entry (inline)
      if (!p.deferred || p.inline || rows.written.has(p) || this.#packets.get(p.id) !== p) return
      rows.written.add(p)
      const [meta, payload] = splitPacket(p.packet)
      this.#s.putPacket.run(p.id, meta, payload, p.expiresAt ?? null)
    }
    for (const p of rows.packets) put(p)
    const { entries, clients } = rows
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i] as QueueEntry
      if (e.row !== 'deferred') continue // gone
      // its packet with it: a replacement (#replaceDeferred) may sit in a later batch
      if (e.stored) put(e.stored)
      // as the entry stands now (a QoS 2 release or another broker's packet may have replaced it)
      const pubrel = e.cmd === 'pubrel'
      const inline = e.stored?.inline === true ? e.stored : undefined
      const [meta, payload] = inline ? splitPacket(inline.packet) : [null, null]
      this.#s.putOut.run(
        e.seq,
        clients[i],
        e.stored?.id ?? 0,
        pubrel ? (e.messageId ?? null) : null,
        pubrel ? 'pubrel' : null,
        meta,
        payload,
        inline?.expiresAt ?? null,
      )
    }
  }

  /**
   * Records the packet identifier a queued packet was sent with (or its release, QoS 2).
   * Unlike aedes' memory persistence this does not throw for a packet that has no entry: that
   * happens when a device unsubscribes while a publish is on its way, and aedes would close the
   * connection over it. The packet is then delivered without an entry, as a clean session's is.
   * Packet identifiers of QoS 1 publishes stay in memory: after a crash a queued packet is sent
   * with a new identifier, which devices handle as any redelivery (by message id).
   */
  async outgoingUpdate(client: Client, packet: AnyPacket): Promise<void> {
    const q = this.#queueOf(client.id)
    if (!q) return
    let replace = false
    let i =
      packet.brokerId === undefined ? -1 : q.indexOfPacket(packet.brokerId, packet.brokerCounter)
    if (i < 0) {
      // as aedes' memory persistence: a pubrel, or a packet of another broker that took this
      // packet identifier, replaces the entry with that identifier
      i = q.indexWhere(
        (e) => e.stored?.packet.brokerId !== packet.brokerId && e.messageId === packet.messageId,
      )
      replace = i >= 0
    }
    if (i < 0) return
    const e = q.items[i] as QueueEntry
    e.messageId = packet.messageId
    if (i >= q.hint) q.hint = i + 1
    if (!replace) return
    if (e.row === 'deferred') return this.#replaceDeferred(e, packet)
    // the entry becomes a row of its own: a fan-out keeps its packet for every client alike
    const fanout = e.fanout
    e.fanout = undefined
    const chunk = fanout?.markDone(e.seq)
    const { seq, messageId } = e
    const previousId = e.stored?.id ?? 0
    const ownRow = (packetId: number, cmd: 'publish' | 'pubrel') => {
      if (!fanout) return false
      // its bit and its row in one op: a crash keeps the entry in one place or the other
      this.#writeChunks(fanout, [chunk as number])
      this.#s.insertOut.run(
        seq,
        client.id,
        packetId,
        cmd === 'pubrel' ? (messageId ?? null) : null,
        cmd === 'pubrel' ? 'pubrel' : null,
      )
      return true
    }
    if (packet.cmd === 'pubrel') {
      e.cmd = 'pubrel'
      this.#release(e.stored)
      e.stored = undefined
      this.#rowsWritten()
      this.#w.later(() => {
        if (!ownRow(previousId, 'pubrel')) this.#s.updateOut.run(messageId ?? null, 'pubrel', seq)
      })
    } else {
      this.#release(e.stored)
      const stored = this.#storePacket(packet)
      stored.refs++
      e.stored = stored
      e.cmd = 'publish'
      const [meta, payload] = splitPacket(stored.packet)
      this.#rowsWritten()
      this.#w.later(() => {
        this.#s.insertPacket.run(stored.id, meta, payload, stored.expiresAt ?? null)
        if (!ownRow(stored.id, 'publish')) this.#s.updateOutPacket.run(stored.id, seq)
      })
    }
  }

  /**
   * outgoingUpdate's replacement of an entry whose row still waits in the deferred lane: that
   * op writes the entry as it stands then, so nothing is written now (a new packet joins the
   * same lane, before the entries: never durable after the row that refers to it).
   */
  #replaceDeferred(e: QueueEntry, packet: AnyPacket): void {
    this.#release(e.stored)
    if (packet.cmd === 'pubrel') {
      e.cmd = 'pubrel'
      e.stored = undefined
      return
    }
    const stored = this.#storePacket(packet)
    stored.refs++
    stored.deferred = true
    this.#deferredRowsBatch().packets.push(stored)
    e.stored = stored
    e.cmd = 'publish'
  }

  async outgoingClearMessageId(client: Client, packet: AnyPacket): Promise<AnyPacket | undefined> {
    const q = this.#queueOf(client.id)
    if (!q || !packet || packet.messageId === undefined) return undefined
    const i = q.indexOfMessageId(packet.messageId)
    if (i < 0) return undefined
    const e = q.removeAt(i)
    // an online client keeps its empty queue (~100 bytes) until it disconnects: a broadcast
    // to every device otherwise deletes and creates 10000 queues each time (~1 µs a delivery)
    if (q.live === 0 && !this.#broker?.clients?.[client.id]) this.#outgoing.delete(client.id)
    const result = this.#materialize(e)
    this.#forget(e)
    this.#release(e.stored)
    return result
  }

  outgoingStream(client: Client): Readable {
    return Readable.from(this.outgoingSnapshot(client))
  }

  /**
   * Extension: the client's queue as outgoingStream streams it, as an array: a snapshot (safe
   * to clear while it is sent), each packet a copy of its own.
   */
  outgoingSnapshot(client: Client): AnyPacket[] {
    const q = this.#queueOf(client.id)
    const out: AnyPacket[] = []
    if (!q) return out
    // a plain loop: once per reconnect, over every queued entry
    const items = q.items
    for (let i = q.head; i < items.length; i++) {
      const e = items[i]
      if (e && e.committed) out.push(this.#materialize(e))
    }
    return out
  }

  // --- incoming (QoS 2) -------------------------------------------------------------------

  #incomingOf(clientId: string, create: boolean): Map<number, AnyPacket> {
    let m = this.#incoming.get(clientId)
    if (!m) {
      m = new Map()
      if (create) this.#incoming.set(clientId, m)
    }
    return m
  }

  async incomingStorePacket(client: Client, packet: AnyPacket): Promise<void> {
    const copy = new makePacket(packet)
    copy.messageId = packet.messageId
    this.#incomingOf(client.id, true).set(packet.messageId, copy)
    const [meta, payload] = splitPacket(copy)
    return this.#w.commit(() => {
      this.#s.upsertIncoming.run(client.id, packet.messageId, meta, payload)
    })
  }

  async incomingGetPacket(client: Client, packet: AnyPacket): Promise<AnyPacket> {
    const p = this.#incomingOf(client.id, false).get(packet.messageId)
    if (!p) throw new Error('no such packet')
    return p
  }

  async incomingDelPacket(client: Client, packet: AnyPacket): Promise<void> {
    const m = this.#incomingOf(client.id, false)
    if (!m.has(packet.messageId)) throw new Error('no such packet')
    m.delete(packet.messageId)
    if (m.size === 0) this.#incoming.delete(client.id)
    return this.#w.commit(() => {
      this.#s.deleteIncoming.run(client.id, packet.messageId)
    })
  }

  async cleanIncoming(client: Client): Promise<void> {
    if (!this.#incoming.delete(client.id)) return
    return this.#w.commit(() => {
      this.#s.deleteIncomingOf.run(client.id)
    })
  }

  // --- wills ------------------------------------------------------------------------------

  async putWill(client: Client, packet: AnyPacket): Promise<void> {
    packet.brokerId = this.#broker.id
    packet.clientId = client.id
    this.#wills.set(client.id, packet)
    const [meta, payload] = splitPacket(packet)
    return this.#w.commit(() => {
      this.#s.upsertWill.run(client.id, meta, payload)
    })
  }

  async getWill(client: Client): Promise<AnyPacket | undefined> {
    return this.#wills.get(client.id)
  }

  async delWill(client: Client): Promise<AnyPacket | undefined> {
    const will = this.#wills.get(client.id)
    if (!will) return undefined
    this.#wills.delete(client.id)
    await this.#w.commit(() => {
      this.#s.deleteWill.run(client.id)
    })
    return will
  }

  streamWill(brokers: Record<string, number> = {}): Readable {
    return Readable.from([...this.#wills.values()].filter((w) => !brokers[w.brokerId]))
  }

  // --- mqpush extensions ------------------------------------------------------------------

  /**
   * Marks a client whose session is about to change after the core recorded the change (a
   * topic joined or left): until `settle`, its session may be behind that record. Resolves once
   * the mark is durable, so that a crash before the session's own write leaves it marked.
   */
  markUnsettled(clientId: string): Promise<void> {
    this.#unsettled.add(clientId)
    return this.#w.commit(() => {
      this.#s.markUnsettled.run(clientId)
    })
  }

  /** The client's session matches the core's record again (write-behind: lost, one check more). */
  settle(clientId: string): void {
    if (!this.#unsettled.delete(clientId)) return
    this.#w.later(() => {
      this.#s.settle.run(clientId)
    })
  }

  /** Whether the client is marked (see markUnsettled); from memory. */
  isUnsettled(clientId: string): boolean {
    return this.#unsettled.has(clientId)
  }

  /**
   * Forgets a client entirely: subscriptions, queue, incoming packets and will, in one
   * transaction (found in review: with its subscriptions deleted in a commit of their own, a
   * crash before the second left a queue nobody would ever drain).
   */
  async dropClient(clientId: string): Promise<void> {
    const q = this.#outgoing.get(clientId)
    const entries = q ? [...q.entries()] : []
    const gone = this.#goneOp(entries)
    for (const e of entries) this.#release(e.stored)
    this.#outgoing.delete(clientId)
    this.#incoming.delete(clientId)
    this.#wills.delete(clientId)
    this.#forgetSubscriptions(clientId)
    this.#unsettled.delete(clientId)
    return this.#w.commit(() => {
      this.#s.settle.run(clientId)
      this.#s.deleteSubs.run(clientId)
      gone()
      this.#s.deleteIncomingOf.run(clientId)
      this.#s.deleteWill.run(clientId)
    })
  }

  /**
   * Removes queued packets whose envelope expired (they would be dropped at delivery anyway;
   * this bounds the queues of devices that stay away). Returns how many queue entries went.
   */
  async sweepExpired(now: number): Promise<number> {
    const expired = new Set<StoredPacket>()
    for (const p of this.#packets.values()) {
      if (p.expiresAt !== undefined && p.expiresAt <= now) expired.add(p)
    }
    if (expired.size === 0) return 0
    const removed: QueueEntry[] = []
    for (const [clientId, q] of this.#outgoing) {
      // an entry with a packet id assigned is in flight: its PUBACK clears it
      const gone = q.removeWhere(
        (e) => e.stored !== undefined && expired.has(e.stored) && e.messageId === undefined,
      )
      for (const e of gone) removed.push(e)
      if (q.live === 0) this.#outgoing.delete(clientId)
    }
    const gone = this.#goneOp(removed)
    for (const e of removed) this.#release(e.stored)
    await this.#w.commit(gone)
    return removed.length
  }

  /**
   * For entries that left their queue now: marks their fan-out bits, and returns the writer op
   * that makes it durable (their rows deleted, their chunks of bits written).
   */
  #goneOp(entries: readonly QueueEntry[]): () => void {
    const seqs: number[] = []
    const chunks = new Map<Fanout, Set<number>>()
    for (const e of entries) {
      if (e.row === 'deferred') {
        e.row = 'dropped'
        continue
      }
      if (!e.fanout) {
        seqs.push(e.seq)
        continue
      }
      let set = chunks.get(e.fanout)
      if (!set) chunks.set(e.fanout, (set = new Set()))
      set.add(e.fanout.markDone(e.seq))
    }
    return () => {
      // queue rows are keyed by sequence only: the memory knows which are whose
      for (const seq of seqs) this.#s.deleteOut.run(seq)
      for (const [fanout, set] of chunks) this.#writeChunks(fanout, set)
    }
  }

  /** How many client queues are held (connected clients keep theirs empty), for tests. */
  queuesHeld(): number {
    return this.#outgoing.size
  }

  /** How many packets are queued in all, for metrics and tests. */
  queuedCount(): number {
    let n = 0
    for (const q of this.#outgoing.values()) n += q.live
    return n
  }

  async destroy(): Promise<void> {
    if (this.#destroyed) throw new Error('destroyed called twice!')
    this.#destroyed = true
    this.#w.flush()
  }
}
