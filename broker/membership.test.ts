import { describe, expect, it } from 'vitest'
import type { AppId, RegId } from '../sdk/protocol/ids.js'
import { appTopic, broadcastTopic, inboxTopic } from '../sdk/protocol/topics.js'
import { ManualClock } from '../test/helpers/clock.js'
import { RECENT_CHANGE_MS, RECENT_CHANGES_KEPT, trackMembership } from './membership.js'
import type { BrokerPersistence } from './ports.js'
import { setSession } from './session.js'

const APP = 'ap00000000000001' as AppId
const REG = 'device-1' as RegId

/** A persistence that logs its calls; marks kept as the embedded one keeps them. */
function fakePersistence(options: { marks?: boolean; failAdd?: () => boolean } = {}) {
  const log: string[] = []
  const marked = new Set<string>()
  const p: Partial<BrokerPersistence> & Record<string, any> = {
    async addSubscriptions(client: { id: string }, subs: any[]) {
      await Promise.resolve()
      if (options.failAdd?.()) {
        log.push('add failed')
        throw new Error('disk full')
      }
      log.push(`add ${subs.map((s) => s.topic).join(',')}`)
    },
    async removeSubscriptions(client: { id: string }, topics: string[]) {
      await Promise.resolve()
      log.push(`remove ${topics.join(',')}`)
    },
  }
  if (options.marks !== false) {
    p.markUnsettled = async (id: string) => {
      // durable later than the core's write would be: a mark not waited for shows in the order
      await new Promise((r) => setImmediate(r))
      marked.add(id)
      log.push(`mark ${id}`)
    }
    p.settle = (id: string) => {
      if (marked.delete(id)) log.push(`settle ${id}`)
    }
    p.isUnsettled = (id: string) => marked.has(id)
  }
  return { p: p as BrokerPersistence, log, marked }
}

function track(persistence: BrokerPersistence, log: string[], clock = new ManualClock(0)) {
  return trackMembership(persistence, {
    clock,
    membership: {
      async subscribed(appId, regId, topics) {
        await Promise.resolve()
        log.push(`core subscribed ${topics.join(',')}`)
      },
      async unsubscribed(appId, regId, topics) {
        await Promise.resolve()
        log.push(`core unsubscribed ${topics.join(',')}`)
      },
    },
  })
}

const device = () => {
  const client: any = { id: REG }
  setSession(client, APP, REG)
  return client
}
const sub = (topic: string) => ({ topic, qos: 1 })
/** Whether a connect now would reconcile the device. */
const unsettled = (settling: { check(regId: string): number | undefined }) =>
  settling.check(REG) !== undefined

