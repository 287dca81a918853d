import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { MIGRATIONS } from './schema.sql.js'

export type Db = Database.Database

export interface OpenDatabaseOptions {
  /** Directory of the database file; `:memory:` for a throwaway database (tests). */
  dataDir: string
  synchronous?: 'normal' | 'full'
}

export const DATABASE_FILE = 'mqpush.db'

/**
 * Opens (and migrates) the embedded SQLite database.
 * WAL with synchronous=NORMAL: a commit is in the OS once the transaction ends, so a crash or
 * kill -9 of the process loses nothing committed; FULL adds an fsync per commit for power loss.
 */
export function openDatabase(options: OpenDatabaseOptions): Db {
  let file = ':memory:'
  if (options.dataDir !== ':memory:') {
    mkdirSync(options.dataDir, { recursive: true })
    file = join(options.dataDir, DATABASE_FILE)
  }
  const db = new Database(file, { timeout: 5000 })
  try {
    db.pragma('journal_mode = WAL')
    db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`)
    db.pragma('foreign_keys = ON')
    // 64 MB page cache: the working set of a single node fits; the OS caches the rest
    db.pragma('cache_size = -65536')
    db.pragma('temp_store = MEMORY')
    migrate(db)
  } catch (err) {
    db.close()
    throw err
  }
  return db
}

export const LOCK_FILE = 'mqpush.lock'

/**
 * Takes the data directory's lock, so that a second service on it fails to start: an exclusive
 * lock on a small SQLite file of its own, held until the returned connection closes or the
 * process ends (the operating system's lock: it goes with the process, kill -9 included). The
 * database itself stays open to other connections — the checkpoint thread's, `sqlite3` for a
 * look.
 */
export function lockDataDir(dataDir: string): Db {
  mkdirSync(dataDir, { recursive: true })
  const lock = new Database(join(dataDir, LOCK_FILE), { timeout: 0 })
  try {
    lock.pragma('journal_mode = MEMORY') // nothing is ever written: no journal file beside it
    lock.pragma('locking_mode = EXCLUSIVE')
    lock.exec('BEGIN EXCLUSIVE; COMMIT')
  } catch (err) {
    lock.close()
    if ((err as { code?: string }).code?.startsWith('SQLITE_BUSY')) {
      throw new Error(
        `the database in ${dataDir} is in use by another process (one mqpush per data directory)`,
        { cause: err },
      )
    }
    throw err
  }
  return lock
}

function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number
  if (current > MIGRATIONS.length) {
    throw new Error(
      `the database was written by a newer mqpush (schema ${current}, this one knows ${MIGRATIONS.length})`,
    )
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v] as string)
      db.pragma(`user_version = ${v + 1}`)
    })()
  }
}
