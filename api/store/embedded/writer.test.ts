import { describe, expect, it } from 'vitest'
import { openDatabase } from './database.js'
import { SqliteWriter, WRITE_BEHIND_DELAY_MS, WRITE_BEHIND_MAX_OPS } from './writer.js'

function setup() {
  const db = openDatabase({ dataDir: ':memory:' })
  db.exec('CREATE TABLE t (v INTEGER PRIMARY KEY)')
  // counts the outermost transactions run, and those begun IMMEDIATE (a savepoint inside one
  // is not counted); wrapped before the writer exists, which may build its transactions once
  const counts = { outer: 0, immediate: 0 }
  const begin = db.transaction.bind(db)
  db.transaction = ((fn: (...args: unknown[]) => void) => {
    const t = begin(fn)
    const counted =
      (run: (...args: unknown[]) => unknown, immediate: boolean) =>
      (...args: unknown[]) => {
        if (!db.inTransaction) {
          counts.outer++
          if (immediate) counts.immediate++
        }
        return run(...args)
      }
    return Object.assign(counted(t, false), {
      immediate: counted((...args) => t.immediate(...args), true),
    })
  }) as unknown as typeof db.transaction
  const errors: unknown[] = []
  const writer = new SqliteWriter(db, (e) => errors.push(e))
  const insert = db.prepare('INSERT INTO t (v) VALUES (?)')
  const rows = () =>
    (db.prepare('SELECT v FROM t ORDER BY v').all() as Array<{ v: number }>).map((r) => r.v)
  return { db, writer, insert, rows, errors, counts }
}

describe('SqliteWriter', () => {
  it('commits everything queued in one turn as one transaction, in order', async () => {
    const { writer, insert, rows, counts } = setup()
    writer.later(() => insert.run(1))
    const p = writer.commit(() => insert.run(2))
    writer.later(() => insert.run(3))
    expect(rows()).toEqual([]) // nothing before the turn ends
    await p
    expect(rows()).toEqual([1, 2, 3])
    // IMMEDIATE: the write lock is taken at BEGIN, never upgraded midway (see the writer)
    expect(counts).toEqual({ outer: 1, immediate: 1 })
  })

  it('isolates a failing operation: only its promise rejects, the rest commits', async () => {
    const { writer, insert, rows, errors, counts } = setup()
    // the retry is one transaction (each op in a savepoint), so a crash commits none or all
    const ok1 = writer.commit(() => insert.run(1))
    const bad = writer.commit(() => insert.run(1)) // duplicate key
    writer.later(() => insert.run(1)) // write-behind failure goes to onError
    const ok2 = writer.commit(() => insert.run(2))
    await expect(bad).rejects.toThrow(/UNIQUE/)
    await ok1
    await ok2
    expect(rows()).toEqual([1, 2])
    expect(errors).toHaveLength(1)
    expect(counts).toEqual({ outer: 2, immediate: 2 }) // the batch, then its retry
  })

  it('flushes on close and refuses writes afterwards', async () => {
    const { writer, insert, rows, errors } = setup()
    writer.later(() => insert.run(7))
    writer.close()
    expect(rows()).toEqual([7])
    await expect(writer.commit(() => insert.run(8))).rejects.toThrow(/closed/)
    writer.later(() => insert.run(9))
    expect(errors).toHaveLength(1)
  })

  it('commits a withNext op only with the next commit, or at close', async () => {
    const { writer, insert, rows, counts } = setup()
    writer.withNext(() => insert.run(1))
    await new Promise((resolve) => setTimeout(resolve, WRITE_BEHIND_DELAY_MS * 2))
    expect(rows()).toEqual([]) // no transaction of its own
    expect(counts.outer).toBe(0)
    await writer.commit(() => insert.run(2))
    expect(rows()).toEqual([1, 2])
    writer.withNext(() => insert.run(3))
    writer.close()
    expect(rows()).toEqual([1, 2, 3])
  })

  it('commits on close what the last commit queued behind it, and leaves no timer running', async () => {
    const { db, writer, insert, rows, errors } = setup()
    // a write queued once another is durable (the message store's dispatched-through mark)
    writer.deferred(
      () => insert.run(1),
      () => writer.later(() => insert.run(2)),
    )
    writer.close()
    expect(rows()).toEqual([1, 2])
    db.close()
    await new Promise((resolve) => setTimeout(resolve, WRITE_BEHIND_DELAY_MS * 2))
    expect(errors).toEqual([]) // no batch ran on the closed database
  })
})

