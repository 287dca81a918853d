import { ErrorCode } from '../../../sdk/protocol/error-codes.js'
import { isoTime } from '../time.js'
import { isRegId } from '../../../sdk/protocol/ids.js'
import { MAX_DEVICES_PER_USER_ACCOUNT } from '../../../sdk/protocol/limits.js'
import type { DeviceInfo } from '../../../sdk/protocol/responses.js'
import type { DeviceAttributes, TopicMembersRequest } from '../../../sdk/protocol/schemas.js'
import type { Clock } from '../clock.js'
import { ApiError } from '../errors.js'
import { newRegId, newSecret, safeEqual, sha256 } from '../ids.js'
import type { Logger } from '../logger.js'
import type { SessionManager } from '../messages/dispatcher.js'
import type { App, AppId, Device, InvalidReason, RegId } from '../model.js'
import type { AliasStore, DeviceStore, TopicStore } from './device-store.js'

export interface DeviceServiceDeps {
  devices: DeviceStore
  aliases: AliasStore
  topics: TopicStore
  sessions: SessionManager
  clock: Clock
  log: Logger
}

export interface Registration {
  app: App
  regId: RegId
  token: string
  renewed: boolean
}

/** A registration of a device of an app whose key was checked (AppService.authenticateKey). */
export interface RegisterInput {
  regId?: string | undefined
  token?: string | undefined
  installationId?: string | undefined
  attributes: DeviceAttributes
}

/** Devices: registration (§4.2.2), aliases and userAccounts (§4.2.3), topics (§4.2.1). */
export class DeviceService {
  readonly #d: DeviceServiceDeps

  constructor(deps: DeviceServiceDeps) {
    this.#d = deps
  }

  /**
   * Registers a device. With its cached regId and token it keeps the regId; otherwise it gets a
   * new one, and a previous regId of the same installation becomes invalid (a reinstall).
   */
  async register(app: App, input: RegisterInput): Promise<Registration> {
    const { devices, sessions, clock } = this.#d
    if (input.regId !== undefined && input.token !== undefined && isRegId(input.regId)) {
      const existing = await devices.getDevice(input.regId)
      if (
        existing &&
        existing.appId === app.id &&
        existing.invalidatedAt === undefined &&
        safeEqual(existing.tokenHash, sha256(input.token))
      ) {
        await devices.updateDevice(existing.regId, {
          attributes: input.attributes,
          ...(input.installationId !== undefined && { installationId: input.installationId }),
        })
        // idempotent; repairs a session if one was ever lost
        await sessions.openSession(app.id, existing.regId)
        return { app, regId: existing.regId, token: input.token, renewed: true }
      }
    }
    const now = clock.now()
    if (input.installationId !== undefined) {
      const previous = await devices.findByInstallation(app.id, input.installationId)
      for (const regId of previous) await this.invalidate(regId, 'reinstalled', now)
    }
    const regId = newRegId()
    const token = newSecret()
    await devices.insertDevice({
      regId,
      appId: app.id,
      tokenHash: sha256(token),
      installationId: input.installationId,
      attributes: input.attributes,
      registeredAt: now,
      lastSeenAt: undefined,
      invalidatedAt: undefined,
      invalidReason: undefined,
    })
    await sessions.openSession(app.id, regId)
    return { app, regId, token, renewed: false }
  }

  /** The valid device with this regId and token; 40104 otherwise. */
  async authenticate(regId: string, token: string, appId?: AppId): Promise<Device> {
    const device = await this.findAuthenticated(regId, token, appId)
    if (!device) throw new ApiError(ErrorCode.INVALID_DEVICE_TOKEN)
    return device
  }

  /** Like authenticate, without throwing. */
  async findAuthenticated(
    regId: string,
    token: string,
    appId?: AppId,
  ): Promise<Device | undefined> {
    const device = await this.findByToken(regId, token)
    if (!device || device.invalidatedAt !== undefined) return undefined
    if (appId !== undefined && device.appId !== appId) return undefined
    return device
  }

