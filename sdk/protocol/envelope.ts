import type { MessageId } from './ids.js'
import { MESSAGE_ID_LENGTH, isMessageId } from './ids.js'

/** §4.1: a notification is shown by the device; a pass-through message is handed to the app. */
export type MessageKind = 'notification' | 'passThrough'

/** §4.3.8: how a notification alerts; a bit set, -1 for all (MiPush's DEFAULT_ALL). */
export const NotifyType = {
  ALL: -1,
  SOUND: 1,
  VIBRATE: 2,
  LIGHTS: 4,
} as const

/** What the push was addressed to, as the device sees it. */
export type EnvelopeTarget =
  | { type: 'regId' }
  | { type: 'alias'; alias: string }
  | { type: 'userAccount'; userAccount: string }
  | { type: 'topic'; topic: string }
  | { type: 'all' }

/**
 * The JSON document every pushed MQTT message carries (QoS 1).
 * `id` and `expiresAt` always come first and at fixed offsets: the broker checks expiry on every
 * forward by reading 13 digits, without parsing JSON (ARCHITECTURE: no parse on the hot path).
 */
export interface PushEnvelope {
  id: MessageId
  /** Milliseconds since the epoch; the message is never delivered at or after this instant. */
  expiresAt: number
  kind: MessageKind
  /** Milliseconds since the epoch, when the service accepted the message. */
  sentAt: number
  target: EnvelopeTarget
  title?: string
  description?: string
  payload?: string
  extra?: Record<string, string>
  /** §4.3.4: notifications with the same notifyId replace each other. */
  notifyId?: number
  notifyType?: number
}

/** The upstream report a device publishes when the user opens a notification. */
export interface ClickReport {
  id: MessageId
}

const HEAD = '{"id":"'
const MID = '","expiresAt":'
const ID_OFFSET = HEAD.length
const MID_OFFSET = ID_OFFSET + MESSAGE_ID_LENGTH
const EXPIRES_OFFSET = MID_OFFSET + MID.length
const EXPIRES_DIGITS = 13
/** Bytes before the rest of the document; exported for tests. */
export const ENVELOPE_HEADER_BYTES = EXPIRES_OFFSET + EXPIRES_DIGITS

const HEAD_CODES = Array.from(HEAD, (c) => c.charCodeAt(0))
const MID_CODES = Array.from(MID, (c) => c.charCodeAt(0))
const ID_CODES: number[] = new Array<number>(MESSAGE_ID_LENGTH).fill(0)

/** Serializes an envelope with `id` and `expiresAt` first, at fixed offsets. */
export function encodeEnvelope(envelope: PushEnvelope): string {
  const { id, expiresAt, ...rest } = envelope
  if (!isMessageId(id)) throw new TypeError(`invalid message id ${String(id)}`)
  if (!Number.isInteger(expiresAt) || expiresAt < 1e12 || expiresAt >= 1e13) {
    throw new TypeError(`expiresAt must be a 13-digit millisecond timestamp, got ${expiresAt}`)
  }
  // rest always holds kind, sentAt and target, so it is never "{}"
  return `${HEAD}${id}${MID}${expiresAt},${JSON.stringify(rest).slice(1)}`
}

/**
 * Reads `expiresAt` from an encoded envelope without parsing it.
 * Returns undefined when the bytes are not an mqpush envelope.
 */
export function readEnvelopeExpiry(bytes: Uint8Array): number | undefined {
  if (bytes.length <= ENVELOPE_HEADER_BYTES) return undefined
  for (let i = 0; i < HEAD_CODES.length; i++) if (bytes[i] !== HEAD_CODES[i]) return undefined
  for (let i = 0; i < MID_CODES.length; i++) {
    if (bytes[MID_OFFSET + i] !== MID_CODES[i]) return undefined
  }
  let value = 0
  for (let i = EXPIRES_OFFSET; i < ENVELOPE_HEADER_BYTES; i++) {
    const digit = (bytes[i] as number) - 48
    if (digit < 0 || digit > 9) return undefined
    value = value * 10 + digit
  }
  return value
}

/** Reads the message id from an encoded envelope without parsing it. */
export function readEnvelopeId(bytes: Uint8Array): MessageId | undefined {
  if (readEnvelopeExpiry(bytes) === undefined) return undefined
  // one call per delivered packet (the PUBACK receipt): the codes go through one reused array
  // (spreading a subarray into String.fromCharCode went through an iterator, and was a fifth
  // of the bytes a broadcast allocated)
  for (let i = 0; i < MESSAGE_ID_LENGTH; i++) ID_CODES[i] = bytes[ID_OFFSET + i] as number
  const id = String.fromCharCode.apply(null, ID_CODES)
  return isMessageId(id) ? id : undefined
}

/** Parses an envelope as a device receives it; throws on anything that is not one. */
export function decodeEnvelope(input: string | Uint8Array): PushEnvelope {
  const text = typeof input === 'string' ? input : new TextDecoder().decode(input)
  const value: unknown = JSON.parse(text)
  if (!isEnvelope(value)) throw new TypeError('not an mqpush envelope')
  return value
}

function isEnvelope(value: unknown): value is PushEnvelope {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return (
    isMessageId(v.id) &&
    typeof v.expiresAt === 'number' &&
    (v.kind === 'notification' || v.kind === 'passThrough') &&
    typeof v.sentAt === 'number' &&
    typeof v.target === 'object' &&
    v.target !== null
  )
}
