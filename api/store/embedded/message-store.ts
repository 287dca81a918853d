import type { MessageFunnel, MessageState, TargetType } from '../../../sdk/protocol/responses.js'
import type { Target } from '../../../sdk/protocol/schemas.js'
import type { MessageStore } from '../../core/messages/message-store.js'
import { messageIdPrefix } from '../../core/ids.js'
import type { AppId, MessageContent, MessageId, MessageRecord, RegId } from '../../core/model.js'
import type { Db } from './database.js'
import { RecentMap } from './recent-map.js'
import { LaterBatch, type SqliteWriter } from './writer.js'

interface MessageRow {
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
   * The last message number given, counting on from the largest at the start: a number comes
   * back only once every row that had it is gone (retention deletes a message with its receipts).
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
      dispatched: db.prepare(`UPDATE messages SET state = 'dispatched' WHERE id = ?`),
      dispatchedFunnel: db.prepare(
        `UPDATE messages SET state = 'dispatched', planned = ?, invalid = ?, filtered = ?, valid = ?
         WHERE id = ?`,
      ),
      accepted: db.prepare<[number, string, number], MessageRow>(
        `SELECT * FROM messages WHERE state = 'accepted' AND (created_at, id) > (?, ?)
         ORDER BY created_at, id LIMIT ?`,
      ),
      receipt: db.prepare(
        'INSERT INTO receipts (message, device, delivered_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
      ),
      // many devices of one message at one time (a broadcast's acknowledgements): one statement
      // (WHERE true: SQLite's parser needs it before ON CONFLICT after a SELECT)
      receipts: db.prepare(
        `INSERT INTO receipts (message, device, delivered_at)
         SELECT ?, value, ? FROM json_each(?) WHERE true ON CONFLICT DO NOTHING`,
      ),
      addDelivered: db.prepare('UPDATE messages SET delivered = delivered + ? WHERE id = ?'),
      click: db.prepare(
        `UPDATE receipts SET clicked_at = ?
         WHERE message = ? AND device = ? AND clicked_at IS NULL`,
      ),
      addClicked: db.prepare('UPDATE messages SET clicked = clicked + 1 WHERE id = ?'),
      // ids are minted from the creation time, so the primary key orders messages by age; no
      // index of its own on created_at (one B-tree less to write per push)
      oldIds: db.prepare<[string, number, number], { id: string; seq: number }>(
        'SELECT id, seq FROM messages WHERE id < ? AND created_at < ? ORDER BY id LIMIT ?',
      ),
      deleteReceipts: db.prepare('DELETE FROM receipts WHERE message = ?'),
      deleteMessage: db.prepare('DELETE FROM messages WHERE id = ?'),
    }
  }

  insertMessage(m: MessageRecord): Promise<void> {
    // numbered when queued: the op run again (the writer's retry) writes the same number
    const seq = ++this.#lastSeq
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
    this.#pendingDispatched.set(id, funnel)
    this.#w.deferred(
      () => {
        if (funnel) {
          this.#s.dispatchedFunnel.run(
            funnel.planned,
            funnel.invalid,
            funnel.filtered,
            funnel.valid,
            id,
          )
        } else this.#s.dispatched.run(id)
      },
      () => this.#pendingDispatched.delete(id),
    )
  }

  async listAccepted(
    limit: number,
    after?: { createdAt: number; id: MessageId },
  ): Promise<MessageRecord[]> {
    const out: MessageRecord[] = []
    let from = after ?? { createdAt: -Infinity, id: '' }
    // rows marked dispatched but not yet committed (write-behind) are skipped, not counted
    while (out.length < limit) {
      const rows = this.#s.accepted.all(from.createdAt, from.id, limit - out.length)
      if (rows.length === 0) break
      for (const r of rows) {
        if (!this.#pendingDispatched.has(r.id as MessageId)) out.push(toRecord(r))
      }
      const last = rows[rows.length - 1] as MessageRow
      from = { createdAt: last.created_at, id: last.id }
    }
    return out
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
    const counts = new Map<string, number>()
    for (let i = 0; i < messageIds.length;) {
      const id = messageIds[i] as MessageId
      const time = at[i] as number
      let end = i + 1
      while (end < messageIds.length && messageIds[end] === id && at[end] === time) end++
      // a message without a row (deleted by retention) or a device without one (never
      // registered) has no receipt to keep
      const message = this.#messageSeq(id)
      const added = message === undefined ? 0 : this.#insertReceipts(message, regIds, i, end, time)
      if (added > 0) counts.set(id, (counts.get(id) ?? 0) + added)
      i = end
    }
    for (const [id, n] of counts) this.#s.addDelivered.run(n, id)
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
        this.#s.addClicked.run(messageId)
        counted = true
      }
    })
    return counted
  }

  async deleteMessagesBefore(before: number, limit: number): Promise<number> {
    let n = 0
    await this.#w.commit(() => {
      for (const { id, seq } of this.#s.oldIds.all(messageIdPrefix(before), before, limit)) {
        this.#s.deleteReceipts.run(seq)
        this.#s.deleteMessage.run(id)
        this.#seqs.delete(id)
        n++
      }
    })
    return n
  }
}
