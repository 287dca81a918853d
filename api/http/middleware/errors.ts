import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { ErrorCode, type ErrorBody } from '../../../sdk/protocol/error-codes.js'
import { ApiError, errorLink } from '../../core/errors.js'
import type { Logger } from '../../core/logger.js'

/** The one place errors become responses (STYLE rule 1): `{ code, http, error, link }`. */
export function errorResponse(c: Context, err: ApiError): Response {
  const body: ErrorBody = {
    code: err.code,
    http: err.http,
    error: err.message,
    link: errorLink(err.code),
    ...(err.details && { details: err.details }),
  }
  if (err.retryAfter !== undefined) c.header('Retry-After', String(err.retryAfter))
  return c.json(body, err.http as never)
}

export function createOnError(log: Logger) {
  return function onError(err: Error, c: Context): Response {
    if (err instanceof ApiError) return errorResponse(c, err)
    if (err instanceof HTTPException) {
      const code =
        err.status === 413
          ? ErrorCode.BODY_TOO_LARGE
          : err.status === 401
            ? ErrorCode.MISSING_CREDENTIALS
            : ErrorCode.INVALID_REQUEST
      return errorResponse(c, new ApiError(code, err.message || undefined))
    }
    log.error({ err, method: c.req.method, path: c.req.path }, 'unhandled error')
    return errorResponse(c, new ApiError(ErrorCode.INTERNAL))
  }
}
