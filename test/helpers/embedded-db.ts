import Database from 'better-sqlite3'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DATABASE_FILE } from '../../api/store/embedded/database.js'
import { MIGRATIONS } from '../../api/store/embedded/schema.sql.js'

/**
 * A data directory whose database stands at schema `version` (the migrations up to it applied,
 * as an older mqpush left it), open for the test to fill in; `dirs` gets the directory, for the
 * test to remove.
 */
export function databaseOfSchema(version: number, dirs: string[]) {
  const dir = mkdtempSync(join(tmpdir(), `mqpush-schema${version}-`))
  dirs.push(dir)
  const old = new Database(join(dir, DATABASE_FILE))
  for (const m of MIGRATIONS.slice(0, version)) old.exec(m)
  old.pragma(`user_version = ${version}`)
  return { dir, old }
}
