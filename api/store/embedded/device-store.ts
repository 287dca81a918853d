import type { DeviceAttributes } from '../../../sdk/protocol/schemas.js'
import { type DeviceStore, LAST_SEEN_RESOLUTION_MS } from '../../core/devices/device-store.js'
import type { AppId, Device, InvalidReason, RegId } from '../../core/model.js'
import type { Db } from './database.js'
import { RecentMap } from './recent-map.js'
import type { SqliteWriter } from './writer.js'

interface DeviceRow {
  reg_id: string
  app_id: string
  token_hash: string
  installation_id: string | null
  attributes: string
  registered_at: number
  last_seen_at: number | null
  invalidated_at: number | null
  invalid_reason: string | null
  seq: number
}

const toDevice = (r: DeviceRow): Device => ({
  regId: r.reg_id as RegId,
  appId: r.app_id as AppId,
  tokenHash: r.token_hash,
  installationId: r.installation_id ?? undefined,
  attributes: JSON.parse(r.attributes) as DeviceAttributes,
  registeredAt: r.registered_at,
  lastSeenAt: r.last_seen_at ?? undefined,
  invalidatedAt: r.invalidated_at ?? undefined,
  invalidReason: (r.invalid_reason as InvalidReason | null) ?? undefined,
})

/**
 * How many regIds the store remembers the state of (app, token hash and number, active or not)
 * for the push path, the devices' connects and their receipts: at least this many of the latest
 * used, at most twice as many (`RecentMap`'s two generations).
 */
export const ACTIVE_CACHE_SIZE = 200_000

/** What the cache keeps of an active device: its app, its token's hash and its number. */
interface Active {
  appId: string
  tokenHash: string
  /** The device's own number (its row's `seq`): what its receipts are keyed by. */
  seq: number
}

export class EmbeddedDeviceStore implements DeviceStore {
  readonly #w: SqliteWriter
  readonly #s
  /**
   * regId → its app and token hash while active, null when invalidated or unknown. Every write
   * of a device's state goes through this store (and a token never changes), so the cache is
   * kept exact: entered when the write runs, in the writer's order (and dropped if its commit
   * fails); an invalidation also at once (no push reaches a device being invalidated). A
   * unicast push then costs no database read for its target (a point read under load was ~15 %
   * of a push's CPU), nor a device's connect for its credentials (~4 % of a reconnect's CPU in
   * the offline drain). The least recently used go first (`RecentMap`): ~200 bytes each,
   * ~40–80 MB once ACTIVE_CACHE_SIZE devices have been used.
   */
  readonly #active = new RecentMap<string, Active | null>(ACTIVE_CACHE_SIZE)
  /**
   * Active devices per app, once counted: a broadcast's `planned` without a count over the
   * app's devices (41 ms at a million). Kept by the ops that change it, after they ran once
   * (an op run again in the writer's retry does not count twice); forgotten when a write fails,
   * so the next answer counts again.
   */
  readonly #activeCounts = new Map<string, number>()
  /** The last device number given (counting on from the largest at the start). */
  #lastSeq: number

