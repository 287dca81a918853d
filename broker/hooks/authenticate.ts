import type { BrokerDeps } from '../ports.js'
import { addressOf, setSession } from '../session.js'
import { ConnackError } from './connack-error.js'

/**
 * CONNECT: client id = regId, username = app id, password = device token, clean session off.
 * - a refused address (too many failures) gets CONNACK 5 without a store lookup;
 * - clean=true gets CONNACK 5: the device's session holds its inbox and topic subscriptions,
 *   which a clean session would wipe;
 * - wrong or missing credentials get CONNACK 4 and count as a failure of the address;
 * - the right token of an invalidated regId gets CONNACK 4 without counting.
 */
export function createAuthenticate(deps: BrokerDeps) {
  return async function authenticate(
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    client: any,
    username: string | undefined,
    password: Buffer | undefined,
  ): Promise<void> {
    // read before the lookup, whatever it costs (a getpeername system call): a socket that
    // closes while the store answers has no address left, and its failure must still count
    // against its own
    const address = addressOf(client)
    if (deps.authFailures.isLimited(address)) {
      throw new ConnackError(5, 'too many failed authentications from this address')
    }
    if (!username || !password || password.length === 0) {
      deps.authFailures.record(address)
      throw new ConnackError(4, 'username (app id) and password (device token) are required')
    }
    const device = await deps.authenticateDevice(username, client.id, password.toString('utf8'))
    if (!device) {
      deps.authFailures.record(address)
      throw new ConnackError(4, 'bad app id, regId or token')
    }
    // a device whose regId became invalid: refused, but not counted as a guess, so that many
    // stale devices behind one address do not lock out the valid ones
    if (!device.valid) throw new ConnackError(4, 'this regId is no longer valid: register again')
    if (client.clean) {
      throw new ConnackError(5, 'devices must connect with clean session off (clean=false)')
    }
    // devices have no use for a will, and a stored will outlives crashes: none is kept
    client._will = null
    setSession(client, device.appId, device.regId)
  }
}
