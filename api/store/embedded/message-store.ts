import type { MessageFunnel, MessageState, TargetType } from '../../../sdk/protocol/responses.js'
import type { Target } from '../../../sdk/protocol/schemas.js'
import type { AcceptedPage, MessageStore } from '../../core/messages/message-store.js'
import { messageIdPrefix } from '../../core/ids.js'
import type { AppId, MessageContent, MessageId, MessageRecord, RegId } from '../../core/model.js'
import type { Db } from './database.js'
import { RecentMap } from './recent-map.js'
import { LaterBatch, type SqliteWriter } from './writer.js'

interface MessageRow {
  seq: number
  id: string
  app_id: string
  kind: string
  target_type: string
  target: string
  content: string
  created_at: number
  expires_at: number
  state: string
  planned: number
  invalid: number
  filtered: number
  valid: number
  delivered: number
  clicked: number
}

const toRecord = (r: MessageRow): MessageRecord => ({
  id: r.id as MessageId,
  appId: r.app_id as AppId,
  targetType: r.target_type as TargetType,
  target: JSON.parse(r.target) as Target,
  content: JSON.parse(r.content) as MessageContent,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  state: r.state as MessageState,
  funnel: {
    planned: r.planned,
    invalid: r.invalid,
    filtered: r.filtered,
    valid: r.valid,
    delivered: r.delivered,
    clicked: r.clicked,
  },
})

/**
 * How many message ids the store keeps the number (`seq`, its receipts' key) of, at least, the
 * latest inserted or looked up (at most twice as many: `RecentMap`): a delivery mostly follows
 * its message's insert closely, and an older message's number is one read, then kept. ~100
 * bytes each, 2–4 MB in all.
 */
export const MESSAGE_SEQS_KEPT = 20_000

/**
 * How long a message may stay accepted and not dispatched before it is held (a row in
 * `messages_held`), so that the dispatched-through mark can pass it: a dispatch that failed
 * (the message then waits for the next start's recovery) would otherwise keep the mark, and
 * with it the next start's scan, where it was. A dispatch takes milliseconds.
 */
export const HOLD_AFTER_MS = 10_000

/** Receipts waiting for the next write-behind commit, as parallel arrays (no tuple each). */
interface DeliveredBatch {
  messageIds: MessageId[]
  regIds: RegId[]
  at: number[]
}

export class EmbeddedMessageStore implements MessageStore {
  readonly #w: SqliteWriter
  readonly #s
  /** A device's number (its receipts' key), undefined for a regId without a row. */
  readonly #deviceSeq: (regId: string) => number | undefined
  /**
   * The last message number given, counting on from the largest at the start (or from the
   * dispatched-through mark, if above): a number comes back only once every row that had it is
   * gone (retention deletes a message with its receipts), and never at or below the mark.
   */
  #lastSeq: number
  /** Message id → its number, for the latest MESSAGE_SEQS_KEPT at least. */
  readonly #seqs = new RecentMap<string, number>(MESSAGE_SEQS_KEPT)
  /** Receipts waiting for the next commit; counted per message in one UPDATE each. */
  readonly #delivered: LaterBatch<DeliveredBatch>
  /** Dispatched marks waiting for the next commit. */
  readonly #pendingDispatched = new Map<
    MessageId,
    Omit<MessageFunnel, 'delivered' | 'clicked'> | undefined
  >()
  /**
   * The dispatched-through mark as committed: every message numbered up to it is dispatched
   * (its mark durable), deleted, never inserted, or held.
   */
  #through: number
  /**
   * The largest message number when the store opened: the messages after it are this
   * process's own, in `#undispatched` until their mark is durable.
   */
  readonly #openedAt: number
  /** The mark when the store opened: recovery reads the held messages up to it, then on. */
  readonly #recoveredFrom: number
  /**
   * How far recovery has read the messages numbered after the mark it started from (up to
   * `#openedAt`); `#through` stays at or below it until the end, the messages not yet read
   * being unknown.
   */
  #recoveredThrough: number
  /**
   * Messages this process inserted or recovery listed whose dispatched mark is not durable
   * yet, and that are not held: number → when (performance.now()) they entered.
   */
  readonly #undispatched = new Map<number, number>()
  /** The numbers of held messages (rows of `messages_held`). */
  readonly #held = new Set<number>()
  /** The largest message number when the listing of accepted messages began. */
  #listedUpTo = 0
  /** A write of the mark is queued and has not run. */
  #markQueued = false

