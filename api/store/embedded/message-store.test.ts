import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { databaseOfSchema } from '../../../test/helpers/embedded-db.js'
import type { MessageId, RegId } from '../../core/model.js'
import { openEmbeddedStore } from './index.js'
import Database from 'better-sqlite3'
import { DATABASE_FILE, openDatabase } from './database.js'
import { EmbeddedMessageStore, HOLD_AFTER_MS } from './message-store.js'
import { SqliteWriter, WRITE_BEHIND_DELAY_MS } from './writer.js'

/** Devices A, B and C (22 of that letter), registered. */
const [A, B, C] = ['A', 'B', 'C'].map((c) => c.repeat(22) as RegId) as [RegId, RegId, RegId]

/** A device of the test app to register. */
const device = (regId: RegId) => ({
  regId,
  appId: 'ap00000000000001' as never,
  tokenHash: 'h',
  installationId: undefined,
  attributes: {},
  registeredAt: 1,
  lastSeenAt: undefined,
  invalidatedAt: undefined,
  invalidReason: undefined,
})

/** An in-memory store holding devices A, B, C and one dispatched message to `planned` devices. */
async function storeWithMessage(planned: number, onWriteError: (err: unknown) => void) {
  const store = openEmbeddedStore({ dataDir: ':memory:', onWriteError })
  for (const regId of [A, B, C]) await store.devices.insertDevice(device(regId))
  const id = 'm000000001aaaaaaaaaa' as MessageId
  await store.messages.insertMessage({
    id,
    appId: 'ap00000000000001' as never,
    targetType: 'regId',
    target: { regIds: [] },
    content: { kind: 'passThrough', payload: 'p' },
    createdAt: 1_800_000_000_000,
    expiresAt: 1_800_000_600_000,
    state: 'dispatched',
    funnel: { planned, invalid: 0, filtered: 0, valid: planned, delivered: 0, clicked: 0 },
  })
  return { store, id }
}

describe('EmbeddedMessageStore receipts', () => {
  it('keeps the receipts of a batch that another op rolled back', async () => {
    const { store, id } = await storeWithMessage(2, () => {})
    store.messages.recordDelivered(id, A, 1)
    // an op of the same batch breaks a constraint: the batch is rolled back and run op by op
    const clash = store.messages.insertMessage({ ...(await store.messages.getMessage(id))! })
    store.messages.recordDelivered(id, B, 2)
    await expect(clash).rejects.toThrow(/UNIQUE/)
    await store.writer.commit(() => {})
    expect((await store.messages.getMessage(id))?.funnel.delivered).toBe(2)
    await store.close()
  })

  it('writes the receipts that come after a failed batch', async () => {
    // found in review: the failed batch stayed the one later receipts were added to
    const errors: unknown[] = []
    const { store, id } = await storeWithMessage(3, (e) => errors.push(e))
    store.writer.later(() => {
      throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' })
    })
    store.messages.recordDelivered(id, A, 1)
    store.writer.flush()
    expect(errors.length).toBeGreaterThan(0)
    store.messages.recordDelivered(id, B, 2)
    store.messages.recordDelivered(id, C, 3)
    await store.writer.commit(() => {})
    // A went with the failed batch (reported); B and C are counted
    expect((await store.messages.getMessage(id))?.funnel.delivered).toBe(2)
    await store.close()
  })
})

