import type { Aedes } from 'aedes'
import { appTopic, broadcastTopic, inboxTopic } from '../sdk/protocol/topics.js'
import type { AppId, RegId } from '../sdk/protocol/ids.js'
import type { Settling } from './membership.js'
import type { BrokerDeps, BrokerPersistence } from './ports.js'
import { sessionOf } from './session.js'

/* eslint-disable @typescript-eslint/no-explicit-any */

interface Sub {
  topic: string
  qos: 0 | 1
}

/**
 * Device sessions, online or offline: the inbox and broadcast subscriptions a regId gets at
 * registration, app-topic subscriptions made by the server, and the end of a session when a
 * regId becomes invalid. Implements the core's SessionManager port.
 */
export function createSessions(
  aedes: Aedes,
  persistence: BrokerPersistence,
  deps: BrokerDeps,
  settling: Settling,
) {
  /** A client registered with the broker and not closed, connected or still connecting. */
  const online = (regId: string): any => {
    const c = ((aedes as any).clients as Record<string, any>)[regId]
    return c && !c.closed ? c : undefined
  }

  /**
   * Subscribes a connected client; resolves true once done, false when its connection closed
   * first. aedes drops the subscription of a client that closed while it was being authorized
   * and stored without calling back (its `addSubs`), so the promise would never settle: a
   * server's topic subscribe would hang when the device went away, or another connection took
   * its id over, at that moment. The persistence may or may not have it then.
   */
  const subscribeLive = (client: any, subs: Sub[]) =>
    new Promise<boolean>((resolve, reject) => {
      const conn = client.conn
      if (client.closed || conn?.destroyed) return resolve(false)
      let settled = false
      const closed = () => {
        if (settled) return
        settled = true
        resolve(false)
      }
      conn?.once('close', closed)
      client.subscribe(subs, (err?: Error) => {
        conn?.removeListener('close', closed)
        if (settled) return
        settled = true
        if (err) reject(err)
        else resolve(true)
      })
    })

  const unsubscribeLive = (client: any, topics: string[]) =>
    new Promise<void>((resolve) => client.unsubscribe(topics, () => resolve()))

  /**
   * Online: through the client (live and persisted); offline, or gone while it was being
   * subscribed: into the persistence.
   */
  async function apply(regId: string, subs: Sub[]): Promise<void> {
    let client = online(regId)
    if (client && (await subscribeLive(client, subs))) return
    await persistence.addSubscriptions({ id: regId }, subs)
    // connected meanwhile? its session was restored before our write; add it live too (and
    // to the next one, should that one go the same way)
    for (let late = online(regId); late && late !== client; late = online(regId)) {
      if (await subscribeLive(late, subs)) return
      client = late
    }
  }

  return {
    async openSession(appId: AppId, regId: RegId): Promise<void> {
      await apply(regId, [
        { topic: inboxTopic(appId, regId), qos: 1 },
        { topic: broadcastTopic(appId), qos: 1 },
      ])
    },

    async subscribe(appId: AppId, regId: RegId, topics: readonly string[]): Promise<void> {
      await apply(
        regId,
        topics.map((t) => ({ topic: appTopic(appId, t), qos: 1 as const })),
      )
    },

    async unsubscribe(appId: AppId, regId: RegId, topics: readonly string[]): Promise<void> {
      const mqttTopics = topics.map((t) => appTopic(appId, t))
      // live first: a publish between the two steps is then neither delivered nor queued
      const client = online(regId)
      if (client) await unsubscribeLive(client, mqttTopics)
      await persistence.removeSubscriptions({ id: regId }, mqttTopics)
      // connected meanwhile? its session was restored before our write, and its reconcile may
      // have read the core's record before it changed: take the topics off it live too
      const late = online(regId)
      if (late && late !== client) await unsubscribeLive(late, mqttTopics)
    },

    async closeSession(regId: RegId): Promise<void> {
      const client = online(regId)
      if (client) await new Promise<void>((resolve) => client.close(() => resolve()))
      if (persistence.dropClient) await persistence.dropClient(regId)
      else await persistence.cleanSubscriptions({ id: regId })
      settling.forget(regId)
    },

    isOnline(regId: RegId): boolean {
      return online(regId) !== undefined
    },

    /**
     * Brings a connected device's subscriptions in line with what the core records: its inbox,
     * its app's broadcast topic and its app topics. They only differ after a crash or a failed
     * write in the middle of a membership change, which leaves the device marked, or after a
     * change that ended while the device was connecting (`Settling`): any other device costs
     * no read.
     */
    async reconcile(client: any): Promise<void> {
      const session = sessionOf(client)
      if (!session) return
      const { appId, regId } = session as unknown as { appId: AppId; regId: RegId }
      const ticket = settling.check(regId)
      if (ticket === undefined) return
      // only what the session brought back may be removed: a SUBSCRIBE the device sends while
      // the store answers is newer than the answer
      const restored = Object.keys(client.subscriptions)
      const expected = new Set([
        inboxTopic(appId, regId),
        broadcastTopic(appId),
        ...(await deps.topicsOf(regId)).map((t) => appTopic(appId, t)),
      ])
      const missing = [...expected].filter((t) => !client.subscriptions[t])
      const extra = restored.filter((t) => !expected.has(t) && client.subscriptions[t])
      if (missing.length > 0) {
        deps.log.info({ regId, missing }, 'session repaired: subscriptions added')
        const added = await subscribeLive(
          client,
          missing.map((topic) => ({ topic, qos: 1 })),
        )
        // gone meanwhile: perhaps not repaired, so not settled (its next connect tries again)
        if (!added) return
      }
      if (extra.length > 0) {
        deps.log.info({ regId, extra }, 'session repaired: subscriptions removed')
        await persistence.removeSubscriptions({ id: regId }, extra)
        await unsubscribeLive(client, extra)
      }
      settling.reconciled(regId, ticket)
    },
  }
}

export type Sessions = ReturnType<typeof createSessions>