describe('SqliteWriter deferred lane', () => {
  it('is not taken along by a durable commit, but by the write-behind timer after the rest', async () => {
    const { writer, insert, rows } = setup()
    const order: number[] = []
    writer.commit(() => insert.run(1)).catch(() => {})
    writer.deferred(
      () => insert.run(2),
      () => order.push(2),
    )
    writer.later(() => insert.run(3))
    await writer.commit(() => insert.run(4))
    expect(rows()).toEqual([1, 3, 4]) // the commit took the later op, not the deferred one
    writer.deferred(() => insert.run(5))
    await writer.commit(() => insert.run(6))
    expect(rows()).toEqual([1, 3, 4, 6])
    await new Promise((r) => setTimeout(r, WRITE_BEHIND_DELAY_MS + 30))
    expect(rows()).toEqual([1, 2, 3, 4, 5, 6])
    expect(order).toEqual([2])
    expect(writer.pending).toBe(0)
  })

  it('commits with or after every op queued before it, in its own order', () => {
    const { writer, db, rows } = setup()
    const log: string[] = []
    const step = (name: string, v: number) => () => {
      log.push(name)
      db.prepare('INSERT INTO t (v) VALUES (?)').run(v)
    }
    writer.later(step('later 1', 1))
    writer.deferred(step('deferred 2', 2))
    writer.deferred(step('deferred 3', 3))
    writer.later(step('later 4', 4))
    writer.flush() // a full flush: the main queue, then the deferred lane
    expect(log).toEqual(['later 1', 'later 4', 'deferred 2', 'deferred 3'])
    expect(rows()).toEqual([1, 2, 3, 4])
  })

  it('is committed by pause, close, and at once when it grows past the op limit', async () => {
    const { writer, insert, rows } = setup()
    writer.deferred(() => insert.run(1))
    writer.pause()
    expect(rows()).toEqual([1])
    writer.deferred(() => insert.run(2))
    writer.resume()
    await new Promise((r) => setImmediate(r))
    expect(rows()).toEqual([1, 2]) // queued while paused: committed on resume
    for (let i = 0; i < WRITE_BEHIND_MAX_OPS; i++) writer.deferred(() => insert.run(10 + i))
    await new Promise((r) => setImmediate(r))
    expect(rows()).toHaveLength(2 + WRITE_BEHIND_MAX_OPS)
    writer.deferred(() => insert.run(9))
    writer.close()
    expect(rows()).toContain(9)
  })

  it('never commits a deferred op when one before it in the lane failed', () => {
    // found in review: a dispatched mark committed although the queue rows before it failed
    const { writer, insert, rows, errors } = setup()
    insert.run(1)
    writer.deferred(() => insert.run(1)) // breaks a constraint
    writer.deferred(() => insert.run(2)) // queued after it in the lane
    writer.later(() => insert.run(3)) // main lane: unaffected
    writer.flush()
    expect(rows()).toEqual([1, 3])
    expect(errors).toHaveLength(2)
  })

  it('is taken along by a commit that asks for it, before that commit', async () => {
    const { writer, db, rows } = setup()
    const log: number[] = []
    const step = (v: number) => () => {
      log.push(v)
      db.prepare('INSERT INTO t (v) VALUES (?)').run(v)
    }
    writer.deferred(step(1))
    await writer.commit(step(2))
    expect(rows()).toEqual([2])
    await writer.commit(step(3), true)
    expect(log).toEqual([2, 1, 3])
  })

  it("calls a failed deferred op's hook", () => {
    const { writer, db, errors } = setup()
    let failed = 0
    writer.deferred(
      () => db.exec('SELECT * FROM no_such_table'),
      undefined,
      () => failed++,
    )
    writer.flush()
    expect(failed).toBe(1)
    expect(errors).toHaveLength(1)
  })
})

describe('SqliteWriter failures that are not one op', () => {
  it('fails the whole batch without retrying each op', async () => {
    const { writer, insert, db, rows } = setup()
    let runs = 0
    const a = writer.commit(() => {
      runs++
      insert.run(1)
    })
    const b = writer.commit(() => {
      db.exec('SELECT * FROM no_such_table')
    })
    await expect(a).rejects.toThrow(/no such table/)
    await expect(b).rejects.toThrow(/no such table/)
    expect(runs).toBe(1)
    expect(rows()).toEqual([])
  })
})
