import type { Context } from 'hono'
import type { z } from 'zod'
import { ErrorCode } from '../../../sdk/protocol/error-codes.js'
import { ApiError } from '../../core/errors.js'

/**
 * Reads a JSON body and validates it. Errors: 41501 not JSON content, 40001 unparsable or
 * wrongly shaped, or the specific code a schema attaches to a limit (title too long …).
 */
export async function readJson<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
  const type = c.req.header('content-type') ?? ''
  if (!/^application\/json\b/i.test(type)) throw new ApiError(ErrorCode.UNSUPPORTED_MEDIA_TYPE)
  let raw: unknown
  try {
    raw = JSON.parse(await c.req.text())
  } catch {
    throw new ApiError(ErrorCode.INVALID_REQUEST, 'the body is not valid JSON')
  }
  return validate(schema, raw)
}

export function validate<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const parsed = schema.safeParse(value)
  if (parsed.success) return parsed.data
  const issues = parsed.error.issues
  const details = issues.map((i) => ({ path: i.path.join('.'), message: i.message }))
  const codeOf = (i: (typeof issues)[number]) => (i as { params?: { code?: unknown } }).params?.code
  const coded = issues.find((i) => typeof codeOf(i) === 'number')
  if (coded) return throwWith(codeOf(coded) as ErrorCode, coded.message, details)
  const first = details[0]
  return throwWith(
    ErrorCode.INVALID_REQUEST,
    first ? `${first.path || 'body'}: ${first.message}` : undefined,
    details,
  )
}

function throwWith(
  code: ErrorCode,
  message: string | undefined,
  details: ApiError['details'],
): never {
  throw new ApiError(code, message, { details: details ?? [] })
}
