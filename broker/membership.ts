import { parseTopic } from '../sdk/protocol/topics.js'
import { maySubscribe } from './hooks/authorize-subscribe.js'
import type { BrokerDeps, BrokerPersistence } from './ports.js'
import { sessionOf } from './session.js'

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * Makes the persistence report app-topic membership to the core before a subscription is
 * stored or removed, whoever caused it (a device SUBSCRIBE, a server-side subscribe, an
 * UNSUBSCRIBE). The core's record is therefore never behind the broker's: after a crash it may
 * be ahead, and the broker reconciles the session to it when the device connects.
 *
 * It also drops subscriptions a device is not allowed to hold: aedes persists the whole
 * SUBSCRIBE packet's list, refused entries included, for each granted entry.
 */
export function trackMembership(
  persistence: BrokerPersistence,
  deps: Pick<BrokerDeps, 'membership'>,
): void {
  const add = persistence.addSubscriptions.bind(persistence)
  const remove = persistence.removeSubscriptions.bind(persistence)

  persistence.addSubscriptions = async (client: any, subs: any[]) => {
    const session = sessionOf(client)
    const allowed = session ? subs.filter((s) => maySubscribe(session, s.topic)) : subs
    for (const [appId, topics] of appTopicsOf(allowed.map((s) => s.topic))) {
      await deps.membership.subscribed(appId, client.id, topics)
    }
    return add(client, allowed)
  }

  persistence.removeSubscriptions = async (client: any, topics: string[]) => {
    for (const [appId, names] of appTopicsOf(topics)) {
      await deps.membership.unsubscribed(appId, client.id, names)
    }
    return remove(client, topics)
  }
}

/** App topic names grouped by app. */
function appTopicsOf(topics: string[]): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const topic of topics) {
    const t = parseTopic(topic)
    if (t?.type !== 'topic') continue
    let list = out.get(t.appId)
    if (!list) out.set(t.appId, (list = []))
    list.push(t.topic)
  }
  return out
}
