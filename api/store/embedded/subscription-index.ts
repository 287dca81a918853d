import QlobberSub from 'qlobber/aedes/qlobber-sub.js'

/** One queueing subscription as aedes reads it from `subscriptionsByTopic`. */
export interface IndexedSub {
  readonly clientId: string
  readonly topic: string
  readonly qos: number
  readonly rh: number | undefined
  readonly rap: boolean | number | undefined
  readonly nl: boolean | number | undefined
}

const QLOBBER_OPTIONS = { wildcard_one: '+', wildcard_some: '#', separator: '/' }

/** A filter with no wildcard matches exactly one topic: itself. */
function isExact(topic: string): boolean {
  return !topic.includes('+') && !topic.includes('#')
}

/**
 * Which clients' subscriptions match a published topic (QoS ≥ 1 subscriptions only: those are
 * the ones that queue).
 *
 * Every device subscription is a topic without wildcards — its inbox, its app's broadcast
 * topic, its app topics — so those are kept in a map from topic to subscribers, answered by one
 * lookup, with one shared record per subscription. Only filters with wildcards (integrations
 * subscribing directly) go into a qlobber trie. aedes' QlobberSub answered every publish by
 * walking its trie and building a new object per matching subscription: for a push to one
 * device that walk was ~3 % of the push's CPU, and for a broadcast it built one object per
 * device.
 *
 * A topic's subscribers are one record while there is one (an inbox), a map once there are
 * more (a broadcast topic).
 */
export class SubscriptionIndex {
  readonly #exact = new Map<string, IndexedSub | Map<string, IndexedSub>>()
  #exactCount = 0
  readonly #wild = new QlobberSub(QLOBBER_OPTIONS)

  /** How many subscriptions are indexed. */
  get count(): number {
    return this.#exactCount + this.#wild.subscriptionsCount
  }

  /** Adds the subscription, or replaces that client's subscription to this topic. */
  add(sub: IndexedSub): void {
    if (!isExact(sub.topic)) {
      this.#wild.add(sub.topic, sub)
      return
    }
    const held = this.#exact.get(sub.topic)
    if (held === undefined) {
      this.#exact.set(sub.topic, sub)
      this.#exactCount++
    } else if (held instanceof Map) {
      const size = held.size
      held.set(sub.clientId, sub)
      if (held.size > size) this.#exactCount++
    } else if (held.clientId === sub.clientId) {
      this.#exact.set(sub.topic, sub)
    } else {
      this.#exact.set(
        sub.topic,
        new Map([
          [held.clientId, held],
          [sub.clientId, sub],
        ]),
      )
      this.#exactCount++
    }
  }

  remove(clientId: string, topic: string): void {
    if (!isExact(topic)) {
      this.#wild.remove(topic, { clientId, topic })
      return
    }
    const held = this.#exact.get(topic)
    if (held === undefined) return
    if (held instanceof Map) {
      if (!held.delete(clientId)) return
      this.#exactCount--
      if (held.size === 1) this.#exact.set(topic, held.values().next().value as IndexedSub)
    } else if (held.clientId === clientId) {
      this.#exact.delete(topic)
      this.#exactCount--
    }
  }

  /** The subscriptions that match this published topic; a new array, shared records. */
  match(topic: string): IndexedSub[] {
    const out: IndexedSub[] =
      this.#wild.subscriptionsCount > 0 ? (this.#wild.match(topic) as IndexedSub[]) : []
    const held = this.#exact.get(topic)
    if (held === undefined) return out
    if (!(held instanceof Map)) {
      out.push(held)
      return out
    }
    for (const sub of held.values()) out.push(sub)
    return out
  }
}