  constructor(db: Db, writer: SqliteWriter) {
    this.#w = writer
    this.#lastSeq = (
      db.prepare('SELECT coalesce(max(seq), 0) AS n FROM devices').get() as { n: number }
    ).n
    this.#s = {
      insert: db.prepare(
        `INSERT INTO devices (reg_id, app_id, token_hash, installation_id, attributes, registered_at, last_seen_at, seq)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      seq: db.prepare<[string], { seq: number }>('SELECT seq FROM devices WHERE reg_id = ?'),
      get: db.prepare<[string], DeviceRow>('SELECT * FROM devices WHERE reg_id = ?'),
      // one statement for any number of ids: the list travels as one JSON parameter
      activeIn: db.prepare<[string, string], DeviceRow>(
        `SELECT * FROM devices WHERE app_id = ? AND invalidated_at IS NULL
         AND reg_id IN (SELECT value FROM json_each(?))`,
      ),
      activeIdsIn: db.prepare<[string, string], { reg_id: string }>(
        `SELECT reg_id FROM devices WHERE app_id = ? AND invalidated_at IS NULL
         AND reg_id IN (SELECT value FROM json_each(?))`,
      ),
      setAttributes: db.prepare('UPDATE devices SET attributes = ? WHERE reg_id = ?'),
      setInstallation: db.prepare('UPDATE devices SET installation_id = ? WHERE reg_id = ?'),
      // written only when it moves by more than LAST_SEEN_RESOLUTION_MS: a device that connects
      // and disconnects often (a reconnecting queue, a mobile network) does not rewrite its row
      // and its place in devices_seen each time, pages that every commit then writes again
      touch: db.prepare(
        'UPDATE devices SET last_seen_at = ? WHERE reg_id = ? AND (last_seen_at IS NULL OR last_seen_at < ?)',
      ),
      byInstallation: db.prepare<[string, string], { reg_id: string }>(
        `SELECT reg_id FROM devices
         WHERE app_id = ? AND installation_id = ? AND invalidated_at IS NULL`,
      ),
      invalidate: db.prepare<[number, string, string], { app_id: string }>(
        `UPDATE devices SET invalidated_at = ?, invalid_reason = ?
         WHERE reg_id = ? AND invalidated_at IS NULL RETURNING app_id`,
      ),
      countActive: db.prepare<[string], { n: number }>(
        'SELECT count(*) AS n FROM devices WHERE app_id = ? AND invalidated_at IS NULL',
      ),
      inactive: db.prepare<[number, number], { reg_id: string }>(
        `SELECT reg_id FROM devices
         WHERE invalidated_at IS NULL AND coalesce(last_seen_at, registered_at) < ?
         ORDER BY coalesce(last_seen_at, registered_at) LIMIT ?`,
      ),
      invalidated: db.prepare<
        [string, number, number],
        { reg_id: string; invalidated_at: number; invalid_reason: string }
      >(
        `SELECT reg_id, invalidated_at, invalid_reason FROM devices
         WHERE app_id = ? AND invalidated_at IS NOT NULL AND invalidated_at >= ?
         ORDER BY invalidated_at, reg_id LIMIT ?`,
      ),
    }
  }

  async insertDevice(d: Device): Promise<void> {
    let counted = false
    // numbered when queued: the op run again (the writer's retry) writes the same number
    const seq = ++this.#lastSeq
    try {
      await this.#w.commit(() => {
        this.#s.insert.run(
          d.regId,
          d.appId,
          d.tokenHash,
          d.installationId ?? null,
          JSON.stringify(d.attributes),
          d.registeredAt,
          d.lastSeenAt ?? null,
          seq,
        )
        // in the writer's order: a later invalidation of the same regId comes after this
        this.#remember(d.regId, { appId: d.appId, tokenHash: d.tokenHash, seq })
        if (!counted) this.#countActive(d.appId, +1)
        counted = true
      })
    } catch (err) {
      this.#active.delete(d.regId) // not written: the database decides again
      if (counted) this.#activeCounts.delete(d.appId)
      throw err
    }
  }

  #countActive(appId: string, delta: number): void {
    const n = this.#activeCounts.get(appId)
    if (n !== undefined) this.#activeCounts.set(appId, n + delta)
  }

  #remember(regId: string, active: Active | null): void {
    this.#active.set(regId, active)
  }

  /**
   * An active device's app and token hash, null if it is not active (or not known), cached.
   * `rememberMisses` false: a regId that is not active is not entered (the connect path, where
   * anyone may send any regId: misses would push real devices out of the cache).
   */
  #activeEntry(regId: string, rememberMisses = true): Active | null {
    const cached = this.#active.get(regId)
    if (cached !== undefined) return cached
    const row = this.#s.get.get(regId)
    const active =
      row && row.invalidated_at === null
        ? { appId: row.app_id, tokenHash: row.token_hash, seq: row.seq }
        : null
    if (active || rememberMisses) this.#remember(regId, active)
    return active
  }

  /**
   * The device's number (its receipts' key), undefined for a regId without a row: from the
   * cache of active devices (a device acknowledging a message connected, so it is cached, or is
   * entered now), else read. Not part of the port: the embedded message store's.
   */
  seqOf(regId: string): number | undefined {
    // an active device's number is cached with the rest (and read with it when it is not)
    const active = this.#activeEntry(regId, false)
    if (active) return active.seq
    return this.#s.seq.get(regId)?.seq
  }

  async activeCredentials(regId: RegId): Promise<{ appId: AppId; tokenHash: string } | undefined> {
    const active = this.#activeEntry(regId, false)
    return active ? { appId: active.appId as AppId, tokenHash: active.tokenHash } : undefined
  }

  async getDevice(regId: RegId): Promise<Device | undefined> {
    const row = this.#s.get.get(regId)
    return row && toDevice(row)
  }

  async getActiveDevices(appId: AppId, regIds: readonly RegId[]): Promise<Device[]> {
    if (regIds.length === 1) {
      const row = this.#s.get.get(regIds[0] as string)
      return row && row.app_id === appId && row.invalidated_at === null ? [toDevice(row)] : []
    }
    return this.#s.activeIn.all(appId, JSON.stringify(regIds)).map(toDevice)
  }

  async filterActive(appId: AppId, regIds: readonly RegId[]): Promise<RegId[]> {
    if (regIds.length <= 16) return regIds.filter((r) => this.#activeEntry(r)?.appId === appId)
    return this.#s.activeIdsIn.all(appId, JSON.stringify(regIds)).map((r) => r.reg_id as RegId)
  }

  updateDevice(
    regId: RegId,
    patch: { attributes?: DeviceAttributes; installationId?: string },
  ): Promise<void> {
    return this.#w.commit(() => {
      if (patch.attributes) this.#s.setAttributes.run(JSON.stringify(patch.attributes), regId)
      if (patch.installationId !== undefined)
        this.#s.setInstallation.run(patch.installationId, regId)
    })
  }

  touchDevice(regId: RegId, at: number): void {
    this.#w.later(() => {
      this.#s.touch.run(at, regId, at - LAST_SEEN_RESOLUTION_MS)
    })
  }

  async findByInstallation(appId: AppId, installationId: string): Promise<RegId[]> {
    return this.#s.byInstallation.all(appId, installationId).map((r) => r.reg_id as RegId)
  }

  async invalidateDevice(regId: RegId, reason: InvalidReason, at: number): Promise<void> {
    this.#remember(regId, null)
    let counted: string | undefined
    try {
      await this.#w.commit(() => {
        const row = this.#s.invalidate.get(at, reason, regId)
        this.#remember(regId, null)
        if (row && counted === undefined) {
          this.#countActive(row.app_id, -1)
          counted = row.app_id
        }
      })
    } catch (err) {
      this.#active.delete(regId) // the database decides again
      if (counted !== undefined) this.#activeCounts.delete(counted)
      throw err
    }
  }

  async countActiveDevices(appId: AppId): Promise<number> {
    let n = this.#activeCounts.get(appId)
    if (n === undefined) {
      n = this.#s.countActive.get(appId)?.n ?? 0
      this.#activeCounts.set(appId, n)
    }
    return n
  }

  async findInactive(before: number, limit: number): Promise<RegId[]> {
    return this.#s.inactive.all(before, limit).map((r) => r.reg_id as RegId)
  }

  async listInvalidated(appId: AppId, since: number, limit: number) {
    return this.#s.invalidated.all(appId, since, limit).map((r) => ({
      regId: r.reg_id as RegId,
      at: r.invalidated_at,
      reason: r.invalid_reason as InvalidReason,
    }))
  }
}
