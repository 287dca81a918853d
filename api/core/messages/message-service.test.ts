import { afterEach, describe, expect, it } from 'vitest'
import { ManualClock } from '../../../test/helpers/clock.js'
import { openEmbeddedStore, type EmbeddedStore } from '../../store/embedded/index.js'
import { newMessageId, newRegId } from '../ids.js'
import { silentLogger } from '../logger.js'
import type { AppId, Device, MessageRecord, RegId } from '../model.js'
import type { Dispatcher } from './dispatcher.js'
import { MessageService } from './message-service.js'

const APP = 'apptestapptest01' as AppId
const NOW = 1_800_000_000_000

describe('MessageService.recover', () => {
  let store: EmbeddedStore | undefined
  afterEach(() => store?.close())

  function setUp(queued: string[]) {
    store = openEmbeddedStore({ dataDir: ':memory:', onWriteError: (err) => console.error(err) })
    const sent: Array<{ regId: RegId; id: string }> = []
    const dispatcher: Dispatcher = {
      toDevices: async (_app, packets) => {
        for (const p of packets) {
          sent.push({ regId: p.regId, id: JSON.parse(p.payload.toString()).id as string })
        }
      },
      toTopic: async () => {},
      toAll: async () => {},
      queuedMessageIds: () => new Set(queued),
    }
    const clock = new ManualClock(NOW)
    const service = new MessageService({
      devices: store.devices,
      aliases: store.aliases,
      topics: store.topics,
      messages: store.messages,
      dispatcher,
      clock,
      log: silentLogger,
    })
    return { store, service, sent }
  }

  async function accepted(s: EmbeddedStore, regId: RegId, expiresAt: number) {
    const m: MessageRecord = {
      id: newMessageId(NOW - 1000),
      appId: APP,
      targetType: 'regId',
      target: { regIds: [regId] },
      content: { kind: 'passThrough', payload: 'x' },
      createdAt: NOW - 1000,
      expiresAt,
      state: 'accepted',
      funnel: { planned: 1, invalid: 0, filtered: 0, valid: 1, delivered: 0, clicked: 0 },
    }
    await s.messages.insertMessage(m)
    return m
  }

  it('dispatches what was accepted but not queued, marks what the broker still holds or what expired', async () => {
    const regId = newRegId()
    const device: Device = {
      regId,
      appId: APP,
      tokenHash: 'h',
      installationId: undefined,
      attributes: {},
      registeredAt: NOW - 5000,
      lastSeenAt: undefined,
      invalidatedAt: undefined,
      invalidReason: undefined,
    }
    const queuedIds: string[] = []
    const { store: s, service, sent } = setUp(queuedIds)
    await s.devices.insertDevice(device)
    const lost = await accepted(s, regId, NOW + 60_000) // crashed before its queue entry
    const queued = await accepted(s, regId, NOW + 60_000) // crashed before its dispatched mark
    const expired = await accepted(s, regId, NOW - 1)
    queuedIds.push(queued.id)

    expect(await service.recover()).toBe(1)
    expect(sent).toEqual([{ regId, id: lost.id }])
    for (const m of [lost, queued, expired]) {
      expect((await s.messages.getMessage(m.id))?.state).toBe('dispatched')
    }
    expect(await s.messages.listAccepted(10)).toEqual({ messages: [] })
  })
})
