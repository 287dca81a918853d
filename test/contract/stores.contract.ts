import { beforeEach, describe, expect, it } from 'vitest'
import type { AppStore } from '../../api/core/apps/app-store.js'
import {
  type AliasStore,
  type DeviceStore,
  LAST_SEEN_RESOLUTION_MS,
  type TopicStore,
} from '../../api/core/devices/device-store.js'
import type { MessageStore } from '../../api/core/messages/message-store.js'
import type { App, AppId, Device, MessageId, MessageRecord, RegId } from '../../api/core/model.js'

/** The storage ports every adapter implements; the suites below run on each (STYLE rule 3). */
export interface StoreSet {
  apps: AppStore
  devices: DeviceStore
  aliases: AliasStore
  topics: TopicStore
  messages: MessageStore
  /** Waits until write-behind operations are durable. */
  settle(): Promise<void>
  close(): Promise<void>
}

const APP = 'ap00000000000001' as AppId
const OTHER = 'ap00000000000002' as AppId
let counter = 0
const regId = () => `R${String(++counter).padStart(21, '0')}` as RegId
const msgId = (t: number) =>
  `m${t.toString(36).padStart(9, '0')}${String(++counter).padStart(10, '0')}` as MessageId

/** `n` devices registered in the store (receipts are of registered devices): their regIds. */
async function registered(s: { devices: { insertDevice(d: Device): Promise<void> } }, n: number) {
  const devices = Array.from({ length: n }, () => device())
  for (const d of devices) await s.devices.insertDevice(d)
  return devices.map((d) => d.regId)
}

function device(overrides: Partial<Device> = {}): Device {
  return {
    regId: regId(),
    appId: APP,
    tokenHash: 'hash',
    installationId: undefined,
    attributes: { model: 'M1' },
    registeredAt: 1_000,
    lastSeenAt: undefined,
    invalidatedAt: undefined,
    invalidReason: undefined,
    ...overrides,
  }
}

function message(overrides: Partial<MessageRecord> = {}): MessageRecord {
  return {
    id: msgId(overrides.createdAt ?? 1_800_000_000_000),
    appId: APP,
    targetType: 'regId',
    target: { regIds: [regId()] },
    content: { kind: 'notification', title: 't', description: 'd' },
    createdAt: 1_800_000_000_000,
    expiresAt: 1_800_000_600_000,
    state: 'accepted',
    funnel: { planned: 3, invalid: 1, filtered: 0, valid: 2, delivered: 0, clicked: 0 },
    ...overrides,
  }
}

