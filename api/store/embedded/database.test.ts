import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { DATABASE_FILE, openDatabase } from './database.js'
import { MIGRATIONS } from './schema.sql.js'

describe('openDatabase', () => {
  it('migrates a database of an older schema and refuses a newer one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mqpush-db-'))
    try {
      // a database as the first release left it
      const old = new Database(join(dir, DATABASE_FILE))
      old.exec(MIGRATIONS[0] as string)
      old.pragma('user_version = 1')
      old
        .prepare(
          'INSERT INTO broker_outgoing (client_id, seq, packet_id, message_id, cmd) VALUES (?, ?, ?, ?, ?)',
        )
        .run('c1', 7, 3, null, null)
      old.close()
      const db = openDatabase({ dataDir: dir })
      expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length)
      const indexes = (
        db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index'`).all() as Array<{
          name: string
        }>
      ).map((r) => r.name)
      expect(indexes).not.toContain('broker_outgoing_packet')
      expect(indexes).toContain('devices_active')
      expect(indexes).not.toContain('messages_created')
      // schema 10: messages keyed by their number, no index of the accepted ones
      expect(indexes).not.toContain('messages_accepted')
      expect(indexes).not.toContain('messages_seq')
      expect(db.prepare(`SELECT name, value FROM store_marks`).all()).toEqual([
        { name: 'messages_dispatched_through', value: 0 },
      ])
      // queued entries survive the change of the queue table's key
      expect(db.prepare('SELECT seq, client_id, packet_id FROM broker_outgoing').all()).toEqual([
        { seq: 7, client_id: 'c1', packet_id: 3 },
      ])
      db.pragma(`user_version = ${MIGRATIONS.length + 1}`)
      db.close()
      expect(() => openDatabase({ dataDir: dir })).toThrow(/newer mqpush/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