  /**
   * `deviceSeq`: the device store's numbers of devices (receipts are keyed by the message's
   * and the device's numbers: integers cost SQLite half what the two text ids did).
   */
  constructor(db: Db, writer: SqliteWriter, deviceSeq: (regId: string) => number | undefined) {
    this.#w = writer
    this.#deviceSeq = deviceSeq
    // a failed batch (I/O, disk full; reported): receipts from then on go in a new one
    this.#delivered = new LaterBatch(
      writer,
      (): DeliveredBatch => ({ messageIds: [], regIds: [], at: [] }),
      (batch) => this.#flushDelivered(batch),
    )
    this.#lastSeq = (
      db.prepare('SELECT coalesce(max(seq), 0) AS n FROM messages').get() as { n: number }
    ).n
    this.#through = (
      db
        .prepare(`SELECT value FROM store_marks WHERE name = 'messages_dispatched_through'`)
        .get() as { value: number }
    ).value
    // numbers at or below the mark are never given again (the messages that had the largest
    // may have been deleted): a message numbered there would be passed over by recovery
    this.#lastSeq = Math.max(this.#lastSeq, this.#through)
    this.#openedAt = this.#lastSeq
    this.#recoveredFrom = this.#through
    this.#recoveredThrough = this.#through
    // held messages since dispatched (or deleted) keep their row until it is pruned here
    const stale: number[] = []
    for (const { seq, accepted } of db
      .prepare<[], { seq: number; accepted: number }>(
        `SELECT h.seq, coalesce(m.state = 'accepted', 0) AS accepted
         FROM messages_held h LEFT JOIN messages m ON m.seq = h.seq`,
      )
      .iterate()) {
      if (accepted) this.#held.add(seq)
      else stale.push(seq)
    }
    this.#s = {
      insert: db.prepare(
        `INSERT INTO messages (id, app_id, kind, target_type, target, content, created_at, expires_at,
           state, planned, invalid, filtered, valid, delivered, clicked, seq)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      seq: db.prepare<[string], { seq: number }>('SELECT seq FROM messages WHERE id = ?'),
      get: db.prepare<[string], MessageRow>('SELECT * FROM messages WHERE id = ?'),
      belongs: db.prepare<[string, string], { one: number }>(
        'SELECT 1 AS one FROM messages WHERE id = ? AND app_id = ?',
      ),
      dispatched: db.prepare(`UPDATE messages SET state = 'dispatched' WHERE seq = ?`),
      dispatchedFunnel: db.prepare(
        `UPDATE messages SET state = 'dispatched', planned = ?, invalid = ?, filtered = ?, valid = ?
         WHERE seq = ?`,
      ),
      // recovery: the held messages numbered up to the mark, then every message after it
      heldAccepted: db.prepare<[number, number, number], MessageRow>(
        `SELECT m.* FROM messages_held h JOIN messages m ON m.seq = h.seq
         WHERE h.seq > ? AND h.seq <= ? AND m.state = 'accepted' ORDER BY h.seq LIMIT ?`,
      ),
      // every row after the mark is read (by rowid) for its state: a few, the mark being recent
      acceptedAfter: db.prepare<[number, number, number], MessageRow>(
        `SELECT * FROM messages WHERE seq > ? AND seq <= ? AND state = 'accepted'
         ORDER BY seq LIMIT ?`,
      ),
      setThrough: db.prepare(
        `UPDATE store_marks SET value = ? WHERE name = 'messages_dispatched_through'`,
      ),
      hold: db.prepare('INSERT INTO messages_held (seq) VALUES (?) ON CONFLICT DO NOTHING'),
      unhold: db.prepare('DELETE FROM messages_held WHERE seq = ?'),
      receipt: db.prepare(
        'INSERT INTO receipts (message, device, delivered_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
      ),
      // many devices of one message at one time (a broadcast's acknowledgements): one statement
      // (WHERE true: SQLite's parser needs it before ON CONFLICT after a SELECT)
      receipts: db.prepare(
        `INSERT INTO receipts (message, device, delivered_at)
         SELECT ?, value, ? FROM json_each(?) WHERE true ON CONFLICT DO NOTHING`,
      ),
      addDelivered: db.prepare('UPDATE messages SET delivered = delivered + ? WHERE seq = ?'),
      click: db.prepare(
        `UPDATE receipts SET clicked_at = ?
         WHERE message = ? AND device = ? AND clicked_at IS NULL`,
      ),
      addClicked: db.prepare('UPDATE messages SET clicked = clicked + 1 WHERE seq = ?'),
      // ids are minted from the creation time, so the primary key orders messages by age; no
      // index of its own on created_at (one B-tree less to write per push)
      oldIds: db.prepare<[string, number, number], { id: string; seq: number }>(
        'SELECT id, seq FROM messages WHERE id < ? AND created_at < ? ORDER BY id LIMIT ?',
      ),
      deleteReceipts: db.prepare('DELETE FROM receipts WHERE message = ?'),
      deleteMessage: db.prepare('DELETE FROM messages WHERE seq = ?'),
    }
    if (stale.length > 0) {
      this.#w.later(() => {
        for (const seq of stale) this.#s.unhold.run(seq)
      })
    }
  }

  insertMessage(m: MessageRecord): Promise<void> {
    // numbered when queued: the op run again (the writer's retry) writes the same number
    const seq = ++this.#lastSeq
    // not dispatched until its mark is durable: the dispatched-through mark stays below it
    if (m.state === 'accepted') this.#undispatched.set(seq, performance.now())
    const inserted = this.#w.commit(() => {
      const f = m.funnel
      this.#s.insert.run(
        m.id,
        m.appId,
        m.content.kind,
        m.targetType,
        JSON.stringify(m.target),
        JSON.stringify(m.content),
        m.createdAt,
        m.expiresAt,
        m.state,
        f.planned,
        f.invalid,
        f.filtered,
        f.valid,
        f.delivered,
        f.clicked,
        seq,
      )
      // once its row is written (an insert that clashes with an existing id does not get here)
      this.#seqs.set(m.id, seq)
    })
    // not committed after all (the batch failed): the database decides again
    inserted.catch(() => {
      if (this.#seqs.get(m.id) === seq) this.#seqs.delete(m.id)
      this.#undispatched.delete(seq)
    })
    return inserted
  }

  /** The message's number, undefined when it has no row (never inserted, or deleted). */
  #messageSeq(id: string): number | undefined {
    const known = this.#seqs.get(id)
    if (known !== undefined) return known
    const seq = this.#s.seq.get(id)?.seq
    if (seq !== undefined) this.#seqs.set(id, seq)
    return seq
  }

  async getMessage(id: MessageId): Promise<MessageRecord | undefined> {
    const row = this.#s.get.get(id)
    if (!row) return undefined
    const m = toRecord(row)
    if (this.#pendingDispatched.has(id)) {
      m.state = 'dispatched'
      const funnel = this.#pendingDispatched.get(id)
      // the record is this call's own: its funnel takes the overlay's counts
      if (funnel) Object.assign(m.funnel, funnel)
    }
    return m
  }

  async messageBelongsTo(id: MessageId, appId: AppId): Promise<boolean> {
    return this.#s.belongs.get(id, appId) !== undefined
  }

  markDispatched(id: MessageId, funnel?: Omit<MessageFunnel, 'delivered' | 'clicked'>): void {
    // write-behind: readers see the mark at once, the row gets it with the next commit; the
    // overlay stays until that commit is durable (also when it fails: the row still says
    // accepted, and the overlay keeps answering for it until the process ends). In the
    // writer's deferred lane: never durable before the broker's rows of the message, which
    // are queued there before (EmbeddedBrokerPersistence.enqueueRecoverable)
    const seq = this.#messageSeq(id)
    if (seq === undefined) return // no row (deleted by retention meanwhile): nothing to mark
    this.#pendingDispatched.set(id, funnel)
    this.#w.deferred(
      () => {
        if (funnel) {
          this.#s.dispatchedFunnel.run(
            funnel.planned,
            funnel.invalid,
            funnel.filtered,
            funnel.valid,
            seq,
          )
        } else this.#s.dispatched.run(seq)
      },
      () => {
        this.#pendingDispatched.delete(id)
        this.#settled(seq)
      },
    )
  }

  /** The message's dispatched mark is durable. */
  #settled(seq: number): void {
    this.#undispatched.delete(seq)
    if (this.#held.has(seq)) {
      this.#w.later(
        () => this.#s.unhold.run(seq),
        () => this.#held.delete(seq),
      )
    }
    this.#queueMark()
  }

  /**
   * Queues a write of the dispatched-through mark, as far as it can go now, computed when the
   * write runs (in its transaction: what is durable then is what its callbacks have said).
   * Messages not dispatched for HOLD_AFTER_MS are held in the same transaction, and the mark
   * goes past them. One write at a time, with the next commit: never a transaction of its own
   * (a mark that lags only lengthens the next start's reading by the messages since).
   */
  #queueMark(): void {
    if (this.#markQueued) return
    this.#markQueued = true
    let through = this.#through
    let held: number[] = []
    this.#w.withNext(
      () => {
        // run again after a rollback (the writer's retry): computed again, from the same state
        this.#markQueued = false
        ;({ through, held } = this.#nextMark())
        for (const seq of held) this.#s.hold.run(seq)
        if (through > this.#through) this.#s.setThrough.run(through)
      },
      () => {
        this.#through = Math.max(this.#through, through)
        for (const seq of held) {
          this.#held.add(seq)
          // held from now on: the mark no longer waits for it (nor walks past it each time)
          if (this.#undispatched.delete(seq)) continue
          // dispatched (or deleted) in this very batch, after the hold was decided: not held
          this.#settled(seq)
        }
      },
      // not written (the batch failed): the next durable mark queues it again
      () => {
        this.#markQueued = false
      },
    )
  }

  /** How far the mark can go, and which messages to hold so that it can. */
  #nextMark(): { through: number; held: number[] } {
    // the messages after the mark that recovery has not read yet may be accepted
    let through = this.#recoveredThrough < this.#openedAt ? this.#recoveredThrough : this.#lastSeq
    const held: number[] = []
    const holdBefore = performance.now() - HOLD_AFTER_MS
    for (const [seq, since] of this.#undispatched) {
      if (seq > through) continue
      if (since <= holdBefore) held.push(seq)
      else through = seq - 1
    }
    // a message held now and numbered above the mark stays in the table: harmless
    return { through, held }
  }

  async listAccepted(limit: number, after?: number): Promise<AcceptedPage> {
    const messages: MessageRecord[] = []
    // the held messages up to the mark the store opened with, then every message after it up
    // to the largest number when the first page was asked for. Rows marked dispatched but not
    // yet committed (write-behind) are skipped, not counted
    if (after === undefined) this.#listedUpTo = this.#lastSeq
    let cursor = after ?? 0
    const through = this.#recoveredFrom
    while (messages.length < limit) {
      const want = limit - messages.length
      const readingHeld = cursor < through
      const rows = readingHeld
        ? this.#s.heldAccepted.all(cursor, through, want)
        : this.#s.acceptedAfter.all(Math.max(cursor, through), this.#listedUpTo, want)
      for (const r of rows) {
        this.#seqs.set(r.id, r.seq)
        if (this.#pendingDispatched.has(r.id as MessageId)) continue
        messages.push(toRecord(r))
        // to be dispatched (or marked) by the caller: the mark waits for it
        if (!this.#held.has(r.seq) && !this.#undispatched.has(r.seq)) {
          this.#undispatched.set(r.seq, performance.now())
        }
      }
      if (rows.length === want) {
        cursor = (rows[rows.length - 1] as MessageRow).seq
        if (!readingHeld) {
          this.#recoveredThrough = Math.max(
            this.#recoveredThrough,
            Math.min(cursor, this.#openedAt),
          )
        }
        continue
      }
      if (readingHeld) {
        cursor = through
        continue
      }
      // every message up to the largest number at the start has been read (those after it are
      // this process's own, waited for by the mark as they come)
      this.#recoveredThrough = this.#openedAt
      return { messages }
    }
    return { messages, next: cursor }
  }

  recordDelivered(messageId: MessageId, regId: RegId, at: number): void {
    const batch = this.#delivered.open()
    batch.messageIds.push(messageId)
    batch.regIds.push(regId)
    batch.at.push(at)
  }

  /**
   * Writes a batch of receipts and adds what was new to each message's delivered count. The
   * receipts of one message at one millisecond (a broadcast's acknowledgements arrive so) go
   * in one statement: ~30 % less per receipt than a statement each.
   */
  #flushDelivered(batch: DeliveredBatch): void {
    const { messageIds, regIds, at } = batch
    const counts = new Map<number, number>()
    for (let i = 0; i < messageIds.length;) {
      const id = messageIds[i] as MessageId
      const time = at[i] as number
      let end = i + 1
      while (end < messageIds.length && messageIds[end] === id && at[end] === time) end++
      // a message without a row (deleted by retention) or a device without one (never
      // registered) has no receipt to keep
      const message = this.#messageSeq(id)
      const added = message === undefined ? 0 : this.#insertReceipts(message, regIds, i, end, time)
      if (message !== undefined && added > 0)
        counts.set(message, (counts.get(message) ?? 0) + added)
      i = end
    }
    for (const [message, n] of counts) this.#s.addDelivered.run(n, message)
  }

  /** The receipts of devices `regIds[from..to)` for one message at one time; how many were new. */
  #insertReceipts(message: number, regIds: RegId[], from: number, to: number, at: number): number {
    if (to - from === 1) {
      const device = this.#deviceSeq(regIds[from] as string)
      return device === undefined ? 0 : this.#s.receipt.run(message, device, at).changes
    }
    const devices: number[] = []
    for (let k = from; k < to; k++) {
      const device = this.#deviceSeq(regIds[k] as string)
      if (device !== undefined) devices.push(device)
    }
    if (devices.length === 0) return 0
    return this.#s.receipts.run(message, at, JSON.stringify(devices)).changes
  }

  async recordClicked(messageId: MessageId, regId: RegId, at: number): Promise<boolean> {
    let counted = false
    await this.#w.commit(() => {
      const message = this.#messageSeq(messageId)
      const device = this.#deviceSeq(regId)
      if (message === undefined || device === undefined) return
      if (this.#s.click.run(at, message, device).changes > 0) {
        this.#s.addClicked.run(message)
        counted = true
      }
    })
    return counted
  }

  async deleteMessagesBefore(before: number, limit: number): Promise<number> {
    let deleted: number[] = []
    await this.#w.commit(() => {
      // run again after a rollback (the writer's retry): the same rows again
      deleted = []
      for (const { id, seq } of this.#s.oldIds.all(messageIdPrefix(before), before, limit)) {
        this.#s.deleteReceipts.run(seq)
        this.#s.deleteMessage.run(seq)
        this.#s.unhold.run(seq)
        this.#seqs.delete(id)
        deleted.push(seq)
      }
    })
    // gone: neither waited for by the mark nor held
    for (const seq of deleted) {
      this.#held.delete(seq)
      if (this.#undispatched.delete(seq)) this.#queueMark()
    }
    return deleted.length
  }
}
