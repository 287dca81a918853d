import type { Context, MiddlewareHandler } from 'hono'
import { getConnInfo } from '@hono/node-server/conninfo'
import { ErrorCode } from '../../../sdk/protocol/error-codes.js'
import { ApiError } from '../../core/errors.js'
import { safeEqual } from '../../core/ids.js'
import type { HttpDeps, HttpEnv } from '../deps.js'

/** The client's address (the socket's; no proxy headers are trusted). */
export function clientAddress(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown'
  } catch {
    return 'local' // app.request() in tests has no socket
  }
}

/**
 * Runs an authentication and counts its failure against the client address; an address over
 * its limit gets 42902 before any credential is checked.
 */
export async function guarded<T>(c: Context, deps: HttpDeps, check: () => Promise<T>): Promise<T> {
  const address = clientAddress(c)
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
  if (!header) throw new ApiError(ErrorCode.MISSING_CREDENTIALS)
  if (scheme === 'Bearer') {
    // MiPush sends `key=<secret>`; both forms are accepted
    const m = /^(?:Bearer\s+|key=)(.+)$/i.exec(header.trim())
    if (!m) throw new ApiError(ErrorCode.MISSING_CREDENTIALS, 'use Authorization: Bearer <secret>')
    return (m[1] as string).trim()
  }
  const m = /^Basic\s+(.+)$/i.exec(header.trim())
  if (!m) throw new ApiError(ErrorCode.MISSING_CREDENTIALS, 'use HTTP Basic: regId and token')
  return Buffer.from(m[1] as string, 'base64').toString('utf8')
}

/** Servers: `Authorization: Bearer <app secret>` (or MiPush's `key=<app secret>`). */
export function appAuth(deps: HttpDeps): MiddlewareHandler<HttpEnv> {
  return async function appAuthMiddleware(c, next) {
    const app = await guarded(c, deps, () => deps.apps.authenticateSecret(credentials(c, 'Bearer')))
    c.set('app', app)
    await next()
  }
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
