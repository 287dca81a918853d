import type { AliasStore } from '../../core/devices/device-store.js'
import type { AppId, RegId } from '../../core/model.js'
import type { Db } from './database.js'
import type { SqliteWriter } from './writer.js'

export class EmbeddedAliasStore implements AliasStore {
  readonly #w: SqliteWriter
  readonly #s
  #seq: number

  constructor(db: Db, writer: SqliteWriter) {
    this.#w = writer
    this.#s = {
      setAlias: db.prepare(
        `INSERT INTO aliases (app_id, alias, reg_id, set_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (app_id, alias) DO UPDATE SET reg_id = excluded.reg_id, set_at = excluded.set_at`,
      ),
      unsetAlias: db.prepare('DELETE FROM aliases WHERE app_id = ? AND alias = ? AND reg_id = ?'),
      resolveAliases: db.prepare<[string, string], { alias: string; reg_id: string }>(
        `SELECT alias, reg_id FROM aliases
         WHERE app_id = ? AND alias IN (SELECT value FROM json_each(?))`,
      ),
      aliasesOf: db.prepare<[string], { alias: string }>(
        'SELECT alias FROM aliases WHERE reg_id = ?',
      ),
      addAccount: db.prepare(
        `INSERT INTO user_accounts (app_id, account, reg_id, set_at, seq) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (app_id, account, reg_id) DO UPDATE SET set_at = excluded.set_at, seq = excluded.seq`,
      ),
      // the newest `max` stay; order by set time, then by insertion for equal times
      overflow: db.prepare<[string, string, number], { reg_id: string }>(
        `SELECT reg_id FROM user_accounts WHERE app_id = ? AND account = ?
         ORDER BY set_at DESC, seq DESC LIMIT -1 OFFSET ?`,
      ),
      removeAccount: db.prepare(
        'DELETE FROM user_accounts WHERE app_id = ? AND account = ? AND reg_id = ?',
      ),
      resolveAccounts: db.prepare<[string, string], { account: string; reg_id: string }>(
        `SELECT account, reg_id FROM user_accounts
         WHERE app_id = ? AND account IN (SELECT value FROM json_each(?))
         ORDER BY set_at, seq`,
      ),
      accountsOf: db.prepare<[string], { account: string }>(
        'SELECT account FROM user_accounts WHERE reg_id = ?',
      ),
      removeAliasesOf: db.prepare('DELETE FROM aliases WHERE reg_id = ?'),
      removeAccountsOf: db.prepare('DELETE FROM user_accounts WHERE reg_id = ?'),
      maxSeq: db.prepare<[], { s: number | null }>('SELECT max(seq) AS s FROM user_accounts'),
    }
    this.#seq = this.#s.maxSeq.get()?.s ?? 0
  }

  setAlias(appId: AppId, alias: string, regId: RegId, at: number): Promise<void> {
    return this.#w.commit(() => {
      this.#s.setAlias.run(appId, alias, regId, at)
    })
  }

  async unsetAlias(appId: AppId, alias: string, regId: RegId): Promise<boolean> {
    let removed = false
    await this.#w.commit(() => {
      removed = this.#s.unsetAlias.run(appId, alias, regId).changes > 0
    })
    return removed
  }

  async resolveAliases(appId: AppId, aliases: readonly string[]): Promise<Map<string, RegId>> {
    const rows = this.#s.resolveAliases.all(appId, JSON.stringify(aliases))
    return new Map(rows.map((r) => [r.alias, r.reg_id as RegId]))
  }

  async aliasesOf(regId: RegId): Promise<string[]> {
    return this.#s.aliasesOf.all(regId).map((r) => r.alias)
  }

  async addUserAccount(
    appId: AppId,
    account: string,
    regId: RegId,
    at: number,
    maxDevices: number,
  ): Promise<RegId[]> {
    const evicted: RegId[] = []
    const seq = ++this.#seq
    await this.#w.commit(() => {
      evicted.length = 0
      this.#s.addAccount.run(appId, account, regId, at, seq)
      for (const r of this.#s.overflow.all(appId, account, maxDevices)) {
        this.#s.removeAccount.run(appId, account, r.reg_id)
        evicted.push(r.reg_id as RegId)
      }
    })
    return evicted
  }

  async removeUserAccount(appId: AppId, account: string, regId: RegId): Promise<boolean> {
    let removed = false
    await this.#w.commit(() => {
      removed = this.#s.removeAccount.run(appId, account, regId).changes > 0
    })
    return removed
  }

  async resolveUserAccounts(
    appId: AppId,
    accounts: readonly string[],
  ): Promise<Map<string, RegId[]>> {
    const out = new Map<string, RegId[]>()
    for (const r of this.#s.resolveAccounts.all(appId, JSON.stringify(accounts))) {
      let list = out.get(r.account)
      if (!list) out.set(r.account, (list = []))
      list.push(r.reg_id as RegId)
    }
    return out
  }

  async userAccountsOf(regId: RegId): Promise<string[]> {
    return this.#s.accountsOf.all(regId).map((r) => r.account)
  }

  removeAllOf(regId: RegId): Promise<void> {
    return this.#w.commit(() => {
      this.#s.removeAliasesOf.run(regId)
      this.#s.removeAccountsOf.run(regId)
    })
  }
}
