import { ConnackError } from './connack-error.js'
import type { BrokerLogger } from '../ports.js'

/**
 * The only callback code of the broker (STYLE rule 5): turns the async hooks into the callback
 * signatures aedes expects, and errors into CONNACK codes or refusals.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
type Callback = (...args: any[]) => void

export function adaptAuthenticate(
  fn: (client: any, username: string | undefined, password: Buffer | undefined) => Promise<void>,
  log: BrokerLogger,
) {
  return (
    client: any,
    username: string | undefined,
    password: Buffer | undefined,
    cb: Callback,
  ) => {
    fn(client, username, password).then(
      () => cb(null, true),
      (err: unknown) => {
        if (err instanceof ConnackError) {
          log.debug({ clientId: client.id, returnCode: err.returnCode }, err.message)
          cb(Object.assign(new Error(err.message), { returnCode: err.returnCode }), false)
        } else {
          log.error({ err, clientId: client.id }, 'authentication failed unexpectedly')
          cb(Object.assign(new Error('server unavailable'), { returnCode: 3 }), false)
        }
      },
    )
  }
}

export function adaptAuthorizePublish(
  fn: (client: any, packet: any) => Promise<void>,
  log: BrokerLogger,
) {
  return (client: any, packet: any, cb: Callback) => {
    fn(client, packet).then(
      () => cb(null),
      (err: Error) => {
        log.debug({ clientId: client?.id, topic: packet?.topic }, `publish refused: ${err.message}`)
        cb(err)
      },
    )
  }
}

export function adaptAuthorizeSubscribe(
  fn: (client: any, sub: any) => Promise<any>,
  log: BrokerLogger,
) {
  return (client: any, sub: any, cb: Callback) => {
    fn(client, sub).then(
      (granted) => cb(null, granted),
      (err: Error) => {
        log.error({ err, clientId: client?.id }, 'subscribe authorization failed unexpectedly')
        cb(null, null)
      },
    )
  }
}
