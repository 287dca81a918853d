import { readEnvelopeExpiry } from '../../sdk/protocol/envelope.js'
import type { BrokerDeps } from '../ports.js'
import { sessionOf } from '../session.js'

/**
 * Every packet on its way to a device, online or from the offline queue (sync, no I/O):
 * - only topics of the device's own app (defence in depth behind the subscribe ACL);
 * - an expired message is never delivered: its expiry is read from the envelope header at a
 *   fixed offset, without parsing JSON.
 */
export function createAuthorizeForward(deps: Pick<BrokerDeps, 'clock'>) {
  return function authorizeForward(
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    client: any,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    packet: any,
  ) {
    const session = sessionOf(client)
    if (!session || !(packet.topic as string).startsWith(session.prefix)) return null
    const expiresAt = readEnvelopeExpiry(packet.payload)
    if (expiresAt !== undefined && expiresAt <= deps.clock.now()) return null
    return packet
  }
}
