import { MAX_NAME_CHARS } from './limits.js'

/**
 * Topic names, aliases and userAccounts: 1–128 characters, no MQTT separators or wildcards
 * (`/`, `+`, `#`), no control characters, and no leading `$` (reserved by MQTT for the broker).
 */
// eslint-disable-next-line no-control-regex -- control characters are exactly what it refuses
const NAME_PATTERN = /^[^/+#$\u0000-\u001f\u007f][^/+#\u0000-\u001f\u007f]*$/u

export function isValidName(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    value.length > 0 &&
    charCount(value) <= MAX_NAME_CHARS &&
    NAME_PATTERN.test(value)
  )
}

/** Counts characters as the product spec does: every code point is one, whatever its script. */
export function charCount(value: string): number {
  let n = 0
  for (const _ of value) n++
  return n
}

/** UTF-8 length without allocating (this module runs in browsers too, so no Buffer). */
export function utf8Bytes(value: string): number {
  let bytes = 0
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c < 0x80) bytes += 1
    else if (c < 0x800) bytes += 2
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < value.length) {
      const d = value.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) {
        bytes += 4
        i++
      } else bytes += 3
    } else bytes += 3
  }
  return bytes
}