describe('EmbeddedMessageStore receipts by number', () => {
  const dirs: string[] = []
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })

  const message = (id: string, planned = 3) => ({
    id: id as MessageId,
    appId: 'ap00000000000001' as never,
    targetType: 'regId' as const,
    target: { regIds: [] },
    content: { kind: 'passThrough' as const, payload: 'p' },
    createdAt: 1_800_000_000_000,
    expiresAt: 1_800_000_600_000,
    state: 'dispatched' as const,
    funnel: { planned, invalid: 0, filtered: 0, valid: planned, delivered: 0, clicked: 0 },
  })

  it('keeps the receipts and clicks of a database from before the numbers (schema 8)', async () => {
    const { dir, old } = databaseOfSchema(8, dirs)
    const insertDevice = old.prepare(
      `INSERT INTO devices (reg_id, app_id, token_hash, attributes, registered_at)
       VALUES (?, 'ap00000000000001', 'h', '{}', 1)`,
    )
    for (const regId of [A, B, C]) insertDevice.run(regId)
    const insertMessage = old.prepare(
      `INSERT INTO messages (id, app_id, kind, target_type, target, content, created_at, expires_at,
         state, planned, invalid, filtered, valid, delivered, clicked)
       VALUES (?, 'ap00000000000001', 'passThrough', 'regId', '{}', '{}', 1, 2, 'dispatched',
         3, 0, 0, 3, ?, ?)`,
    )
    insertMessage.run('m000000001aaaaaaaaaa', 2, 1)
    insertMessage.run('m000000002aaaaaaaaaa', 1, 0)
    const receipt = old.prepare(
      'INSERT INTO receipts (message_id, reg_id, delivered_at, clicked_at) VALUES (?, ?, ?, ?)',
    )
    receipt.run('m000000001aaaaaaaaaa', A, 10, 11) // delivered and clicked
    receipt.run('m000000001aaaaaaaaaa', B, 12, null) // delivered
    receipt.run('m000000002aaaaaaaaaa', C, 13, null)
    old.close()
    const store = openEmbeddedStore({ dataDir: dir, onWriteError: () => {} })
    try {
      const first = 'm000000001aaaaaaaaaa' as MessageId
      const second = 'm000000002aaaaaaaaaa' as MessageId
      const rows = store.db
        .prepare('SELECT message, device, delivered_at, clicked_at FROM receipts ORDER BY 3')
        .all()
      expect(rows).toHaveLength(3)
      // the click stays counted once, the delivered-only receipt still takes its click
      expect(await store.messages.recordClicked(first, A, 20)).toBe(false)
      expect(await store.messages.recordClicked(first, B, 21)).toBe(true)
      expect(await store.messages.recordClicked(first, C, 22)).toBe(false) // never delivered
      expect(await store.messages.recordClicked(second, C, 23)).toBe(true)
      // a delivery seen before counts no more; a new one does
      store.messages.recordDelivered(first, A, 30)
      store.messages.recordDelivered(first, C, 31)
      await store.writer.commit(() => {})
      expect((await store.messages.getMessage(first))?.funnel).toMatchObject({
        delivered: 3,
        clicked: 2,
      })
      // a device and a message made now get numbers of their own, not an old one's
      const D = 'D'.repeat(22) as RegId
      await store.devices.insertDevice(device(D))
      const third = 'm000000003aaaaaaaaaa'
      await store.messages.insertMessage(message(third))
      store.messages.recordDelivered(third as MessageId, D, 40)
      await store.writer.commit(() => {})
      expect((await store.messages.getMessage(first))?.funnel.delivered).toBe(3)
      expect((await store.messages.getMessage(third as MessageId))?.funnel.delivered).toBe(1)
      const numbers = store.db
        .prepare(
          `SELECT (SELECT count(DISTINCT seq) FROM devices) AS devices,
                  (SELECT count(DISTINCT seq) FROM messages) AS messages`,
        )
        .get()
      expect(numbers).toEqual({ devices: 4, messages: 3 })
    } finally {
      await store.close()
    }
  })

  it('counts a delivery of a message from before a restart, and none for an unknown device', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mqpush-receipts-'))
    dirs.push(dir)
    const id = 'm000000001bbbbbbbbbb' as MessageId
    const a = openEmbeddedStore({ dataDir: dir, onWriteError: () => {} })
    await a.devices.insertDevice(device(A))
    await a.messages.insertMessage(message(id))
    await a.close()
    // a fresh process knows neither the message's number nor the device's: both are read
    const b = openEmbeddedStore({ dataDir: dir, onWriteError: () => {} })
    try {
      b.messages.recordDelivered(id, A, 5)
      b.messages.recordDelivered(id, 'Z'.repeat(22) as RegId, 5) // no such device
      await b.writer.commit(() => {})
      expect((await b.messages.getMessage(id))?.funnel.delivered).toBe(1)
      expect(await b.messages.recordClicked(id, A, 6)).toBe(true)
      // a device registered now does not take the number of one before the restart
      await b.devices.insertDevice(device(B))
      b.messages.recordDelivered(id, B, 7)
      await b.writer.commit(() => {})
      expect((await b.messages.getMessage(id))?.funnel.delivered).toBe(2)
    } finally {
      await b.close()
    }
  })
  it("deletes a message's receipts with it: a number that comes back after a restart starts clean", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mqpush-receipts-'))
    dirs.push(dir)
    const old = { ...message('m000000001cccccccccc'), createdAt: 1_000_000_000_000 }
    const a = openEmbeddedStore({ dataDir: dir, onWriteError: () => {} })
    await a.devices.insertDevice(device(A))
    await a.messages.insertMessage(old)
    a.messages.recordDelivered(old.id, A, 5)
    await a.writer.commit(() => {})
    expect(await a.messages.deleteMessagesBefore(1_500_000_000_000, 10)).toBe(1)
    expect(a.db.prepare('SELECT count(*) AS n FROM receipts').get()).toEqual({ n: 0 })
    await a.close()
    // the largest number is gone: the next message gets it again, with no receipt of the old one
    const b = openEmbeddedStore({ dataDir: dir, onWriteError: () => {} })
    try {
      const next = message('m000000002cccccccccc')
      await b.messages.insertMessage(next)
      expect(b.db.prepare('SELECT seq FROM messages WHERE id = ?').get(next.id)).toEqual({ seq: 1 })
      b.messages.recordDelivered(next.id, A, 6)
      await b.writer.commit(() => {})
      expect((await b.messages.getMessage(next.id))?.funnel.delivered).toBe(1)
      expect(await b.messages.recordClicked(next.id, A, 7)).toBe(true)
    } finally {
      await b.close()
    }
  })
})

