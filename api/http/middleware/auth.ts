import type { Context, MiddlewareHandler } from 'hono'
import type { IncomingMessage } from 'node:http'
import { ErrorCode } from '../../../sdk/protocol/error-codes.js'
import { ApiError } from '../../core/errors.js'
import { safeEqual } from '../../core/ids.js'
import type { App } from '../../core/model.js'
import type { HttpDeps, HttpEnv } from '../deps.js'

/** The client's address (the socket's; no proxy headers are trusted). */
export function clientAddress(c: Context): string {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming
  return incoming ? addressOf(incoming) : 'local' // app.request() in tests has no socket
}

/** `clientAddress` of a Node request. */
export function addressOf(incoming: IncomingMessage): string {
  return incoming.socket?.remoteAddress ?? 'unknown'
}

/**
 * Runs an authentication and counts its failure against the client address; an address over
 * its limit gets 42902 before any credential is checked.
 */
export function guarded<T>(c: Context, deps: HttpDeps, check: () => Promise<T>): Promise<T> {
  return guardedAt(clientAddress(c), deps, check)
}

/** `guarded` for a client `address` known without a hono context. */
export async function guardedAt<T>(
  address: string,
  deps: HttpDeps,
  check: () => Promise<T>,
): Promise<T> {
  if (deps.limits.authFailures.isLimited(address)) {
    throw new ApiError(ErrorCode.AUTH_RATE_LIMITED, undefined, { retryAfter: 60 })
  }
  try {
    return await check()
  } catch (err) {
    if (err instanceof ApiError && err.http === 401) deps.limits.authFailures.take(address)
    throw err
  }
}

function credentials(c: Context, scheme: 'Bearer' | 'Basic'): string {
  const header = c.req.header('authorization')
  if (scheme === 'Bearer') return bearerCredentials(header)
  if (!header) throw new ApiError(ErrorCode.MISSING_CREDENTIALS)
  const m = /^Basic\s+(.+)$/i.exec(header.trim())
  if (!m) throw new ApiError(ErrorCode.MISSING_CREDENTIALS, 'use HTTP Basic: regId and token')
  return Buffer.from(m[1] as string, 'base64').toString('utf8')
}

/** The secret of an `Authorization: Bearer <secret>` header (or MiPush's `key=<secret>`). */
export function bearerCredentials(header: string | undefined): string {
  if (!header) throw new ApiError(ErrorCode.MISSING_CREDENTIALS)
  // MiPush sends `key=<secret>`; both forms are accepted
  const m = /^(?:Bearer\s+|key=)(.+)$/i.exec(header.trim())
  if (!m) throw new ApiError(ErrorCode.MISSING_CREDENTIALS, 'use Authorization: Bearer <secret>')
  return (m[1] as string).trim()
}

/** Servers: `Authorization: Bearer <app secret>` (or MiPush's `key=<app secret>`). */
export function appAuth(deps: HttpDeps): MiddlewareHandler<HttpEnv> {
  return async function appAuthMiddleware(c, next) {
    c.set('app', await authenticateApp(deps, clientAddress(c), c.req.header('authorization')))
    await next()
  }
}

/** The app whose secret `authorization` carries, guarded by the failure limit of `address`. */
export function authenticateApp(
  deps: HttpDeps,
  address: string,
  authorization: string | undefined,
): Promise<App> {
  return guardedAt(address, deps, () =>
    deps.apps.authenticateSecret(bearerCredentials(authorization)),
  )
}

/** Devices: HTTP Basic with the regId as user and the device token as password. */
export function deviceAuth(deps: HttpDeps): MiddlewareHandler<HttpEnv> {
  return async function deviceAuthMiddleware(c, next) {
    const device = await guarded(c, deps, async () => {
      const pair = credentials(c, 'Basic')
      const colon = pair.indexOf(':')
      if (colon < 0) throw new ApiError(ErrorCode.INVALID_DEVICE_TOKEN)
      return deps.devices.authenticate(pair.slice(0, colon), pair.slice(colon + 1))
    })
    c.set('device', device)
    await next()
  }
}

/** Operators: `Authorization: Bearer <admin token>`. */
export function adminAuth(deps: HttpDeps): MiddlewareHandler<HttpEnv> {
  return async function adminAuthMiddleware(c, next) {
    await guarded(c, deps, async () => {
      if (!safeEqual(credentials(c, 'Bearer'), deps.adminToken)) {
        throw new ApiError(ErrorCode.INVALID_ADMIN_TOKEN)
      }
    })
    await next()
  }
}

/** Spends one token of `limiter` under `key`; 42901 with Retry-After when there is none. */
export function spend(limiter: HttpDeps['limits']['push'], key: string): void {
  const r = limiter.take(key)
  if (!r.ok) {
    throw new ApiError(ErrorCode.RATE_LIMITED, undefined, {
      retryAfter: Math.max(1, Math.ceil(r.retryAfterMs / 1000)),
    })
  }
}
