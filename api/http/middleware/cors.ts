import type { ServerResponse } from 'node:http'
import type { MiddlewareHandler } from 'hono'
import { cors } from 'hono/cors'

/**
 * CORS for the device endpoints, which browsers call: `origins` are those allowed (`*`: any).
 * Preflights (OPTIONS), and answers without a Node response (`app.request()` in tests), go
 * through hono's `cors()`. The others get their one or two headers on Node's response, as the
 * security headers do: hono's `cors()` sets them on the answer's `Headers`, which makes
 * @hono/node-server build a real WHATWG Response, body stream and all, for every answer: over
 * a quarter of a registration's CPU (docs/benchmarks-log.md, sixteenth session). The same headers
 * either way: `Access-Control-Allow-Origin` (`*`, or the request's origin when allowed) and,
 * unless any origin is allowed, `Vary: Origin`; on errors too, so a browser can read them. One
 * limit: a header of the same name on the handler's own answer replaces these (Node lets the
 * head's headers win), where hono's `cors()` appended to `Vary`; no device endpoint sets `Vary`
 * or `Access-Control-Allow-Origin` itself.
 */
export function deviceCors(origins: readonly string[]): MiddlewareHandler {
  const any = origins.includes('*')
  const allowed = new Set(origins)
  const preflightAndTests = cors({
    origin: any ? '*' : [...origins],
    allowHeaders: ['Authorization', 'Content-Type'],
    allowMethods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    maxAge: 600,
  })
  return async function deviceCorsMiddleware(c, next) {
    const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing
    if (!outgoing || c.req.method === 'OPTIONS') return preflightAndTests(c, next)
    if (any) {
      outgoing.setHeader('access-control-allow-origin', '*')
    } else {
      const origin = c.req.header('origin')
      if (origin && allowed.has(origin)) {
        outgoing.setHeader('access-control-allow-origin', origin)
      }
      outgoing.setHeader('vary', 'Origin')
    }
    return next()
  }
}
