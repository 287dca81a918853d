import { describe, expect, it } from 'vitest'
import type { AppId, RegId } from '../sdk/protocol/ids.js'
import { appTopic, broadcastTopic, inboxTopic } from '../sdk/protocol/topics.js'
import { trackMembership } from './membership.js'
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

function track(persistence: BrokerPersistence, log: string[]) {
  return trackMembership(persistence, {
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

describe('trackMembership: which sessions may differ from the core (Settling)', () => {
  it('marks the device durably before the core records a topic, settles it after the session', async () => {
    const { p, log } = fakePersistence()
    const settling = track(p, log)
    const news = appTopic(APP, 'news')
    const adding = p.addSubscriptions(device(), [sub(news)])
    expect(settling.unsettled(REG)).toBe(true) // under way
    await adding
    expect(log).toEqual([`mark ${REG}`, 'core subscribed news', `add ${news}`, `settle ${REG}`])
    expect(settling.unsettled(REG)).toBe(false)
    // and so for a topic left
    log.length = 0
    await p.removeSubscriptions(device(), [news])
    expect(log).toEqual([
      `mark ${REG}`,
      'core unsubscribed news',
      `remove ${news}`,
      `settle ${REG}`,
    ])
    expect(settling.unsettled(REG)).toBe(false)
  })

  it('a session opening (inbox and app-wide topic only) involves neither the core nor a mark', async () => {
    const { p, log } = fakePersistence()
    const settling = track(p, log)
    await p.addSubscriptions({ id: REG }, [sub(inboxTopic(APP, REG)), sub(broadcastTopic(APP))])
    expect(log).toEqual([`add ${inboxTopic(APP, REG)},${broadcastTopic(APP)}`])
    expect(settling.unsettled(REG)).toBe(false)
  })

  it('a change whose session write fails leaves the device marked until a reconcile', async () => {
    let fail = true
    const { p, log, marked } = fakePersistence({ failAdd: () => fail })
    const settling = track(p, log)
    await expect(p.addSubscriptions(device(), [sub(appTopic(APP, 'news'))])).rejects.toThrow(
      'disk full',
    )
    expect(marked.has(REG)).toBe(true)
    expect(settling.unsettled(REG)).toBe(true)
    // a later change that goes well does not settle what the failed one left
    fail = false
    await p.addSubscriptions(device(), [sub(appTopic(APP, 'sports'))])
    expect(marked.has(REG)).toBe(true)
    expect(settling.unsettled(REG)).toBe(true)
    // a reconcile does
    settling.reconciled(REG)
    expect(marked.has(REG)).toBe(false)
    expect(settling.unsettled(REG)).toBe(false)
  })

  it('overlapping changes settle once the last has ended; a reconcile meanwhile settles nothing', async () => {
    const { p, log, marked } = fakePersistence()
    let release = () => {}
    const gate = new Promise<void>((r) => (release = r))
    const settling = trackMembership(p, {
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
    settling.reconciled(REG) // a change is under way: not settled either
    expect(marked.has(REG)).toBe(true)
    expect(settling.unsettled(REG)).toBe(true)
    release()
    await slow
    expect(log.filter((l) => l.startsWith('settle'))).toEqual([`settle ${REG}`])
    expect(log.at(-1)).toBe(`settle ${REG}`)
    expect(settling.unsettled(REG)).toBe(false)
  })

  it('after a restart a device marked by the persistence is unsettled until reconciled', async () => {
    const { p, log, marked } = fakePersistence()
    marked.add(REG) // loaded from the database
    const settling = track(p, log)
    expect(settling.unsettled(REG)).toBe(true)
    expect(settling.unsettled('device-2')).toBe(false)
    settling.reconciled(REG)
    expect(settling.unsettled(REG)).toBe(false)
    expect(log).toEqual([`settle ${REG}`])
  })

  it('without marks in the persistence, every session counts as unsettled (reconciled at each connect)', async () => {
    const { p, log } = fakePersistence({ marks: false })
    const settling = track(p, log)
    await p.addSubscriptions(device(), [sub(appTopic(APP, 'news'))])
    expect(log).toEqual(['core subscribed news', `add ${appTopic(APP, 'news')}`])
    expect(settling.unsettled(REG)).toBe(true)
    settling.reconciled(REG)
    expect(settling.unsettled(REG)).toBe(true)
  })
})
