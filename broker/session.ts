import type { DeviceSession } from './ports.js'
import { TOPIC_ROOT } from '../sdk/protocol/topics.js'

/** Where the broker keeps the device session on an aedes client. */
const SESSION = Symbol('mqpush.session')

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyClient = any

export function setSession(client: AnyClient, appId: string, regId: string): void {
  const session: DeviceSession = { appId, regId, prefix: `${TOPIC_ROOT}/${appId}/` }
  client[SESSION] = session
}

export function sessionOf(client: AnyClient): DeviceSession | undefined {
  return client?.[SESSION] as DeviceSession | undefined
}

/** The remote address of a client, over TCP, TLS or WebSocket. */
export function addressOf(client: AnyClient): string {
  return (
    client?.conn?.remoteAddress ??
    client?.req?.socket?.remoteAddress ??
    client?.connDetails?.ipAddress ??
    'unknown'
  )
}