  /**
   * A device connecting: its app, and whether its regId is still valid, when the token is its
   * own; undefined otherwise. An active device is checked against the store's credentials
   * alone (`activeCredentials`, no device loaded); any other goes through findByToken, which
   * tells a stale device (the right token of an invalid regId) from a wrong guess.
   */
  async verifyToken(
    regId: string,
    token: string,
  ): Promise<{ appId: AppId; regId: RegId; valid: boolean } | undefined> {
    if (!isRegId(regId)) return undefined
    const active = await this.#d.devices.activeCredentials(regId)
    if (active) {
      if (!safeEqual(active.tokenHash, sha256(token))) return undefined
      return { appId: active.appId, regId, valid: true }
    }
    const device = await this.findByToken(regId, token)
    return (
      device && {
        appId: device.appId,
        regId: device.regId,
        valid: device.invalidatedAt === undefined,
      }
    )
  }

  /**
   * The device whose regId and token these are, valid or not; undefined when they do not match.
   * Lets the broker tell a stale device (right token, invalid regId) from a wrong guess.
   */
  async findByToken(regId: string, token: string): Promise<Device | undefined> {
    const hash = sha256(token)
    if (!isRegId(regId)) return undefined
    const device = await this.#d.devices.getDevice(regId)
    if (!device || !safeEqual(device.tokenHash, hash)) return undefined
    return device
  }

  async unregister(device: Device): Promise<void> {
    await this.invalidate(device.regId, 'unregistered', this.#d.clock.now())
  }

  /** Invalidates a regId: its aliases, userAccounts, topics and broker session go with it. */
  async invalidate(regId: RegId, reason: InvalidReason, at: number): Promise<void> {
    // queued together, so that an embedded store commits them as one transaction
    await Promise.all([
      this.#d.devices.invalidateDevice(regId, reason, at),
      this.#d.aliases.removeAllOf(regId),
      this.#d.topics.removeAllOf(regId),
    ])
    await this.#d.sessions.closeSession(regId)
    this.#d.log.info({ regId, reason }, 'regId invalidated')
  }

  async updateAttributes(device: Device, attributes: DeviceAttributes): Promise<void> {
    await this.#d.devices.updateDevice(device.regId, { attributes })
  }

  /** Device seen now (connect, disconnect); write-behind. */
  touch(regId: RegId): void {
    this.#d.devices.touchDevice(regId, this.#d.clock.now())
  }

  setAlias(device: Device, alias: string): Promise<void> {
    return this.#d.aliases.setAlias(device.appId, alias, device.regId, this.#d.clock.now())
  }

  async unsetAlias(device: Device, alias: string): Promise<void> {
    await this.#d.aliases.unsetAlias(device.appId, alias, device.regId)
  }

  async setUserAccount(device: Device, account: string): Promise<void> {
    const evicted = await this.#d.aliases.addUserAccount(
      device.appId,
      account,
      device.regId,
      this.#d.clock.now(),
      MAX_DEVICES_PER_USER_ACCOUNT,
    )
    if (evicted.length > 0) {
      this.#d.log.debug({ account, evicted }, 'userAccount full: oldest devices removed')
    }
  }

  async unsetUserAccount(device: Device, account: string): Promise<void> {
    await this.#d.aliases.removeUserAccount(device.appId, account, device.regId)
  }

  subscribeTopics(device: Device, topics: readonly string[]): Promise<void> {
    return this.#d.sessions.subscribe(device.appId, device.regId, topics)
  }

  unsubscribeTopics(device: Device, topics: readonly string[]): Promise<void> {
    return this.#d.sessions.unsubscribe(device.appId, device.regId, topics)
  }

  /** The topics a device is subscribed to, for the broker to reconcile its session on connect. */
  topicsOf(regId: RegId): Promise<string[]> {
    return this.#d.topics.topicsOf(regId)
  }

