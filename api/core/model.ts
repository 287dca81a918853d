import type { EnvelopeTarget, MessageKind } from '../../sdk/protocol/envelope.js'
import type { AppId, MessageId, RegId } from '../../sdk/protocol/ids.js'
import type {
  InvalidReason,
  MessageFunnel,
  MessageState,
  TargetType,
} from '../../sdk/protocol/responses.js'
import type { DeviceAttributes, Target } from '../../sdk/protocol/schemas.js'

export type { AppId, MessageId, RegId }

export interface App {
  id: AppId
  name: string
  /** Devices register with this key (it ships inside apps, so it is not a secret). */
  key: string
  /** Servers push with this secret. */
  secret: string
  createdAt: number
}

export type { InvalidReason } from '../../sdk/protocol/responses.js'

export interface Device {
  regId: RegId
  appId: AppId
  /** sha256 of the device token; the token itself is only known to the device. */
  tokenHash: string
  installationId: string | undefined
  attributes: DeviceAttributes
  registeredAt: number
  lastSeenAt: number | undefined
  invalidatedAt: number | undefined
  invalidReason: InvalidReason | undefined
}

/** What a message shows or carries; everything of the envelope but the addressing. */
export interface MessageContent {
  kind: MessageKind
  title?: string
  description?: string
  payload?: string
  extra?: Record<string, string>
  notifyId?: number
  notifyType?: number
}

export interface MessageRecord {
  id: MessageId
  appId: AppId
  targetType: TargetType
  /** The target as requested (regIds, aliases, userAccounts, topic or all). */
  target: Target
  content: MessageContent
  createdAt: number
  expiresAt: number
  state: MessageState
  funnel: MessageFunnel
}

/** One envelope for one device (unicast) — the envelope target differs per alias / userAccount. */
export interface Delivery {
  regId: RegId
  target: EnvelopeTarget
}
