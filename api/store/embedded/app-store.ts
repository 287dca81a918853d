import type { AppStore } from '../../core/apps/app-store.js'
import type { App, AppId } from '../../core/model.js'
import type { Db } from './database.js'
import type { SqliteWriter } from './writer.js'

interface AppRow {
  id: string
  name: string
  app_key: string
  app_secret: string
  created_at: number
}

const toApp = (r: AppRow): App => ({
  id: r.id as AppId,
  name: r.name,
  key: r.app_key,
  secret: r.app_secret,
  createdAt: r.created_at,
})

export class EmbeddedAppStore implements AppStore {
  readonly #w: SqliteWriter
  readonly #insert
  readonly #get
  readonly #bySecret
  readonly #list

  constructor(db: Db, writer: SqliteWriter) {
    this.#w = writer
    this.#insert = db.prepare(
      'INSERT INTO apps (id, name, app_key, app_secret, secret_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)',
    )
    this.#get = db.prepare<[string], AppRow>('SELECT * FROM apps WHERE id = ?')
    this.#bySecret = db.prepare<[string], AppRow>('SELECT * FROM apps WHERE secret_hash = ?')
    this.#list = db.prepare<[], AppRow>('SELECT * FROM apps ORDER BY created_at, id')
  }

  insertApp(app: App, secretHash: string): Promise<void> {
    return this.#w.commit(() => {
      this.#insert.run(app.id, app.name, app.key, app.secret, secretHash, app.createdAt)
    })
  }

  async getApp(id: AppId): Promise<App | undefined> {
    const row = this.#get.get(id)
    return row && toApp(row)
  }

  async findAppBySecretHash(secretHash: string): Promise<App | undefined> {
    const row = this.#bySecret.get(secretHash)
    return row && toApp(row)
  }

  async listApps(): Promise<App[]> {
    return this.#list.all().map(toApp)
  }
}
