import type { DeviceSession } from './ports.js'
import { TOPIC_ROOT } from '../sdk/protocol/topics.js'

/** Where the broker keeps the device session on an aedes client. */
const SESSION = Symbol('mqpush.session')

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyClient = any

/**
 * One app id and topic prefix string per app, shared by the sessions of all its devices (the
 * store hands out a fresh string per lookup; a connected device keeps its session for as long
 * as it stays). Bounded by the number of apps.
 */
const APP_STRINGS = new Map<string, { appId: string; prefix: string }>()

function appStrings(appId: string): { appId: string; prefix: string } {
  let s = APP_STRINGS.get(appId)
  if (!s) {
    s = { appId, prefix: `${TOPIC_ROOT}/${appId}/` }
    APP_STRINGS.set(appId, s)
  }
  return s
}

export function setSession(client: AnyClient, appId: string, regId: string): void {
  const app = appStrings(appId)
  const session: DeviceSession = {
    appId: app.appId,
    // the client id is the regId the device authenticated with: the same string, kept once
    regId: client.id === regId ? (client.id as string) : regId,
    prefix: app.prefix,
  }
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
