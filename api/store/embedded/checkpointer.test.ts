import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { Checkpointer } from './checkpointer.js'
import { DATABASE_FILE, openDatabase } from './database.js'
import { openEmbeddedStore } from './index.js'
import { SqliteWriter } from './writer.js'

const dirs: string[] = []
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'mqpush-ckpt-'))
  dirs.push(dir)
  return dir
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

const until = async (what: string, f: () => boolean, ms = 5000) => {
  const end = Date.now() + ms
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe('the embedded store on disk', () => {
  it('checkpoints the write-ahead log in its own thread, never inside a commit', async () => {
    const dir = tempDir()
    const errors: unknown[] = []
    const store = openEmbeddedStore({ dataDir: dir, onWriteError: (e) => errors.push(e) })
    try {
      // the main connection never checkpoints by itself
      expect(store.db.pragma('wal_autocheckpoint', { simple: true })).toBe(0)
      store.db.exec('CREATE TABLE filler (x BLOB)')
      const file = join(dir, DATABASE_FILE)
      const before = statSync(file).size
      const insert = store.db.prepare('INSERT INTO filler VALUES (?)')
      // ~4 MB through the log: without a checkpoint the database file would not grow at all
      for (let i = 0; i < 40; i++) {
        await store.writer.commit(() => {
          for (let k = 0; k < 25; k++) insert.run(Buffer.alloc(4000, i))
        })
      }
      await until('the checkpoint thread', () => statSync(file).size > before + 3_000_000)
      expect(errors).toEqual([])
    } finally {
      await store.close()
    }
    // closed cleanly: the thread's connection is gone too, the data is all there
    const db = new Database(join(dir, DATABASE_FILE), { readonly: true })
    expect(db.prepare('SELECT count(*) AS n FROM filler').get()).toEqual({ n: 1000 })
    db.close()
  })

  it('refuses a second store on the same data directory until the first is closed', async () => {
    const dir = tempDir()
    const first = openEmbeddedStore({ dataDir: dir, onWriteError: () => {} })
    // the lock leaves no journal file beside it
    expect(readdirSync(dir).filter((f) => f.startsWith('mqpush.lock'))).toEqual(['mqpush.lock'])
    expect(() => openEmbeddedStore({ dataDir: dir, onWriteError: () => {} })).toThrow(
      /in use by another process/,
    )
    // the database itself stays readable to other connections (sqlite3 for a look)
    const peek = new Database(join(dir, DATABASE_FILE), { readonly: true })
    expect(peek.pragma('journal_mode', { simple: true })).toBe('wal')
    peek.close()
    await first.close()
    const second = openEmbeddedStore({ dataDir: dir, onWriteError: () => {} })
    await second.close()
  })
})

describe('Checkpointer', () => {
  const setup = (restartPages: number) => {
    const dir = tempDir()
    const db = openDatabase({ dataDir: dir })
    const errors: unknown[] = []
    const writer = new SqliteWriter(db, (e) => errors.push(e))
    const file = join(dir, DATABASE_FILE)
    let pauses = 0
    const counted = {
      pause: () => {
        pauses++
        writer.pause()
      },
      resume: () => writer.resume(),
    }
    const cp = new Checkpointer(db, file, counted, (e) => errors.push(e), { restartPages })
    db.exec('CREATE TABLE filler (x BLOB)')
    const insert = db.prepare('INSERT INTO filler VALUES (?)')
    /** n commits of ten 4 KB rows, a short pause after every tenth */
    const writeMany = async (n: number) => {
      for (let i = 0; i < n; i++) {
        await writer.commit(() => {
          for (let k = 0; k < 10; k++) insert.run(Buffer.alloc(4000, i))
        })
        if (i % 10 === 9) await new Promise((r) => setTimeout(r, 10))
      }
    }
    const close = async () => {
      writer.close()
      await cp.stop()
      db.close()
    }
    const rows = () => db.prepare('SELECT count(*) AS n FROM filler').get()
    /** How often the writer was paused while nothing more was written for `ms`. */
    const pausesWhileIdle = async (ms: number) => {
      const before = pauses
      await new Promise((r) => setTimeout(r, ms))
      return pauses - before
    }
    return { file, errors, writeMany, close, rows, pausesWhileIdle, pauses: () => pauses }
  }

  it('starts the log again under writes without a pause, so it stays bounded', async () => {
    const s = setup(200)
    try {
      // ~24 MB of rows through the log, commit after commit: passive checkpoints alone never
      // let SQLite reuse it, the log would hold all of it (31 MB, measured with restarts off).
      // It was started again several times (4–6 here); how long it grew in between depends on
      // how soon the machine runs the checkpoint thread (6–10 MB here, idle or with three busy
      // processes beside it), so the bound on its size is only well below the unbounded log
      await s.writeMany(600)
      expect(s.pauses()).toBeGreaterThanOrEqual(2)
      expect(statSync(`${s.file}-wal`).size).toBeLessThan(20_000_000)
      expect(s.errors).toEqual([])
      expect(s.rows()).toEqual({ n: 6000 })
      // idle after the burst: one restart at most, not a pause of the writer every 100 ms
      expect(await s.pausesWhileIdle(1000)).toBeLessThanOrEqual(1)
    } finally {
      await s.close()
    }
  })

  it('loses no commit while another connection holds a read transaction open', async () => {
    const s = setup(100)
    const reader = new Database(s.file, { readonly: true })
    try {
      reader.exec('BEGIN')
      reader.prepare('SELECT count(*) FROM filler').get()
      // the log cannot start again while the reader keeps its snapshot: the restart gives up
      // after a short wait instead of holding the write lock (commits would fail "locked")
      await s.writeMany(150)
      expect(s.errors).toEqual([])
      expect(s.rows()).toEqual({ n: 1500 })
      // a restart that gave up is retried after a growing wait, not every 100 ms
      expect(await s.pausesWhileIdle(1500)).toBeLessThanOrEqual(2)
    } finally {
      reader.exec('COMMIT')
      reader.close()
      await s.close()
    }
  })
})
