import type { MessageKind } from './envelope.js'
import type { DeviceAttributes } from './schemas.js'

/** The target kinds of a push, as recorded on the message. */
export type TargetType = 'regId' | 'alias' | 'userAccount' | 'topic' | 'all'

/**
 * The data funnel of a message (§5.2.4): planned → invalid / filtered → valid → delivered → clicked.
 * - planned: target identifiers in the request (for topic and all: devices subscribed at send time)
 * - invalid: identifiers that lead to no valid device (unknown, unregistered, another app's)
 * - filtered: devices dropped by the message's conditions (app version, model, locale, network…)
 * - valid: devices the message was sent to
 * - delivered: devices that acknowledged it (MQTT PUBACK)
 * - clicked: devices that reported a click
 */
export interface MessageFunnel {
  planned: number
  invalid: number
  filtered: number
  valid: number
  delivered: number
  clicked: number
}

/** accepted: stored, being handed to the broker; dispatched: handed to the broker. */
export type MessageState = 'accepted' | 'dispatched'

/** Answer of POST /v1/messages. */
export interface PushResponse {
  messageId: string
  state: MessageState
  expiresAt: string
  funnel: MessageFunnel
}

/** Answer of GET /v1/messages/{id}. */
export interface MessageStatus {
  messageId: string
  appId: string
  kind: MessageKind
  targetType: TargetType
  /** The topic of a topic push. */
  topic?: string
  state: MessageState
  createdAt: string
  expiresAt: string
  expired: boolean
  funnel: MessageFunnel
}

/** Answer of GET /v1/devices/{regId} and GET /v1/device. */
export interface DeviceInfo {
  regId: string
  appId: string
  valid: boolean
  online: boolean
  registeredAt: string
  lastSeenAt: string | null
  invalidatedAt: string | null
  attributes: DeviceAttributes
  aliases: string[]
  userAccounts: string[]
  topics: string[]
}

/** An app with its credentials, as the admin API shows it. */
export interface AppInfo {
  appId: string
  name: string
  /** Devices register with the app id and this key. */
  appKey: string
  /** Servers push with this secret. Keep it on servers only. */
  appSecret: string
  createdAt: string
}

/** `POST /admin/v1/backups`: a consistent copy of the embedded database. */
export interface BackupInfo {
  /** Path of the copy on the service's machine (`<data dir>/backups/mqpush-<UTC time>.db`). */
  file: string
  bytes: number
  tookMs: number
}

/** §4.2.2: why a regId stopped being valid. */
export type InvalidReason = 'unregistered' | 'reinstalled' | 'inactive'

/** One entry of GET /v1/feedback/invalid-reg-ids. */
export interface InvalidRegId {
  regId: string
  /** ISO 8601. */
  invalidatedAt: string
  reason: InvalidReason
}

/** Answer of GET /v1/feedback/invalid-reg-ids, oldest first. */
export interface InvalidRegIdsResponse {
  regIds: InvalidRegId[]
}

/** Answer of GET /v1/aliases/{alias}. */
export interface AliasLookup {
  alias: string
  regId: string
}

/** Answer of GET /v1/user-accounts/{account}. */
export interface UserAccountLookup {
  userAccount: string
  regIds: string[]
}

/** Answer of GET /v1/topics/{topic}. */
export interface TopicInfo {
  topic: string
  subscribers: number
}

/** Answer of POST /v1/topics/{topic}/subscribe. */
export interface TopicSubscribeResult {
  topic: string
  /** Valid devices now subscribed. */
  subscribed: number
  /** The regIds or aliases that lead to no valid device of the app. */
  invalid: string[]
}

/** Answer of POST /v1/topics/{topic}/unsubscribe. */
export interface TopicUnsubscribeResult {
  topic: string
  unsubscribed: number
  invalid: string[]
}
