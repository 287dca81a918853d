import { ErrorCode } from '../../sdk/protocol/error-codes.js'

/** One entry of the error catalogue: HTTP status and the default message. */
interface CatalogueEntry {
  http: number
  message: string
}

/**
 * The error catalogue (STYLE rule 1): every error the API answers, with its HTTP status.
 * Codes live in sdk/protocol/error-codes.ts; docs/errors.md explains each one.
 */
export const ERROR_CATALOGUE: Record<ErrorCode, CatalogueEntry> = {
  [ErrorCode.INVALID_REQUEST]: { http: 400, message: 'the request is not valid' },
  [ErrorCode.TITLE_TOO_LONG]: { http: 400, message: 'title is longer than 50 characters' },
  [ErrorCode.DESCRIPTION_TOO_LONG]: {
    http: 400,
    message: 'description is longer than 128 characters',
  },
  [ErrorCode.TOO_MANY_TARGETS]: { http: 400, message: 'more than 1000 targets in one call' },
  [ErrorCode.TTL_OUT_OF_RANGE]: { http: 400, message: 'ttlSeconds must be 1 … 1209600' },
  [ErrorCode.INVALID_TARGET]: { http: 400, message: 'the target is missing or ambiguous' },
  [ErrorCode.INVALID_NAME]: {
    http: 400,
    message: 'names are 1–128 characters without / + # or control characters',
  },
  [ErrorCode.INVALID_EXTRA]: { http: 400, message: 'extra is not valid' },
  [ErrorCode.MISSING_CONTENT]: { http: 400, message: 'the message has no content' },
  [ErrorCode.INVALID_REG_ID]: { http: 400, message: 'not a regId' },
  [ErrorCode.MISSING_CREDENTIALS]: { http: 401, message: 'credentials are missing' },
  [ErrorCode.INVALID_APP_SECRET]: { http: 401, message: 'the app secret is not valid' },
  [ErrorCode.INVALID_APP_KEY]: { http: 401, message: 'the app id or app key is not valid' },
  [ErrorCode.INVALID_DEVICE_TOKEN]: {
    http: 401,
    message: 'the regId or device token is not valid',
  },
  [ErrorCode.INVALID_ADMIN_TOKEN]: { http: 401, message: 'the admin token is not valid' },
  [ErrorCode.NOT_FOUND]: { http: 404, message: 'no such route' },
  [ErrorCode.MESSAGE_NOT_FOUND]: { http: 404, message: 'no such message' },
  [ErrorCode.DEVICE_NOT_FOUND]: { http: 404, message: 'no such device' },
  [ErrorCode.APP_NOT_FOUND]: { http: 404, message: 'no such app' },
  [ErrorCode.ALIAS_NOT_FOUND]: { http: 404, message: 'no device has this alias' },
  [ErrorCode.USER_ACCOUNT_NOT_FOUND]: { http: 404, message: 'no device has this userAccount' },
  [ErrorCode.BODY_TOO_LARGE]: { http: 413, message: 'the request body is too large' },
  [ErrorCode.PAYLOAD_TOO_LARGE]: { http: 413, message: 'payload is larger than 4096 bytes' },
  [ErrorCode.UNSUPPORTED_MEDIA_TYPE]: {
    http: 415,
    message: 'send the body as application/json',
  },
  [ErrorCode.RATE_LIMITED]: { http: 429, message: 'too many requests' },
  [ErrorCode.AUTH_RATE_LIMITED]: {
    http: 429,
    message: 'too many failed authentications from this address',
  },
  [ErrorCode.INTERNAL]: { http: 500, message: 'internal error' },
  [ErrorCode.UNAVAILABLE]: { http: 503, message: 'the service is not ready' },
  [ErrorCode.BACKUP_NO_SPACE]: {
    http: 507,
    message: 'not enough free disk space for a backup copy of the database',
  },
}

export interface ErrorDetail {
  path: string
  message: string
}

/** The one error type the core and the HTTP layer throw; mapped to a response in one place. */
export class ApiError extends Error {
  override name = 'ApiError'
  readonly code: ErrorCode
  readonly details: ErrorDetail[] | undefined
  /** Seconds, for 429 answers. */
  readonly retryAfter: number | undefined

  constructor(
    code: ErrorCode,
    message?: string,
    options: { details?: ErrorDetail[]; retryAfter?: number } = {},
  ) {
    super(message ?? ERROR_CATALOGUE[code].message)
    this.code = code
    this.details = options.details
    this.retryAfter = options.retryAfter
  }

  get http(): number {
    return ERROR_CATALOGUE[this.code].http
  }
}

export function errorLink(code: ErrorCode): string {
  return `docs/errors.md#${code}`
}
