/**
 * The product limits of mqpush, shared by the API, the broker and both SDKs.
 * Each is a number with its unit in the name; the reason is the product spec section.
 */

/** §4.3.1: the longest a message may wait for an offline device. */
export const MAX_TTL_MS = 14 * 24 * 60 * 60 * 1000
/** §4.3.1: without an explicit TTL a message lives as long as allowed. */
export const DEFAULT_TTL_MS = MAX_TTL_MS
/** A TTL shorter than one second cannot reach anybody and is almost certainly a unit mistake. */
export const MIN_TTL_MS = 1000

/** §5.1.1: notification title, counted in characters (a letter, a space or a CJK character is 1). */
export const MAX_TITLE_CHARS = 50
/** §5.1.1: notification description, counted in characters. */
export const MAX_DESCRIPTION_CHARS = 128
/** §8.4 / §5.1.1: the data a message carries, counted in UTF-8 bytes. */
export const MAX_PAYLOAD_BYTES = 4096
/** Custom key-values (§4.3.6) travel with the payload; they get their own budget of the same size. */
export const MAX_EXTRA_BYTES = 4096
export const MAX_EXTRA_KEYS = 32
export const MAX_EXTRA_KEY_CHARS = 64

/** §3.1.4: a unicast call carries at most 1000 regIds / aliases / userAccounts. */
export const MAX_TARGETS_PER_CALL = 1000
/** §4.2.3: a userAccount maps to at most 10 devices; the 11th evicts the oldest. */
export const MAX_DEVICES_PER_USER_ACCOUNT = 10
/** §4.3.5: a scheduled push starts at most 30 days ahead. */
export const MAX_SCHEDULE_AHEAD_MS = 30 * 24 * 60 * 60 * 1000

/** Names of topics, aliases and userAccounts: characters, not bytes. */
export const MAX_NAME_CHARS = 128
/** §4.3.4: up to 10000 notification categories coexist. */
export const MAX_NOTIFY_ID = 9999

/** Device attributes sent at registration (model, OS, app version, locale). */
export const MAX_ATTRIBUTE_CHARS = 64

/** An upstream report (click) is a message id in a tiny JSON document. */
export const MAX_UPSTREAM_BYTES = 1024
