import type { DeviceAttributes } from '../../../sdk/protocol/schemas.js'
import type { AppId, Device, InvalidReason, RegId } from '../model.js'

/**
 * How far a device's lastSeenAt may lag behind its last connect or disconnect: a store need not
 * write a time less than this after the one it holds (inactivity is counted in days).
 */
export const LAST_SEEN_RESOLUTION_MS = 60_000

/** Storage of devices (port). */
export interface DeviceStore {
  insertDevice(device: Device): Promise<void>
  getDevice(regId: RegId): Promise<Device | undefined>
  /** Active devices among these regIds that belong to the app, in no particular order. */
  getActiveDevices(appId: AppId, regIds: readonly RegId[]): Promise<Device[]>
  /**
   * The app and token hash of an active device; undefined when the regId is unknown or invalid.
   * Every device connect asks: a store may answer from a cache it keeps exact (a token never
   * changes).
   */
  activeCredentials(regId: RegId): Promise<{ appId: AppId; tokenHash: string } | undefined>
  /** Like getActiveDevices, only the regIds (the unicast hot path needs nothing else). */
  filterActive(appId: AppId, regIds: readonly RegId[]): Promise<RegId[]>
  updateDevice(
    regId: RegId,
    patch: { attributes?: DeviceAttributes; installationId?: string },
  ): Promise<void>
  /**
   * Write-behind: the device was seen (connected or disconnected) at this time; kept to
   * LAST_SEEN_RESOLUTION_MS, and never moved back.
   */
  touchDevice(regId: RegId, at: number): void
  /** Active regIds of the app registered from this installation. */
  findByInstallation(appId: AppId, installationId: string): Promise<RegId[]>
  invalidateDevice(regId: RegId, reason: InvalidReason, at: number): Promise<void>
  countActiveDevices(appId: AppId): Promise<number>
  /** Active devices last seen (or registered, if never seen) before this time. */
  findInactive(before: number, limit: number): Promise<RegId[]>
  /** Devices invalidated at or after `since`, oldest first. */
  listInvalidated(
    appId: AppId,
    since: number,
    limit: number,
  ): Promise<Array<{ regId: RegId; at: number; reason: InvalidReason }>>
}

/** Storage of aliases and userAccounts (port), §4.2.3. */
export interface AliasStore {
  /** Maps the alias to the device, taking it from whichever device had it (last setter wins). */
  setAlias(appId: AppId, alias: string, regId: RegId, at: number): Promise<void>
  /** Removes the alias if this device holds it; true if it did. */
  unsetAlias(appId: AppId, alias: string, regId: RegId): Promise<boolean>
  resolveAliases(appId: AppId, aliases: readonly string[]): Promise<Map<string, RegId>>
  aliasesOf(regId: RegId): Promise<string[]>
  /**
   * Adds the device to the userAccount; if that makes more than `maxDevices`, the devices that
   * set it longest ago are removed and returned.
   */
  addUserAccount(
    appId: AppId,
    account: string,
    regId: RegId,
    at: number,
    maxDevices: number,
  ): Promise<RegId[]>
  removeUserAccount(appId: AppId, account: string, regId: RegId): Promise<boolean>
  resolveUserAccounts(appId: AppId, accounts: readonly string[]): Promise<Map<string, RegId[]>>
  userAccountsOf(regId: RegId): Promise<string[]>
  /** Drops every alias and userAccount of the device (it became invalid). */
  removeAllOf(regId: RegId): Promise<void>
}

/** Storage of topic membership (port), §4.2.1. */
export interface TopicStore {
  addTopics(appId: AppId, regId: RegId, topics: readonly string[], at: number): Promise<void>
  removeTopics(appId: AppId, regId: RegId, topics: readonly string[]): Promise<void>
  topicsOf(regId: RegId): Promise<string[]>
  countTopicMembers(appId: AppId, topic: string): Promise<number>
  removeAllOf(regId: RegId): Promise<void>
}
