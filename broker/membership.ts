import { parseTopic } from '../sdk/protocol/topics.js'
import { maySubscribe } from './hooks/authorize-subscribe.js'
import type { BrokerDeps, BrokerPersistence } from './ports.js'
import { sessionOf } from './session.js'

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * How long a change that ended counts as unsettled for a device's connect: aedes takes a
 * connecting device's subscriptions from the persistence before it registers the client, and
 * a change that ends in between reaches neither the snapshot nor the live client. The window is
 * milliseconds; a minute is far beyond it.
 */
export const RECENT_CHANGE_MS = 60_000
/**
 * At most this many recent ends are kept (the oldest go first): bulk changes (1000 devices a
 * call) cannot grow the record without bound; the ones dropped ended long before any connect
 * window still open.
 */
export const RECENT_CHANGES_KEPT = 100_000

/** Which device sessions may differ from the core's record of their topics. */
export interface Settling {
  /**
   * A ticket for `reconciled` when the session may be behind the core's record (reconcile it at
   * the device's connect), undefined when it is settled.
   */
  check(regId: string): number | undefined
  /**
   * A reconcile that began with this ticket ended well: the session is settled, unless a change
   * is under way or one failed after the ticket (the reconcile read the core's record before).
   */
  reconciled(regId: string, ticket: number): void
  /** The regId's session is gone (invalidated): what is kept of it in memory goes too. */
  forget(regId: string): void
}

/**
 * Makes the persistence report app-topic membership to the core before a subscription is
 * stored or removed, whoever caused it (a device SUBSCRIBE, a server-side subscribe, an
 * UNSUBSCRIBE). The core's record is therefore never behind the broker's: after a crash (or a
 * failed write) between the two it may be ahead, and the broker reconciles the session to it
 * when the device connects.
 *
 * Only such sessions: with a persistence that keeps marks (`markUnsettled`, see the port), a
 * change marks its device durably before the core's write and settles it once the session's
 * own write is done (a change that fails leaves the mark until a reconcile that began after the
 * failure succeeds). A device whose change ended while it was connecting (RECENT_CHANGE_MS) is
 * reconciled too. A connect then reads the core's record only for such a device — not a store
 * read per reconnect, as until the twentieth session (~3 % of a reconnect's CPU in the offline
 * drain). Without marks, every connect reconciles.
 *
 * It also drops subscriptions a device is not allowed to hold: aedes persists the whole
 * SUBSCRIBE packet's list, refused entries included, for each granted entry. And it keeps the
 * session's own subscriptions queueing (QoS ≥ 1, inbox and app-wide topic never removed by the
 * device).
 */
export function trackMembership(
  persistence: BrokerPersistence,
  deps: Pick<BrokerDeps, 'membership' | 'clock'>,
): Settling {
  const add = persistence.addSubscriptions.bind(persistence)
  const remove = persistence.removeSubscriptions.bind(persistence)
  const marks =
    persistence.markUnsettled && persistence.settle && persistence.isUnsettled
      ? {
          mark: persistence.markUnsettled.bind(persistence),
          settle: persistence.settle.bind(persistence),
          isMarked: persistence.isUnsettled.bind(persistence),
        }
      : undefined
  /** Membership changes under way, per regId. */
  const changing = new Map<string, number>()
  /** Numbers each failure, and each reconcile's start (its ticket). */
  let sequence = 0
  /**
   * Devices a change failed for (the number of the latest failure): marked until a reconcile
   * that began after it succeeds, whatever comes after.
   */
  const failed = new Map<string, number>()
  /** When a device's latest change ended, for RECENT_CHANGE_MS; oldest first. */
  const recent = new Map<string, number>()

  /** Drops the ends older than the window, and the oldest beyond RECENT_CHANGES_KEPT. */
  const prune = (now: number) => {
    for (const [id, at] of recent) {
      if (at > now - RECENT_CHANGE_MS && recent.size <= RECENT_CHANGES_KEPT) break
      recent.delete(id)
    }
  }
  const ended = (regId: string) => {
    const now = deps.clock.now()
    recent.delete(regId)
    recent.set(regId, now)
    prune(now)
  }

  /** A change of the core's record and then of the session, the device marked throughout. */
  async function change<T>(regId: string, run: () => Promise<T>): Promise<T> {
    if (!marks) return run()
    changing.set(regId, (changing.get(regId) ?? 0) + 1)
    let ok = false
    try {
      await marks.mark(regId)
      const result = await run()
      ok = true
      return result
    } finally {
      const left = (changing.get(regId) ?? 1) - 1
      if (left > 0) changing.set(regId, left)
      else changing.delete(regId)
      ended(regId)
      if (!ok) failed.set(regId, ++sequence)
      else if (left === 0 && !failed.has(regId)) marks.settle(regId)
    }
  }
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
    const byApp = appTopicsOf(allowed.map((s) => s.topic))
    // only inbox and app-wide topics (a session opening): the core records nothing of them
    const done =
      byApp.size === 0
        ? add(client, allowed)
        : change(client.id as string, async () => {
            for (const [appId, topics] of byApp) {
              await deps.membership.subscribed(appId, client.id, topics)
            }
            return add(client, allowed)
          })
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
    const byApp = appTopicsOf(kept)
    if (byApp.size === 0) return remove(client, kept)
    return change(client.id as string, async () => {
      for (const [appId, names] of byApp) {
        await deps.membership.unsubscribed(appId, client.id, names)
      }
      return remove(client, kept)
    })
  }

  return {
    check(regId) {
      // what is left after the prune ended within the window (ends are kept in their order)
      if (recent.size > 0) prune(deps.clock.now())
      const unsettled =
        !marks ||
        marks.isMarked(regId) ||
        changing.has(regId) ||
        failed.has(regId) ||
        recent.has(regId)
      return unsettled ? ++sequence : undefined
    },
    reconciled(regId, ticket) {
      if (!marks || changing.has(regId)) return
      if ((failed.get(regId) ?? 0) > ticket) return
      failed.delete(regId)
      marks.settle(regId)
    },
    forget(regId) {
      failed.delete(regId)
      recent.delete(regId)
    },
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