  /** What the service knows of a device of this app; 40403 for another app's or unknown. */
  async describe(appId: AppId, regId: string): Promise<DeviceInfo> {
    const device = isRegId(regId) ? await this.#d.devices.getDevice(regId) : undefined
    if (!device || device.appId !== appId) throw new ApiError(ErrorCode.DEVICE_NOT_FOUND)
    const [aliases, userAccounts, topics] = await Promise.all([
      this.#d.aliases.aliasesOf(device.regId),
      this.#d.aliases.userAccountsOf(device.regId),
      this.#d.topics.topicsOf(device.regId),
    ])
    return {
      regId: device.regId,
      appId: device.appId,
      valid: device.invalidatedAt === undefined,
      online: this.#d.sessions.isOnline(device.regId),
      registeredAt: new Date(device.registeredAt).toISOString(),
      lastSeenAt: isoTime(device.lastSeenAt),
      invalidatedAt: isoTime(device.invalidatedAt),
      attributes: device.attributes,
      aliases: aliases.sort(),
      userAccounts: userAccounts.sort(),
      topics: topics.sort(),
    }
  }

  async lookupAlias(appId: AppId, alias: string): Promise<RegId> {
    const regId = (await this.#d.aliases.resolveAliases(appId, [alias])).get(alias)
    const valid = regId ? await this.#d.devices.filterActive(appId, [regId]) : []
    if (!regId || valid.length === 0) throw new ApiError(ErrorCode.ALIAS_NOT_FOUND)
    return regId
  }

  async lookupUserAccount(appId: AppId, account: string): Promise<RegId[]> {
    const members = (await this.#d.aliases.resolveUserAccounts(appId, [account])).get(account)
    const valid = new Set(members ? await this.#d.devices.filterActive(appId, members) : [])
    const regIds = (members ?? []).filter((r) => valid.has(r))
    if (regIds.length === 0) throw new ApiError(ErrorCode.USER_ACCOUNT_NOT_FOUND)
    return regIds
  }

  countTopicMembers(appId: AppId, topic: string): Promise<number> {
    return this.#d.topics.countTopicMembers(appId, topic)
  }

  /**
   * Server-side subscribe / unsubscribe (§4.2.1), for online and offline devices alike.
   * Identifiers that lead to no valid device of the app are returned as `invalid`.
   */
  async changeTopicMembers(
    appId: AppId,
    topic: string,
    request: TopicMembersRequest,
    action: 'subscribe' | 'unsubscribe',
  ): Promise<{ changed: number; invalid: string[] }> {
    const asked = [...new Set(request.regIds ?? request.aliases ?? [])]
    let regIdOf: Map<string, RegId>
    if (request.aliases) {
      regIdOf = await this.#d.aliases.resolveAliases(appId, asked)
    } else {
      regIdOf = new Map(asked.map((r) => [r, r as RegId]))
    }
    const active = new Set(
      (await this.#d.devices.getActiveDevices(appId, [...new Set(regIdOf.values())])).map(
        (d) => d.regId,
      ),
    )
    const invalid = asked.filter((id) => {
      const regId = regIdOf.get(id)
      return regId === undefined || !active.has(regId)
    })
    const sessions = this.#d.sessions
    await Promise.all(
      [...active].map((regId) =>
        action === 'subscribe'
          ? sessions.subscribe(appId, regId, [topic])
          : sessions.unsubscribe(appId, regId, [topic]),
      ),
    )
    return { changed: active.size, invalid }
  }

  async listInvalidated(appId: AppId, since: number, limit: number) {
    return this.#d.devices.listInvalidated(appId, since, limit)
  }

  /** §4.2.2: a regId that has not connected for `inactiveMs` becomes invalid. */
  async invalidateInactive(inactiveMs: number): Promise<number> {
    const now = this.#d.clock.now()
    let count = 0
    for (;;) {
      const batch = await this.#d.devices.findInactive(now - inactiveMs, 500)
      const stale = batch.filter((regId) => {
        if (!this.#d.sessions.isOnline(regId)) return true
        this.touch(regId) // connected all along: it is active
        return false
      })
      for (const regId of stale) await this.invalidate(regId, 'inactive', now)
      count += stale.length
      if (batch.length < 500 || stale.length === 0) return count
    }
  }
}
