/**
 * Identifiers of the wire protocol, branded so that a regId is never passed where an app id goes.
 * Formats:
 * - AppId: `ap` + 14 lowercase base36 characters.
 * - RegId: 22 base62 characters. MQTT 3.1.1 obliges servers to accept client ids of 1–23
 *   characters of [0-9a-zA-Z] [MQTT-3.1.3-5]; staying inside that set and length means every
 *   MQTT client library can use a regId as its client id.
 * - MessageId: 20 characters: `m`, 9 base36 characters of the creation time in milliseconds,
 *   10 random base36 characters. Fixed length, so the envelope header can be read at fixed offsets.
 */
export type AppId = string & { readonly __brand: 'AppId' }
export type RegId = string & { readonly __brand: 'RegId' }
export type MessageId = string & { readonly __brand: 'MessageId' }

export const APP_ID_PATTERN = /^ap[0-9a-z]{14}$/
export const REG_ID_PATTERN = /^[0-9A-Za-z]{22}$/
export const MESSAGE_ID_PATTERN = /^m[0-9a-z]{19}$/
export const MESSAGE_ID_LENGTH = 20

export function isAppId(value: unknown): value is AppId {
  return typeof value === 'string' && APP_ID_PATTERN.test(value)
}

export function isRegId(value: unknown): value is RegId {
  return typeof value === 'string' && REG_ID_PATTERN.test(value)
}

export function isMessageId(value: unknown): value is MessageId {
  return typeof value === 'string' && MESSAGE_ID_PATTERN.test(value)
}
