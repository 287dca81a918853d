import type { IncomingMessage } from 'node:http'
import type { Context, MiddlewareHandler } from 'hono'
import type { z } from 'zod'
import { ErrorCode } from '../../../sdk/protocol/error-codes.js'
import { ApiError } from '../../core/errors.js'

/**
 * Reads a JSON body and validates it. Errors: 41501 not JSON content, 40001 unparsable or
 * wrongly shaped, or the specific code a schema attaches to a limit (title too long …).
 */
export async function readJson<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
  if (!isJson(c.req.header('content-type') ?? '')) {
    throw new ApiError(ErrorCode.UNSUPPORTED_MEDIA_TYPE)
  }
  return parseJson(await bodyText(c), schema)
}

/**
 * `readJson` for a request read off Node's `IncomingMessage` directly (the push route served
 * before the router, `api/http/push-route.ts`): the same checks and errors, `limit` enforced
 * while reading. `contentType` as the request's headers give it (duplicates joined, as hono's
 * `c.req.header()` gives them).
 */
export async function readJsonFrom<S extends z.ZodType>(
  incoming: IncomingMessage,
  contentType: string | null,
  schema: S,
  limit: number,
): Promise<z.output<S>> {
  if (!isJson(contentType ?? '')) {
    throw new ApiError(ErrorCode.UNSUPPORTED_MEDIA_TYPE)
  }
  return parseJson(await readAll(incoming, limit), schema)
}

function isJson(contentType: string): boolean {
  return /^application\/json\b/i.test(contentType)
}

function parseJson<S extends z.ZodType>(text: string, schema: S): z.output<S> {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    throw new ApiError(ErrorCode.INVALID_REQUEST, 'the body is not valid JSON')
  }
  return validate(schema, raw)
}

/**
 * The body as text. On Node it is read from the socket's request directly: building the
 * WHATWG Request (stream, abort signal) that `c.req.text()` needs costs more than the rest of
 * a push. The body limit middleware has already checked Content-Length; this enforces the same
 * limit on bodies sent without one.
 */
async function bodyText(c: Context): Promise<string> {
  const limit = (c.get('bodyLimitBytes' as never) as number | undefined) ?? Infinity
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming
  if (!incoming || incoming.readableDidRead) {
    const text = await c.req.text()
    if (Buffer.byteLength(text) > limit) throw new ApiError(ErrorCode.BODY_TOO_LARGE)
    return text
  }
  return readAll(incoming, limit)
}

/**
 * Reads the request to its end with plain listeners: a `for await` over it cost ~3 % of a
 * push's CPU (an async iterator, end-of-stream listeners and a promise per chunk). A client that
 * goes away before its body ends gets 40001, which nobody reads: not a fault of the service, so
 * not logged as one (it was logged as an unhandled error, a line any client could add at will).
 */
function readAll(incoming: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    // already gone: 'close' will not come again
    if (incoming.destroyed) return reject(cutOff())
    const chunks: Buffer[] = []
    let size = 0
    const done = (err: Error | undefined) => {
      incoming.off('data', onData)
      incoming.off('end', onEnd)
      incoming.off('error', onClose)
      incoming.off('close', onClose)
      if (err) return reject(err)
      resolve(
        chunks.length === 1
          ? (chunks[0] as Buffer).toString('utf8')
          : Buffer.concat(chunks).toString('utf8'),
      )
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size <= limit) return void chunks.push(chunk)
      done(new ApiError(ErrorCode.BODY_TOO_LARGE))
      // as leaving a `for await` does (Node's stream destroyer): detached from its socket
      // first, so that the answer still goes out on it
      ;(incoming as { socket: unknown }).socket = null
      incoming.destroy()
    }
    const onEnd = () => done(undefined)
    // 'error' is the connection reset or timed out under it ('aborted')
    const onClose = () => done(cutOff())
    incoming.on('data', onData)
    incoming.on('end', onEnd)
    incoming.on('error', onClose)
    incoming.on('close', onClose)
  })
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

/**
 * Refuses bodies over the limit: at once when Content-Length says so, while reading otherwise
 * (see bodyText). Replaces hono's bodyLimit, which wraps the body in a WHATWG stream.
 */
export function limitBody(maxBytes: number): MiddlewareHandler {
  return async function limitBodyMiddleware(c, next) {
    refuseDeclaredOver(c.req.header('content-length'), maxBytes)
    c.set('bodyLimitBytes' as never, maxBytes as never)
    await next()
  }
}

/** 41301 when a request's Content-Length says its body is over `maxBytes`. */
export function refuseDeclaredOver(contentLength: string | undefined, maxBytes: number): void {
  if (contentLength !== undefined && Number(contentLength) > maxBytes) {
    throw new ApiError(ErrorCode.BODY_TOO_LARGE)
  }
}

function cutOff(): ApiError {
  return new ApiError(ErrorCode.INVALID_REQUEST, 'the request ended before its body did')
}
