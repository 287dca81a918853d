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
 * SUBSCRIBE packet's list, refused entries included, for each granted entry. And it keeps the
 * session's own subscriptions queueing (QoS ≥ 1, inbox and app-wide topic never removed by the
 * device).
 */
export function trackMembership(
  persistence: BrokerPersistence,
  deps: Pick<BrokerDeps, 'membership'>,
): void {
  const add = persistence.addSubscriptions.bind(persistence)
  const remove = persistence.removeSubscriptions.bind(persistence)
  // aedes calls addSubscriptions once per granted entry of a SUBSCRIBE, each time with the
  // packet's whole list: the list is handled once
  const handled = new WeakMap<object, Promise<unknown>>()

  persistence.addSubscriptions = (client: any, subs: any[]) => {
    const pending = handled.get(subs)
    if (pending) return pending
    const session = sessionOf(client)
    const allowed = (session ? subs.filter((s) => maySubscribe(session, s.topic)) : subs).map(
      // queued delivery needs QoS 1: a device asking for QoS 0 gets it live, but its session
      // keeps queueing what it misses while away
      (s) => (s.qos < 1 && parseTopic(s.topic) ? Object.assign({}, s, { qos: 1 }) : s),
    )
    const done = (async () => {
      for (const [appId, topics] of appTopicsOf(allowed.map((s) => s.topic))) {
        await deps.membership.subscribed(appId, client.id, topics)
      }
      return add(client, allowed)
    })()
    handled.set(subs, done)
    return done
  }

  persistence.removeSubscriptions = async (client: any, topics: string[]) => {
    // the inbox and the app-wide topic belong to the session for as long as the regId is
    // valid: a device's UNSUBSCRIBE stops live delivery until it reconnects, nothing more
    const kept = sessionOf(client)
      ? topics.filter((t) => {
          const type = parseTopic(t)?.type
          return type !== 'inbox' && type !== 'all'
        })
      : topics
    for (const [appId, names] of appTopicsOf(kept)) {
      await deps.membership.unsubscribed(appId, client.id, names)
    }
    return remove(client, kept)
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