describe('trackMembership: which sessions may differ from the core (Settling)', () => {
  /** Past the window in which a change that ended still counts (a connect in progress). */
  const later = (clock: ManualClock) => clock.advance(RECENT_CHANGE_MS + 1)

  it('marks the device durably before the core records a topic, settles it after the session', async () => {
    const { p, log, marked } = fakePersistence()
    const clock = new ManualClock(0)
    const settling = track(p, log, clock)
    const news = appTopic(APP, 'news')
    const adding = p.addSubscriptions(device(), [sub(news)])
    expect(unsettled(settling)).toBe(true) // under way
    await adding
    expect(log).toEqual([`mark ${REG}`, 'core subscribed news', `add ${news}`, `settle ${REG}`])
    expect(marked.has(REG)).toBe(false)
    // and so for a topic left
    log.length = 0
    await p.removeSubscriptions(device(), [news])
    expect(log).toEqual([
      `mark ${REG}`,
      'core unsubscribed news',
      `remove ${news}`,
      `settle ${REG}`,
    ])
    // a connect just now may have taken its snapshot before the change: it reconciles
    expect(unsettled(settling)).toBe(true)
    later(clock)
    expect(unsettled(settling)).toBe(false)
  })

  it('a session opening (inbox and app-wide topic only) involves neither the core nor a mark', async () => {
    const { p, log } = fakePersistence()
    const settling = track(p, log)
    await p.addSubscriptions({ id: REG }, [sub(inboxTopic(APP, REG)), sub(broadcastTopic(APP))])
    expect(log).toEqual([`add ${inboxTopic(APP, REG)},${broadcastTopic(APP)}`])
    expect(unsettled(settling)).toBe(false)
  })

  it('a change whose session write fails leaves the device marked until a reconcile', async () => {
    let fail = true
    const { p, log, marked } = fakePersistence({ failAdd: () => fail })
    const clock = new ManualClock(0)
    const settling = track(p, log, clock)
    await expect(p.addSubscriptions(device(), [sub(appTopic(APP, 'news'))])).rejects.toThrow(
      'disk full',
    )
    later(clock)
    expect(marked.has(REG)).toBe(true)
    expect(unsettled(settling)).toBe(true)
    // a later change that goes well does not settle what the failed one left
    fail = false
    await p.addSubscriptions(device(), [sub(appTopic(APP, 'sports'))])
    later(clock)
    expect(marked.has(REG)).toBe(true)
    expect(unsettled(settling)).toBe(true)
    // a reconcile does
    settling.reconciled(REG, settling.check(REG) as number)
    expect(marked.has(REG)).toBe(false)
    expect(unsettled(settling)).toBe(false)
  })

  it('a change that fails while a reconcile runs keeps the device unsettled', async () => {
    const { p, log, marked } = fakePersistence({ failAdd: () => true })
    const clock = new ManualClock(0)
    marked.add(REG) // from a crash
    const settling = track(p, log, clock)
    // the reconcile reads the core's record, then repairs from it; meanwhile a change fails
    const ticket = settling.check(REG) as number
    expect(ticket).toBeDefined()
    await expect(p.addSubscriptions(device(), [sub(appTopic(APP, 'news'))])).rejects.toThrow()
    settling.reconciled(REG, ticket)
    later(clock)
    expect(marked.has(REG)).toBe(true)
    expect(unsettled(settling)).toBe(true)
    // a reconcile that began after the failure settles it
    settling.reconciled(REG, settling.check(REG) as number)
    expect(unsettled(settling)).toBe(false)
  })

  it('overlapping changes settle once the last has ended; a reconcile meanwhile settles nothing', async () => {
    const { p, log, marked } = fakePersistence()
    let release = () => {}
    const gate = new Promise<void>((r) => (release = r))
    const clock = new ManualClock(0)
    const settling = trackMembership(p, {
      clock,
      membership: {
        async subscribed(appId, regId, topics) {
          if (topics[0] === 'slow') await gate
          log.push(`core subscribed ${topics.join(',')}`)
        },
        async unsubscribed() {},
      },
    })
    const slow = p.addSubscriptions(device(), [sub(appTopic(APP, 'slow'))])
    await p.addSubscriptions(device(), [sub(appTopic(APP, 'quick'))])
    // the quick change ended while the slow one is under way: still marked
    expect(marked.has(REG)).toBe(true)
    settling.reconciled(REG, settling.check(REG) as number) // a change is under way: not settled
    expect(marked.has(REG)).toBe(true)
    expect(unsettled(settling)).toBe(true)
    release()
    await slow
    expect(log.filter((l) => l.startsWith('settle'))).toEqual([`settle ${REG}`])
    expect(log.at(-1)).toBe(`settle ${REG}`)
    later(clock)
    expect(unsettled(settling)).toBe(false)
  })

  it('after a restart a device marked by the persistence is unsettled until reconciled', async () => {
    const { p, log, marked } = fakePersistence()
    marked.add(REG) // loaded from the database
    const settling = track(p, log)
    expect(unsettled(settling)).toBe(true)
    expect(settling.check('device-2')).toBeUndefined()
    settling.reconciled(REG, settling.check(REG) as number)
    expect(unsettled(settling)).toBe(false)
    expect(log).toEqual([`settle ${REG}`])
  })

  it('an invalidated device is forgotten, a failed change of it included', async () => {
    const { p, log } = fakePersistence({ failAdd: () => true })
    const settling = track(p, log)
    await expect(p.addSubscriptions(device(), [sub(appTopic(APP, 'news'))])).rejects.toThrow()
    settling.forget(REG) // its session dropped, the mark with it (the persistence's dropClient)
    p.settle?.(REG)
    expect(unsettled(settling)).toBe(false)
  })

  it('keeps at most RECENT_CHANGES_KEPT recent ends, dropping the oldest', async () => {
    const { p, log } = fakePersistence()
    const settling = track(p, log)
    const ids = Array.from({ length: RECENT_CHANGES_KEPT + 1 }, (_, i) => `device-${i}`)
    await Promise.all(
      ids.map((id) => {
        const c: any = { id }
        setSession(c, APP, id)
        return p.addSubscriptions(c, [sub(appTopic(APP, 'news'))])
      }),
    )
    // all within the window: the first ended one went for the last
    expect(settling.check(ids[0] as string)).toBeUndefined()
    expect(settling.check(ids[1] as string)).toBeDefined()
    expect(settling.check(ids.at(-1) as string)).toBeDefined()
  })

  it('without marks in the persistence, every session counts as unsettled (reconciled at each connect)', async () => {
    const { p, log } = fakePersistence({ marks: false })
    const clock = new ManualClock(0)
    const settling = track(p, log, clock)
    await p.addSubscriptions(device(), [sub(appTopic(APP, 'news'))])
    expect(log).toEqual(['core subscribed news', `add ${appTopic(APP, 'news')}`])
    later(clock)
    expect(unsettled(settling)).toBe(true)
    settling.reconciled(REG, settling.check(REG) as number)
    expect(unsettled(settling)).toBe(true)
  })
})
