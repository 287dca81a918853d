import { MAX_UPSTREAM_BYTES } from '../../sdk/protocol/limits.js'
import { parseTopic } from '../../sdk/protocol/topics.js'
import type { BrokerDeps } from '../ports.js'
import { sessionOf } from '../session.js'

/** Upstream reports a device may send per second (burst of the same size). */
export const UPSTREAM_REPORTS_PER_SEC = 20

const RATE = Symbol('mqpush.upstreamRate')

/**
 * PUBLISH from a device: only its own upstream reports (`mqp/{appId}/up/{regId}/click`), QoS
 * 0 or 1, not retained, at most 1 KB, at most 20 a second. Anything else closes the connection
 * (MQTT 3.1.1 has no negative PUBACK). The report is recorded here, before the PUBACK goes out,
 * so an acknowledged click is durable. A click whose body is not `{"id":"<messageId>"}` is
 * acknowledged and ignored.
 */
export function createAuthorizePublish(deps: BrokerDeps) {
  return async function authorizePublish(
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    client: any,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    packet: any,
  ): Promise<void> {
    const session = sessionOf(client)
    if (!session) throw new Error('not a device session')
    const t = parseTopic(packet.topic)
    if (!t || t.type !== 'upstream' || t.appId !== session.appId || t.regId !== session.regId) {
      throw new Error(`publishing to ${packet.topic} is not allowed`)
    }
    if (packet.retain) throw new Error('retained upstream reports are not allowed')
    if (packet.qos > 1) throw new Error('upstream reports use QoS 0 or 1')
    const payload: Buffer = packet.payload
    if (payload.length > MAX_UPSTREAM_BYTES) throw new Error('upstream report too large')
    if (!withinRate(client, deps.clock.now())) throw new Error('too many upstream reports')
    if (t.report === 'click') {
      const id = messageIdOf(payload)
      if (id) await deps.receipts.clicked(session.appId, session.regId, id)
    }
  }
}

function messageIdOf(payload: Buffer): string | undefined {
  try {
    const body: unknown = JSON.parse(payload.toString('utf8'))
    const id = (body as { id?: unknown } | null)?.id
    return typeof id === 'string' ? id : undefined
  } catch {
    return undefined
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function withinRate(client: any, now: number): boolean {
  let r = client[RATE] as { second: number; count: number } | undefined
  const second = Math.floor(now / 1000)
  if (!r || r.second !== second) r = client[RATE] = { second, count: 0 }
  return ++r.count <= UPSTREAM_REPORTS_PER_SEC
}
