/**
 * Stable numeric error codes of the mqpush API: HTTP status × 100 + n.
 * Both SDKs switch on these; the server's catalogue (api/core/errors.ts) adds the HTTP status,
 * the message and the documentation anchor. Never renumber a code; add new ones at the end.
 */
export const ErrorCode = {
  /** The body is not valid JSON, or a field has the wrong type, or an unknown field is present. */
  INVALID_REQUEST: 40001,
  /** Notification title longer than 50 characters. */
  TITLE_TOO_LONG: 40002,
  /** Notification description longer than 128 characters. */
  DESCRIPTION_TOO_LONG: 40003,
  /** More than 1000 regIds / aliases / userAccounts in one call. */
  TOO_MANY_TARGETS: 40004,
  /** TTL outside 1 second … 14 days. */
  TTL_OUT_OF_RANGE: 40005,
  /** No target, or more than one kind of target, in one push. */
  INVALID_TARGET: 40006,
  /** A topic, alias or userAccount name that breaks the naming rules. */
  INVALID_NAME: 40007,
  /** Custom key-values (extra) too many, too long or not strings. */
  INVALID_EXTRA: 40008,
  /** A notification needs a title and a description; a pass-through message needs a payload. */
  MISSING_CONTENT: 40009,
  /** A regId that is not in the regId format. */
  INVALID_REG_ID: 40010,

  /** No credentials were sent. */
  MISSING_CREDENTIALS: 40101,
  /** The app secret is wrong. */
  INVALID_APP_SECRET: 40102,
  /** The app id / app key pair used for device registration is wrong. */
  INVALID_APP_KEY: 40103,
  /** The device's regId / token pair is wrong, or the regId is no longer valid. */
  INVALID_DEVICE_TOKEN: 40104,
  /** The admin token is wrong. */
  INVALID_ADMIN_TOKEN: 40105,

  /** No such route. */
  NOT_FOUND: 40401,
  MESSAGE_NOT_FOUND: 40402,
  DEVICE_NOT_FOUND: 40403,
  APP_NOT_FOUND: 40404,
  ALIAS_NOT_FOUND: 40405,
  USER_ACCOUNT_NOT_FOUND: 40406,

  /** The request body is larger than the API accepts. */
  BODY_TOO_LARGE: 41301,
  /** Payload larger than 4 KB (UTF-8 bytes). */
  PAYLOAD_TOO_LARGE: 41302,
  /** A request with a body must be `application/json`. */
  UNSUPPORTED_MEDIA_TYPE: 41501,

  /** Too many requests; retry after the number of seconds in `Retry-After`. */
  RATE_LIMITED: 42901,
  /** Too many failed authentication attempts from this address; retry later. */
  AUTH_RATE_LIMITED: 42902,

  /** An unexpected error; the server logged it. */
  INTERNAL: 50001,
  /** The service is starting or stopping. */
  UNAVAILABLE: 50301,
  /** Not enough free disk space beside the database for a backup copy. */
  BACKUP_NO_SPACE: 50701,
} as const

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

/** The body of every error answer of the HTTP API. */
export interface ErrorBody {
  code: ErrorCode
  http: number
  error: string
  link: string
  /** Field-level details for validation errors. */
  details?: Array<{ path: string; message: string }>
}
