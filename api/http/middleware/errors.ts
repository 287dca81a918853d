import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { ErrorCode, type ErrorBody } from '../../../sdk/protocol/error-codes.js'
import { ApiError, errorLink } from '../../core/errors.js'
import type { Logger } from '../../core/logger.js'

/** The one place errors become responses (STYLE rule 1): `{ code, http, error, link }`. */
export function errorResponse(c: Context, err: ApiError): Response {
  if (err.retryAfter !== undefined) c.header('Retry-After', String(err.retryAfter))
  return c.json(errorBody(err), err.http as never)
}

/** The body of an error's answer. */
export function errorBody(err: ApiError): ErrorBody {
  return {
    code: err.code,
    http: err.http,
    error: err.message,
    link: errorLink(err.code),
    ...(err.details && { details: err.details }),
  }
}

export function createOnError(log: Logger) {
  return function onError(err: Error, c: Context): Response {
    return errorResponse(c, asApiError(err, log, c.req.method, c.req.path))
  }
}

/** What a thrown error answers: itself, its mapping, or 50001 (logged: a bug or an outage). */
export function asApiError(err: unknown, log: Logger, method: string, path: string): ApiError {
  if (err instanceof ApiError) return err
  if (err instanceof HTTPException) {
    const code =
      err.status === 413
        ? ErrorCode.BODY_TOO_LARGE
        : err.status === 401
          ? ErrorCode.MISSING_CREDENTIALS
          : ErrorCode.INVALID_REQUEST
    return new ApiError(code, err.message || undefined)
  }
  log.error({ err, method, path }, 'unhandled error')
  return new ApiError(ErrorCode.INTERNAL)
}
