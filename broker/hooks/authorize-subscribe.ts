import { parseTopic } from '../../sdk/protocol/topics.js'
import type { DeviceSession } from '../ports.js'
import { sessionOf } from '../session.js'

/**
 * Whether a device may hold a subscription to this topic: its own inbox, its app's broadcast
 * topic, or one of its app's topics. No wildcards, nothing of another app, no upstream topics.
 */
export function maySubscribe(session: DeviceSession, topic: string): boolean {
  // the two topics every device holds, which aedes authorizes again at each of its connects
  // (its restored subscriptions): answered without parsing, as the parse below would answer
  if (isOwnInboxOrBroadcast(session, topic)) return true
  const t = parseTopic(topic)
  if (!t || t.appId !== session.appId) return false
  if (t.type === 'inbox') return t.regId === session.regId
  return t.type === 'all' || t.type === 'topic'
}

/** `topic` is `{prefix}all` or `{prefix}d/{regId}` of this very session. */
function isOwnInboxOrBroadcast(session: DeviceSession, topic: string): boolean {
  const { prefix, regId } = session
  const rest = topic.length - prefix.length
  if (!topic.startsWith(prefix)) return false
  if (rest === 3) return topic.endsWith('all')
  return (
    rest === 2 + regId.length &&
    topic.charCodeAt(prefix.length) === 100 && // 'd'
    topic.charCodeAt(prefix.length + 1) === 47 && // '/'
    topic.endsWith(regId)
  )
}

/**
 * SUBSCRIBE: allowed topics are granted with QoS ≤ 1 (the service publishes with QoS 1);
 * anything else is refused with granted QoS 128. The subscription object is changed in place
 * because aedes persists the packet's own subscription list.
 */
export function createAuthorizeSubscribe() {
  return async function authorizeSubscribe(
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    client: any,
    sub: { topic: string; qos: number },
  ): Promise<{ topic: string; qos: number } | null> {
    const session = sessionOf(client)
    if (!session || !maySubscribe(session, sub.topic)) return null
    if (sub.qos > 1) sub.qos = 1
    return sub
  }
}