export function storeContract(name: string, open: () => Promise<StoreSet>): void {
  describe(`${name}: storage contract`, () => {
    let s: StoreSet
    beforeEach(async () => {
      s = await open()
      return () => s.close()
    })

    describe('AppStore', () => {
      it('stores apps and finds them by id and by secret hash', async () => {
        const app: App = { id: APP, name: 'n', key: 'k', secret: 's', createdAt: 5 }
        await s.apps.insertApp(app, 'h1')
        await s.apps.insertApp({ ...app, id: OTHER, createdAt: 6 }, 'h2')
        expect(await s.apps.getApp(APP)).toEqual(app)
        expect((await s.apps.findAppBySecretHash('h2'))?.id).toBe(OTHER)
        expect(await s.apps.findAppBySecretHash('nope')).toBeUndefined()
        expect((await s.apps.listApps()).map((a) => a.id)).toEqual([APP, OTHER])
      })
    })

    describe('DeviceStore', () => {
      it('inserts, reads and updates devices', async () => {
        const d = device({ installationId: 'inst' })
        await s.devices.insertDevice(d)
        expect(await s.devices.getDevice(d.regId)).toEqual(d)
        await s.devices.updateDevice(d.regId, { attributes: { model: 'M2', locale: 'fr' } })
        expect((await s.devices.getDevice(d.regId))?.attributes).toEqual({
          model: 'M2',
          locale: 'fr',
        })
        expect(await s.devices.getDevice(regId())).toBeUndefined()
      })

      it('returns only active devices of the app', async () => {
        const a = device()
        const b = device()
        const foreign = device({ appId: OTHER })
        for (const d of [a, b, foreign]) await s.devices.insertDevice(d)
        await s.devices.invalidateDevice(b.regId, 'unregistered', 2_000)
        const found = await s.devices.getActiveDevices(APP, [
          a.regId,
          b.regId,
          foreign.regId,
          regId(),
        ])
        expect(found.map((d) => d.regId)).toEqual([a.regId])
        expect(await s.devices.getActiveDevices(APP, [b.regId])).toEqual([])
        expect(await s.devices.filterActive(APP, [a.regId, b.regId, foreign.regId])).toEqual([
          a.regId,
        ])
        expect(await s.devices.filterActive(APP, [a.regId])).toEqual([a.regId])
        expect(await s.devices.filterActive(OTHER, [a.regId])).toEqual([])
        expect(await s.devices.countActiveDevices(APP)).toBe(1)
        const invalid = await s.devices.listInvalidated(APP, 0, 10)
        expect(invalid).toEqual([{ regId: b.regId, at: 2_000, reason: 'unregistered' }])
        expect(await s.devices.listInvalidated(APP, 2_001, 10)).toEqual([])
      })

      it('counts the active devices of an app after every change, whatever it was asked before', async () => {
        // counted before anything exists (an adapter may keep the count)
        expect(await s.devices.countActiveDevices(APP)).toBe(0)
        expect(await s.devices.countActiveDevices(OTHER)).toBe(0)
        const a = device()
        const b = device()
        await s.devices.insertDevice(a)
        await s.devices.insertDevice(b)
        await s.devices.insertDevice(device({ appId: OTHER }))
        expect(await s.devices.countActiveDevices(APP)).toBe(2)
        await expect(s.devices.insertDevice({ ...a })).rejects.toThrow() // the same regId again
        expect(await s.devices.countActiveDevices(APP)).toBe(2)
        // a new device and a duplicate in one turn (an adapter may write them in one batch, and
        // run the new one's write again once the duplicate is taken out)
        const c = device()
        const both = await Promise.allSettled([
          s.devices.insertDevice(c),
          s.devices.insertDevice({ ...a }),
        ])
        expect(both.map((r) => r.status)).toEqual(['fulfilled', 'rejected'])
        expect(await s.devices.countActiveDevices(APP)).toBe(3)
        await s.devices.invalidateDevice(c.regId, 'unregistered', 2_000)
        await s.devices.invalidateDevice(b.regId, 'unregistered', 2_000)
        await s.devices.invalidateDevice(b.regId, 'inactive', 3_000) // already invalid
        expect(await s.devices.countActiveDevices(APP)).toBe(1)
        expect(await s.devices.countActiveDevices(OTHER)).toBe(1)
      })

      it('answers the push path after every change of state, whatever it was asked before', async () => {
        const d = device()
        const many = [d.regId, ...Array.from({ length: 20 }, () => regId())]
        // asked before it exists (an adapter may remember the answer)
        expect(await s.devices.filterActive(APP, [d.regId])).toEqual([])
        await s.devices.insertDevice(d)
        expect(await s.devices.filterActive(APP, [d.regId])).toEqual([d.regId])
        expect(await s.devices.filterActive(APP, many)).toEqual([d.regId])
        expect(await s.devices.filterActive(OTHER, [d.regId])).toEqual([])
        await s.devices.invalidateDevice(d.regId, 'unregistered', 3_000)
        expect(await s.devices.filterActive(APP, [d.regId])).toEqual([])
        expect(await s.devices.filterActive(APP, many)).toEqual([])
      })

      it("answers a connect's credentials after every change of state, whatever it was asked before", async () => {
        const d = device()
        // asked before it exists (an adapter may remember the answer)
        expect(await s.devices.activeCredentials(d.regId)).toBeUndefined()
        await s.devices.insertDevice(d)
        expect(await s.devices.activeCredentials(d.regId)).toEqual({
          appId: APP,
          tokenHash: d.tokenHash,
        })
        const other = device({ appId: OTHER })
        await s.devices.insertDevice(other)
        expect((await s.devices.activeCredentials(other.regId))?.appId).toBe(OTHER)
        await s.devices.invalidateDevice(d.regId, 'unregistered', 3_000)
        expect(await s.devices.activeCredentials(d.regId)).toBeUndefined()
        expect(await s.devices.activeCredentials(regId())).toBeUndefined()
      })

      it('finds active devices by installation and inactive ones by last seen', async () => {
        const old = device({ installationId: 'same' })
        const seen = device({ installationId: 'same' })
        await s.devices.insertDevice(old)
        await s.devices.insertDevice(seen)
        expect((await s.devices.findByInstallation(APP, 'same')).sort()).toEqual(
          [old.regId, seen.regId].sort(),
        )
        s.devices.touchDevice(seen.regId, 50_000)
        await s.settle()
        expect((await s.devices.getDevice(seen.regId))?.lastSeenAt).toBe(50_000)
        expect(await s.devices.findInactive(10_000, 10)).toEqual([old.regId])
        await s.devices.invalidateDevice(old.regId, 'inactive', 60_000)
        expect(await s.devices.findByInstallation(APP, 'same')).toEqual([seen.regId])
        expect(await s.devices.findInactive(10_000, 10)).toEqual([])
      })

      it('keeps last seen to LAST_SEEN_RESOLUTION_MS and never moves it back', async () => {
        const d = device()
        await s.devices.insertDevice(d)
        const seenAt = async (at: number) => {
          s.devices.touchDevice(d.regId, at)
          await s.settle()
          return (await s.devices.getDevice(d.regId))?.lastSeenAt
        }
        expect(await seenAt(50_000)).toBe(50_000)
        expect(await seenAt(50_000 + LAST_SEEN_RESOLUTION_MS)).toBe(50_000) // not written
        expect(await seenAt(20_000)).toBe(50_000)
        expect(await seenAt(50_001 + LAST_SEEN_RESOLUTION_MS)).toBe(
          50_001 + LAST_SEEN_RESOLUTION_MS,
        )
      })
    })

    describe('AliasStore', () => {
      it('maps an alias to the last device that set it', async () => {
        const [a, b] = [regId(), regId()]
        await s.aliases.setAlias(APP, 'x', a, 1)
        await s.aliases.setAlias(APP, 'x', b, 2)
        await s.aliases.setAlias(OTHER, 'x', a, 3)
        expect(await s.aliases.resolveAliases(APP, ['x', 'y'])).toEqual(new Map([['x', b]]))
        expect(await s.aliases.aliasesOf(a)).toEqual(['x']) // in OTHER
        expect(await s.aliases.unsetAlias(APP, 'x', a)).toBe(false)
        expect(await s.aliases.unsetAlias(APP, 'x', b)).toBe(true)
        expect(await s.aliases.resolveAliases(APP, ['x'])).toEqual(new Map())
      })

      it('keeps the newest devices of a userAccount and returns the evicted', async () => {
        const ids = Array.from({ length: 4 }, regId)
        expect(await s.aliases.addUserAccount(APP, 'u', ids[0]!, 1, 3)).toEqual([])
        expect(await s.aliases.addUserAccount(APP, 'u', ids[1]!, 1, 3)).toEqual([])
        expect(await s.aliases.addUserAccount(APP, 'u', ids[2]!, 2, 3)).toEqual([])
        // same set time: insertion order decides
        expect(await s.aliases.addUserAccount(APP, 'u', ids[3]!, 2, 3)).toEqual([ids[0]])
        const members = (await s.aliases.resolveUserAccounts(APP, ['u'])).get('u')
        expect(new Set(members)).toEqual(new Set(ids.slice(1)))
        expect(await s.aliases.removeUserAccount(APP, 'u', ids[1]!)).toBe(true)
        expect(await s.aliases.userAccountsOf(ids[1]!)).toEqual([])
        expect(await s.aliases.userAccountsOf(ids[2]!)).toEqual(['u'])
      })

      it('removes everything of a device', async () => {
        const d = regId()
        await s.aliases.setAlias(APP, 'a1', d, 1)
        await s.aliases.addUserAccount(APP, 'u1', d, 1, 10)
        await s.aliases.removeAllOf(d)
        expect(await s.aliases.aliasesOf(d)).toEqual([])
        expect(await s.aliases.userAccountsOf(d)).toEqual([])
      })
    })

    describe('TopicStore', () => {
      it('records membership per app and counts it', async () => {
        const [a, b] = [regId(), regId()]
        await s.topics.addTopics(APP, a, ['news', 'sports'], 1)
        await s.topics.addTopics(APP, a, ['news'], 2) // idempotent
        await s.topics.addTopics(APP, b, ['news'], 1)
        await s.topics.addTopics(OTHER, b, ['news'], 1)
        expect(await s.topics.countTopicMembers(APP, 'news')).toBe(2)
        expect(await s.topics.countTopicMembers(OTHER, 'news')).toBe(1)
        expect((await s.topics.topicsOf(a)).sort()).toEqual(['news', 'sports'])
        await s.topics.removeTopics(APP, a, ['news'])
        expect(await s.topics.countTopicMembers(APP, 'news')).toBe(1)
        await s.topics.removeAllOf(b)
        expect(await s.topics.countTopicMembers(APP, 'news')).toBe(0)
        expect(await s.topics.topicsOf(a)).toEqual(['sports'])
      })
    })

    describe('MessageStore', () => {
      it('stores a message and moves it from accepted to dispatched', async () => {
        const m = message()
        await s.messages.insertMessage(m)
        expect(await s.messages.getMessage(m.id)).toEqual(m)
        expect((await s.messages.listAccepted(10)).messages.map((x) => x.id)).toEqual([m.id])
        s.messages.markDispatched(m.id, { planned: 5, invalid: 2, filtered: 1, valid: 2 })
        const after = await s.messages.getMessage(m.id)
        expect(after?.state).toBe('dispatched')
        expect(after?.funnel).toEqual({
          planned: 5,
          invalid: 2,
          filtered: 1,
          valid: 2,
          delivered: 0,
          clicked: 0,
        })
        expect(await s.messages.listAccepted(10)).toEqual({ messages: [] })
        expect(await s.messages.messageBelongsTo(m.id, APP)).toBe(true)
        expect(await s.messages.messageBelongsTo(m.id, OTHER)).toBe(false)
      })

      it('pages through accepted messages in the order accepted, skipping those marked dispatched', async () => {
        const times = [3, 1, 2, 2, 4].map((k) => 1_800_000_000_000 + k)
        const ms = times.map((t) => message({ createdAt: t }))
        for (const m of ms) await s.messages.insertMessage(m)
        const order = ms.map((m) => m.id)
        s.messages.markDispatched(order[3]!) // not yet durable where the adapter writes behind
        const seen: string[] = []
        let after: number | undefined
        const sizes: number[] = []
        for (;;) {
          const page = await s.messages.listAccepted(2, after)
          seen.push(...page.messages.map((m) => m.id))
          sizes.push(page.messages.length)
          if (page.next === undefined) break
          after = page.next
        }
        expect(seen).toEqual(order.filter((id) => id !== order[3]))
        expect(sizes.slice(0, 2)).toEqual([2, 2])
      })

      it('lists only what was accepted before the listing began', async () => {
        const before = message()
        await s.messages.insertMessage(before)
        const first = await s.messages.listAccepted(1)
        const during = message()
        await s.messages.insertMessage(during)
        const rest = await s.messages.listAccepted(1, first.next)
        expect([...first.messages, ...rest.messages].map((m) => m.id)).toEqual([before.id])
        expect(rest.next).toBeUndefined()
      })

      it('counts each delivery and each click once per device, clicks only after delivery', async () => {
        const m = message()
        await s.messages.insertMessage(m)
        const [a, b] = (await registered(s, 2)) as [RegId, RegId]
        expect(await s.messages.recordClicked(m.id, a, 1)).toBe(false) // not delivered yet
        s.messages.recordDelivered(m.id, a, 1)
        s.messages.recordDelivered(m.id, a, 2)
        s.messages.recordDelivered(m.id, b, 2)
        await s.settle()
        expect(await s.messages.recordClicked(m.id, a, 3)).toBe(true)
        expect(await s.messages.recordClicked(m.id, a, 4)).toBe(false)
        const f = (await s.messages.getMessage(m.id))?.funnel
        expect(f).toMatchObject({ delivered: 2, clicked: 1 })
      })

      it('counts a broadcast’s receipts once per device, at one time or many', async () => {
        const m = message()
        const other = message()
        await s.messages.insertMessage(m)
        await s.messages.insertMessage(other)
        const devices = await registered(s, 50)
        // the first ten arrive in an earlier commit
        for (const d of devices.slice(0, 10)) s.messages.recordDelivered(m.id, d, 5)
        await s.settle()
        // then all fifty at one millisecond, one of them twice, another message in between,
        // then some at the next millisecond again
        for (const d of devices.slice(0, 25)) s.messages.recordDelivered(m.id, d, 7)
        s.messages.recordDelivered(m.id, devices[3]!, 7)
        s.messages.recordDelivered(other.id, devices[0]!, 7)
        for (const d of devices.slice(25)) s.messages.recordDelivered(m.id, d, 7)
        for (const d of devices.slice(40)) s.messages.recordDelivered(m.id, d, 8)
        await s.settle()
        expect((await s.messages.getMessage(m.id))?.funnel.delivered).toBe(50)
        expect((await s.messages.getMessage(other.id))?.funnel.delivered).toBe(1)
        // each device has its receipt: a click counts
        for (const d of [devices[0]!, devices[24]!, devices[49]!]) {
          expect(await s.messages.recordClicked(m.id, d, 9)).toBe(true)
        }
        expect(await s.messages.recordClicked(other.id, devices[1]!, 9)).toBe(false)
      })

      it('deletes messages older than a time, with their receipts', async () => {
        const old = message({ createdAt: 1_000_000_000_000 })
        const recent = message({ createdAt: 1_900_000_000_000 })
        await s.messages.insertMessage(old)
        await s.messages.insertMessage(recent)
        const [d] = await registered(s, 1)
        s.messages.recordDelivered(old.id, d!, 1)
        await s.settle()
        expect(await s.messages.deleteMessagesBefore(1_500_000_000_000, 10)).toBe(1)
        expect(await s.messages.getMessage(old.id)).toBeUndefined()
        expect(await s.messages.getMessage(recent.id)).toBeDefined()
      })
    })
  })
}
