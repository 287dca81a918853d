import { IncomingMessage } from 'node:http'
import type { Http2Bindings, HttpBindings } from '@hono/node-server'
import type { Hono } from 'hono'
import { PushRequestSchema } from '../../sdk/protocol/schemas.js'
import type { ApiError } from '../core/errors.js'
import type { HttpDeps, HttpEnv } from './deps.js'
import { addressOf, authenticateApp } from './middleware/auth.js'
import { readJsonFrom, refuseDeclaredOver } from './middleware/body.js'
import { asApiError, errorBody } from './middleware/errors.js'
import { setSecurityHeaders } from './middleware/security-headers.js'
import { acceptPush } from './routes/v1/server.js'

/** The route served before the router: app servers' push, the API's hot path. */
export const PUSH_PATH = '/v1/messages'

type FetchHandler = (
  req: Request,
  env: HttpBindings | Http2Bindings,
) => Response | Promise<Response>

/**
 * The HTTP API's fetch handler on Node: `POST /v1/messages` (that request target exactly, over
 * HTTP/1) is served before hono's router, everything else goes through `app`. Skipping the
 * router, the context and the middleware chain takes ~9 % off the CPU of an accepted push
 * (docs/benchmarks.md, "Optimizations"). The steps are the router's for that route, in its
 * order, each the same function: the security headers, the Content-Length limit, the app's
 * secret under the failed-authentication limit, the push limit, the JSON body, the send; errors
 * answer as `onError` answers them, and what hono does not catch (a rejection that is not an
 * `Error`) is left to the adapter as hono leaves it. The route stays on the router for the other
 * forms of the same request (a query string, an absolute-form or percent-encoded target, HTTP/2,
 * `app.request()` in tests). test/integration/push-route.test.ts sends the same requests both
 * ways and compares the answers: change one path, change the other. @hono/node-server still
 * does the rest around it (the request's target and Host checked, answers written, unread
 * bodies drained, aborts).
 */
export function withPushRoute(app: Hono<HttpEnv>, deps: HttpDeps): FetchHandler {
  return (req, env) => {
    // @hono/node-server made `req` after checking the request's target and Host header
    const incoming = env.incoming
    if (
      incoming.url === PUSH_PATH &&
      req.method === 'POST' &&
      incoming instanceof IncomingMessage
    ) {
      return push(req, env as HttpBindings, deps)
    }
    return app.fetch(req, env)
  }
}

async function push(req: Request, env: HttpBindings, deps: HttpDeps): Promise<Response> {
  setSecurityHeaders(env.outgoing)
  try {
    const headers = req.headers
    refuseDeclaredOver(headers.get('content-length') ?? undefined, deps.bodyLimitBytes)
    const address = addressOf(env.incoming)
    const app = await authenticateApp(deps, address, headers.get('authorization') ?? undefined)
    const answer = await acceptPush(deps, app, () =>
      readJsonFrom(
        env.incoming,
        headers.get('content-type'),
        PushRequestSchema,
        deps.bodyLimitBytes,
      ),
    )
    return new Response(JSON.stringify(answer), { headers: jsonHeaders() })
  } catch (err) {
    // hono's onError sees only Errors; anything else goes on to the adapter (a bare 500)
    if (!(err instanceof Error)) throw err
    return errorAnswer(asApiError(err, deps.log, 'POST', PUSH_PATH))
  }
}

/**
 * As `errorResponse` makes it through hono: a plain header object, or with a Retry-After a
 * `Headers` (whose names come out lower-cased).
 */
function errorAnswer(err: ApiError): Response {
  const body = JSON.stringify(errorBody(err))
  if (err.retryAfter === undefined) {
    return new Response(body, { status: err.http, headers: jsonHeaders() })
  }
  const headers = new Headers({ 'retry-after': String(err.retryAfter) })
  headers.set('content-type', 'application/json')
  return new Response(body, { status: err.http, headers })
}

/** As hono's `c.json()` sets them (a new object each time: nothing shares what an answer holds). */
function jsonHeaders(): Record<string, string> {
  return { 'Content-Type': 'application/json' }
}