describe('EmbeddedMessageStore recovery from the dispatched-through mark', () => {
  const dirs: string[] = []
  afterEach(() => {
    vi.restoreAllMocks()
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })

  let n = 0
  const accepted = () => ({
    id: `m00000000${String(++n).padStart(2, '0')}dddddddddd` as MessageId,
    appId: 'ap00000000000001' as never,
    targetType: 'regId' as const,
    target: { regIds: [] },
    content: { kind: 'passThrough' as const, payload: 'p' },
    createdAt: 1_800_000_000_000,
    expiresAt: 1_800_000_600_000,
    state: 'accepted' as const,
    funnel: { planned: 1, invalid: 0, filtered: 0, valid: 1, delivered: 0, clicked: 0 },
  })
  /** The message store on a database that can be closed and opened again, as a restart does. */
  function open(dir: string, errors?: unknown[]) {
    const db = openDatabase({ dataDir: dir })
    let crashed = false
    const writer = new SqliteWriter(db, (e) => {
      if (crashed) return
      if (!errors) throw e
      errors.push(e) // a test that makes a write fail on purpose
    })
    const deviceSeq = db.prepare<[string], { seq: number }>(
      'SELECT seq FROM devices WHERE reg_id = ?',
    )
    const messages = new EmbeddedMessageStore(db, writer, (regId) => deviceSeq.get(regId)?.seq)
    return {
      db,
      writer,
      messages,
      /** kill -9: whatever is committed stays, nothing else runs. */
      crash() {
        crashed = true
        db.close()
      },
      close() {
        writer.close()
        db.close()
      },
    }
  }
  const mark = (store: ReturnType<typeof open>) =>
    (
      store.db
        .prepare(`SELECT value FROM store_marks WHERE name = 'messages_dispatched_through'`)
        .get() as { value: number }
    ).value
  const held = (store: ReturnType<typeof open>) =>
    (
      store.db.prepare('SELECT seq FROM messages_held ORDER BY seq').all() as Array<{ seq: number }>
    ).map((r) => r.seq)
  const seqOf = (store: ReturnType<typeof open>, id: MessageId) =>
    (store.db.prepare('SELECT seq FROM messages WHERE id = ?').get(id) as { seq: number }).seq
  /** Every page of a listing: what recovery would dispatch again. */
  async function listed(store: ReturnType<typeof open>): Promise<MessageId[]> {
    const ids: MessageId[] = []
    let after: number | undefined
    for (;;) {
      const page = await store.messages.listAccepted(2, after)
      ids.push(...page.messages.map((m) => m.id))
      if (page.next === undefined) return ids
      after = page.next
    }
  }
  /** Commits the marks, then the write of the mark they let go on. */
  const settle = (store: ReturnType<typeof open>) => {
    store.writer.flush()
    store.writer.flush()
  }
  /** performance.now() under the test's control. */
  function fakeNow() {
    let now = 1_000
    vi.spyOn(performance, 'now').mockImplementation(() => now)
    return {
      advance: (ms: number) => {
        now += ms
      },
    }
  }
  /** A message accepted and dispatched, its mark durable and the mark's write committed. */
  async function dispatched(store: ReturnType<typeof open>) {
    const m = accepted()
    await store.messages.insertMessage(m)
    store.messages.markDispatched(m.id)
    settle(store)
    return m
  }
  const dir = () => {
    const d = mkdtempSync(join(tmpdir(), 'mqpush-mark-'))
    dirs.push(d)
    return d
  }

  it('moves the mark past the dispatched messages, never past one that is not', async () => {
    const d = dir()
    const a = open(d)
    const [x, y, z] = [accepted(), accepted(), accepted()]
    for (const m of [x, y, z]) await a.messages.insertMessage(m)
    a.messages.markDispatched(x.id)
    a.messages.markDispatched(z.id) // y: accepted, its dispatch not done (a crash now)
    settle(a)
    expect(mark(a)).toBe(seqOf(a, x.id))
    a.crash()
    const b = open(d)
    try {
      expect(await listed(b)).toEqual([y.id])
      b.messages.markDispatched(y.id)
      settle(b)
      expect(mark(b)).toBe(seqOf(b, z.id))
      expect(await listed(b)).toEqual([])
    } finally {
      b.close()
    }
  })

  it('holds a message left undispatched, so that the mark goes on; recovery still finds it', async () => {
    const d = dir()
    const clock = fakeNow()
    const a = open(d)
    const [stuck, later, last] = [accepted(), accepted(), accepted()]
    await a.messages.insertMessage(stuck) // its dispatch failed: no mark
    await a.messages.insertMessage(later)
    a.messages.markDispatched(later.id)
    settle(a)
    expect(mark(a)).toBe(seqOf(a, stuck.id) - 1) // not held yet
    expect(held(a)).toEqual([])
    clock.advance(HOLD_AFTER_MS)
    await a.messages.insertMessage(last)
    a.messages.markDispatched(last.id)
    settle(a)
    expect(held(a)).toEqual([seqOf(a, stuck.id)])
    expect(mark(a)).toBe(seqOf(a, last.id))
    a.crash()
    const b = open(d)
    try {
      expect(await listed(b)).toEqual([stuck.id])
      b.messages.markDispatched(stuck.id)
      settle(b)
      expect(held(b)).toEqual([])
      expect(await listed(b)).toEqual([])
    } finally {
      b.close()
    }
  })

  it('keeps the mark below the messages from before the start until recovery has read them', async () => {
    const d = dir()
    const a = open(d)
    const old = accepted()
    await a.messages.insertMessage(old)
    a.crash()
    const b = open(d)
    try {
      await dispatched(b)
      expect(mark(b)).toBe(0) // old is unread, and may be accepted (it is)
      expect(await listed(b)).toEqual([old.id])
      const another = await dispatched(b)
      expect(mark(b)).toBe(0) // old listed, not dispatched yet
      b.messages.markDispatched(old.id)
      settle(b)
      expect(mark(b)).toBe(seqOf(b, another.id))
    } finally {
      b.close()
    }
  })

  it('never numbers a message at or below the mark, the messages that had the numbers deleted', async () => {
    const d = dir()
    const a = open(d)
    const gone = { ...accepted(), createdAt: 1_000_000_000_000 }
    await a.messages.insertMessage(gone)
    a.messages.markDispatched(gone.id)
    settle(a)
    expect(mark(a)).toBe(1)
    expect(await a.messages.deleteMessagesBefore(1_500_000_000_000, 10)).toBe(1)
    a.close()
    const b = open(d)
    try {
      const next = accepted()
      await b.messages.insertMessage(next)
      expect(seqOf(b, next.id)).toBe(2)
      b.crash()
      const c = open(d)
      expect(await listed(c)).toEqual([next.id]) // not passed over by the mark
      c.close()
    } finally {
      if (b.db.open) b.close()
    }
  })

  it('moves the mark on after a batch failed before its write ran', async () => {
    const d = dir()
    const errors: unknown[] = []
    const a = open(d, errors)
    try {
      const x = accepted()
      await a.messages.insertMessage(x)
      a.messages.markDispatched(x.id)
      a.writer.flush() // x's mark is durable: the write of the mark is queued
      // another connection holds the write lock: the batch fails at its BEGIN, before the write
      a.db.pragma('busy_timeout = 0')
      const other = new Database(join(d, DATABASE_FILE))
      other.exec('BEGIN IMMEDIATE')
      a.writer.flush()
      other.exec('COMMIT')
      other.close()
      expect(errors).toHaveLength(1)
      expect(mark(a)).toBe(0)
      const y = await dispatched(a)
      expect(mark(a)).toBe(seqOf(a, y.id))
    } finally {
      a.close()
    }
  })

  it('writes the mark with the next commit, never in a transaction of its own', async () => {
    const a = open(dir())
    try {
      const x = accepted()
      await a.messages.insertMessage(x)
      a.messages.markDispatched(x.id)
      // the deferred lane's timer commits x's mark; nothing else is written after it
      await new Promise((resolve) => setTimeout(resolve, WRITE_BEHIND_DELAY_MS * 3))
      expect(a.db.prepare(`SELECT state FROM messages WHERE id = ?`).get(x.id)).toEqual({
        state: 'dispatched',
      })
      expect(mark(a)).toBe(0)
      await a.messages.insertMessage(accepted()) // the next commit takes the mark along
      expect(mark(a)).toBe(seqOf(a, x.id))
    } finally {
      a.close()
    }
  })

  it('pages through more held messages than a page, then the messages after the mark', async () => {
    const d = dir()
    const clock = fakeNow()
    const a = open(d)
    const stuck = [accepted(), accepted(), accepted()]
    for (const m of stuck) await a.messages.insertMessage(m)
    clock.advance(HOLD_AFTER_MS)
    const x = await dispatched(a)
    expect(held(a)).toEqual(stuck.map((m) => seqOf(a, m.id)))
    const tail = accepted()
    await a.messages.insertMessage(tail)
    expect(mark(a)).toBe(seqOf(a, x.id))
    a.crash()
    const b = open(d)
    try {
      expect(await listed(b)).toEqual([...stuck.map((m) => m.id), tail.id])
    } finally {
      b.close()
    }
  })

  it('drops at open the hold of a message dispatched since (its unhold lost in a crash)', async () => {
    const d = dir()
    const a = open(d)
    const gone = await dispatched(a)
    a.db.prepare('INSERT INTO messages_held (seq) VALUES (?)').run(seqOf(a, gone.id))
    a.crash()
    const b = open(d)
    try {
      expect(held(b)).toEqual([seqOf(b, gone.id)])
      b.writer.flush()
      expect(held(b)).toEqual([])
      expect(await listed(b)).toEqual([])
    } finally {
      b.close()
    }
  })

  it('deletes a held message with its hold (retention)', async () => {
    const clock = fakeNow()
    const a = open(dir())
    try {
      const stuck = { ...accepted(), createdAt: 1_000_000_000_000 }
      await a.messages.insertMessage(stuck)
      clock.advance(HOLD_AFTER_MS)
      await dispatched(a) // the mark goes on past stuck: held
      expect(held(a)).toEqual([seqOf(a, stuck.id)])
      expect(await a.messages.deleteMessagesBefore(1_500_000_000_000, 10)).toBe(1)
      expect(held(a)).toEqual([])
    } finally {
      a.close()
    }
  })

  it('migrates a database of schema 9: its messages, their receipts, the accepted ones held and the mark at the last', async () => {
    const { dir: d, old } = databaseOfSchema(9, dirs)
    old
      .prepare(
        `INSERT INTO devices (reg_id, app_id, token_hash, attributes, registered_at, seq)
         VALUES (?, 'ap00000000000001', 'h', '{}', 1, 1)`,
      )
      .run(A)
    const insert = old.prepare(
      `INSERT INTO messages (id, app_id, kind, target_type, target, content, created_at, expires_at,
         state, planned, invalid, filtered, valid, delivered, clicked, seq)
       VALUES (?, 'ap00000000000001', 'passThrough', 'regId', '{"regIds":[]}', '{"kind":"passThrough","payload":"p"}',
         1, 1800000600000, ?, 1, 0, 0, 1, ?, 0, ?)`,
    )
    insert.run('m000000001eeeeeeeeee', 'dispatched', 1, 4)
    insert.run('m000000002eeeeeeeeee', 'accepted', 0, 7)
    insert.run('m000000003eeeeeeeeee', 'dispatched', 0, 9)
    old.prepare('INSERT INTO receipts (message, device, delivered_at) VALUES (4, 1, 10)').run()
    old.close()
    const store = open(d)
    try {
      expect(mark(store)).toBe(9)
      expect(held(store)).toEqual([7])
      expect(await listed(store)).toEqual(['m000000002eeeeeeeeee'])
      store.messages.markDispatched('m000000002eeeeeeeeee' as MessageId)
      settle(store)
      expect(held(store)).toEqual([])
      const first = 'm000000001eeeeeeeeee' as MessageId
      expect(seqOf(store, first)).toBe(4)
      expect(await store.messages.recordClicked(first, A, 11)).toBe(true) // its receipt kept
      expect((await store.messages.getMessage(first))?.funnel).toMatchObject({
        delivered: 1,
        clicked: 1,
      })
      const next = accepted()
      await store.messages.insertMessage(next)
      expect(seqOf(store, next.id)).toBe(10)
    } finally {
      store.close()
    }
  })
})
