import { setFlagsFromString } from 'node:v8'
import { afterEach, describe, expect, it } from 'vitest'
import { ManualClock } from '../../../test/helpers/clock.js'
import { openEmbeddedStore, type EmbeddedStore } from '../../store/embedded/index.js'
import { newMessageId, newRegId } from '../ids.js'
import { silentLogger } from '../logger.js'
import type { AppId, RegId } from '../model.js'
import { MessageService } from './message-service.js'
import { type SendContext, toRecord } from './send-context.js'

// V8's own test of whether two objects share a hidden class (its natives syntax, allowed for
// functions compiled from now on)
setFlagsFromString('--allow-natives-syntax')
// eslint-disable-next-line @typescript-eslint/no-implied-eval -- the only way to reach %HaveSameMap
const sameHiddenClass = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (
  a: object,
  b: object,
) => boolean

const APP = 'apptestapptest01' as AppId
const NOW = 1_800_000_000_000
/** Enough calls for V8's inline caches to settle (then a spread's copies stop sharing). */
const CALLS = 500
/** The funnel of a push to one valid regId. */
const FUNNEL = { planned: 1, invalid: 0, filtered: 0, valid: 1, delivered: 0, clicked: 0 }

function context(i: number): SendContext {
  return {
    id: newMessageId(NOW + i),
    appId: APP,
    target: { regIds: [newRegId()] },
    targetType: 'regId',
    content: { kind: 'passThrough', payload: String(i) },
    createdAt: NOW + i,
    expiresAt: NOW + i + 60_000,
    funnel: { planned: 1, invalid: 0, filtered: 0, valid: 1 },
    deliveries: [],
    broadcast: undefined,
    isNew: true,
    sendNow: false,
  }
}

// Every hidden class V8 makes lives in the old generation; four per push, with their
// descriptors, were 42 % of the service's old-generation garbage under load
// (docs/benchmarks-log.md, sixteenth session)
describe('objects made for every push share their hidden classes', () => {
  let store: EmbeddedStore | undefined
  afterEach(() => store?.close())

  it('the record a push stores, and its funnel', () => {
    const records = Array.from({ length: CALLS }, (_, i) => toRecord(context(i)))
    const [a, b] = records.slice(-2) as [ReturnType<typeof toRecord>, ReturnType<typeof toRecord>]
    expect(b.funnel).toEqual(FUNNEL)
    expect(sameHiddenClass(a.funnel, b.funnel)).toBe(true)
    expect(sameHiddenClass(a, b)).toBe(true)
  })

  it('the answer to a push, and its funnel', async () => {
    store = openEmbeddedStore({ dataDir: ':memory:', onWriteError: (err) => console.error(err) })
    const regId: RegId = newRegId()
    await store.devices.insertDevice({
      regId,
      appId: APP,
      tokenHash: 'h',
      installationId: undefined,
      attributes: {},
      registeredAt: NOW,
      lastSeenAt: undefined,
      invalidatedAt: undefined,
      invalidReason: undefined,
    })
    const service = new MessageService({
      devices: store.devices,
      aliases: store.aliases,
      topics: store.topics,
      messages: store.messages,
      dispatcher: {
        toDevices: async () => {},
        toTopic: async () => {},
        toAll: async () => {},
        queuedMessageIds: () => new Set(),
      },
      clock: new ManualClock(NOW),
      log: silentLogger,
    })
    const answers = []
    for (let i = 0; i < CALLS; i++) {
      answers.push(
        await service.send(APP, { target: { regIds: [regId] }, kind: 'passThrough', payload: 'x' }),
      )
    }
    const [a, b] = answers.slice(-2) as [(typeof answers)[0], (typeof answers)[0]]
    expect(b.funnel).toEqual(FUNNEL)
    expect(sameHiddenClass(a.funnel, b.funnel)).toBe(true)
    expect(sameHiddenClass(a, b)).toBe(true)
  })
})
