import { mkdirSync, renameSync, rmSync, statfsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { EmbeddedAliasStore } from './alias-store.js'
import { EmbeddedAppStore } from './app-store.js'
import { EmbeddedBrokerPersistence } from './broker-persistence.js'
import { Checkpointer } from './checkpointer.js'
import { DATABASE_FILE, lockDataDir, openDatabase } from './database.js'
import { EmbeddedDeviceStore } from './device-store.js'
import { EmbeddedMessageStore } from './message-store.js'
import { EmbeddedTopicStore } from './topic-store.js'
import { SqliteWriter } from './writer.js'

/** A backup was refused: the disk has not room for the copy. */
export class BackupSpaceError extends Error {
  constructor(
    readonly freeBytes: number,
    readonly neededBytes: number,
  ) {
    super(`not enough free space for a backup: ${freeBytes} bytes free, ${neededBytes} needed`)
    this.name = 'BackupSpaceError'
  }
}

export interface EmbeddedStoreOptions {
  /** Directory of the database, or `:memory:`. */
  dataDir: string
  synchronous?: 'normal' | 'full'
  /** Where failures of write-behind operations are reported. */
  onWriteError: (err: unknown) => void
}

/**
 * The embedded store: every storage port on one SQLite database and one group-committing
 * writer, so a receipt and the queue entry it clears commit together.
 */
export function openEmbeddedStore(options: EmbeddedStoreOptions) {
  const onDisk = options.dataDir !== ':memory:'
  const lock = onDisk ? lockDataDir(options.dataDir) : undefined
  let db: ReturnType<typeof openDatabase> | undefined
  let writer: SqliteWriter
  let checkpointer: Checkpointer | undefined
  try {
    db = openDatabase({
      dataDir: options.dataDir,
      ...(options.synchronous && { synchronous: options.synchronous }),
    })
    writer = new SqliteWriter(db, options.onWriteError)
    if (onDisk) {
      const file = join(options.dataDir, DATABASE_FILE)
      checkpointer = new Checkpointer(db, file, writer, options.onWriteError)
    }
  } catch (err) {
    db?.close()
    lock?.close()
    throw err
  }
  let running: Promise<{ file: string; bytes: number }> | undefined
  const devices = new EmbeddedDeviceStore(db, writer)
  return {
    db,
    writer,
    apps: new EmbeddedAppStore(db, writer),
    devices,
    aliases: new EmbeddedAliasStore(db, writer),
    topics: new EmbeddedTopicStore(db, writer),
    messages: new EmbeddedMessageStore(db, writer, (regId) => devices.seqOf(regId)),
    brokerPersistence: new EmbeddedBrokerPersistence(db, writer),
    /**
     * A consistent copy of the database while serving (SQLite's online backup, in steps
     * between other work), as `mqpush-<UTC time>.db` in `dir`: the way to copy it without
     * stopping. One at a time: a call while one runs gets that one's result. The copy is
     * written under a temporary name and renamed when complete; refused (`BackupSpaceError`)
     * when the disk has not room for it.
     */
    backup(dir: string, now: number): Promise<{ file: string; bytes: number }> {
      running ??= (async () => {
        mkdirSync(dir, { recursive: true })
        const size =
          (db.pragma('page_count', { simple: true }) as number) *
          (db.pragma('page_size', { simple: true }) as number)
        const fs = statfsSync(dir)
        const free = fs.bavail * fs.bsize
        const needed = Math.ceil(size * 1.1) + 16 * 2 ** 20
        if (free < needed) throw new BackupSpaceError(free, needed)
        const stamp = new Date(now).toISOString().replace(/[-:]/g, '').replace('.', '')
        const file = join(dir, `mqpush-${stamp}.db`)
        const partial = `${file}.partial`
        try {
          await db.backup(partial)
          renameSync(partial, file)
        } catch (err) {
          rmSync(partial, { force: true })
          throw err
        }
        return { file, bytes: statSync(file).size }
      })().finally(() => {
        running = undefined
      })
      return running
    },
    /** Commits what is queued and closes the database. */
    async close(): Promise<void> {
      writer.close()
      await checkpointer?.stop()
      db.close()
      lock?.close()
    },
  }
}

export type EmbeddedStore = ReturnType<typeof openEmbeddedStore>
