import { mkdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { EmbeddedAliasStore } from './alias-store.js'
import { EmbeddedAppStore } from './app-store.js'
import { EmbeddedBrokerPersistence } from './broker-persistence.js'
import { openDatabase } from './database.js'
import { EmbeddedDeviceStore } from './device-store.js'
import { EmbeddedMessageStore } from './message-store.js'
import { EmbeddedTopicStore } from './topic-store.js'
import { SqliteWriter } from './writer.js'

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
  const db = openDatabase({
    dataDir: options.dataDir,
    ...(options.synchronous && { synchronous: options.synchronous }),
  })
  const writer = new SqliteWriter(db, options.onWriteError)
  return {
    db,
    writer,
    apps: new EmbeddedAppStore(db, writer),
    devices: new EmbeddedDeviceStore(db, writer),
    aliases: new EmbeddedAliasStore(db, writer),
    topics: new EmbeddedTopicStore(db, writer),
    messages: new EmbeddedMessageStore(db, writer),
    brokerPersistence: new EmbeddedBrokerPersistence(db, writer),
    /**
     * A consistent copy of the database while serving (SQLite's online backup, in steps
     * between other work), as `mqpush-<UTC time>.db` in `dir`. The running service holds the
     * database file locked, so this is the way to copy it without stopping.
     */
    async backup(dir: string, now: number): Promise<{ file: string; bytes: number }> {
      mkdirSync(dir, { recursive: true })
      const stamp = new Date(now)
        .toISOString()
        .replace(/[-:]/g, '')
        .replace(/\.\d+Z$/, 'Z')
      const file = join(dir, `mqpush-${stamp}.db`)
      await db.backup(file)
      return { file, bytes: statSync(file).size }
    },
    /** Commits what is queued and closes the database. */
    async close(): Promise<void> {
      writer.close()
      db.close()
    },
  }
}

export type EmbeddedStore = ReturnType<typeof openEmbeddedStore>
