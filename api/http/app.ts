import { Hono } from 'hono'
import { ErrorCode } from '../../sdk/protocol/error-codes.js'
import { ApiError } from '../core/errors.js'
import type { HttpDeps, HttpEnv } from './deps.js'
import { limitBody } from './middleware/body.js'
import { deviceCors } from './middleware/cors.js'
import { createOnError, errorResponse } from './middleware/errors.js'
import { securityHeaders } from './middleware/security-headers.js'
import { adminRoutes } from './routes/admin/apps.js'
import { DEVICE_CORS_PATHS, deviceRoutes } from './routes/v1/devices.js'
import { serverRoutes } from './routes/v1/server.js'

/**
 * The HTTP API: `/v1` (devices and servers), `/admin/v1` (operators), `/healthz`.
 * Order: security headers, the device endpoints' CORS, body limit, routes; errors and unknown
 * routes map in one place.
 */
export function createHttpApp(deps: HttpDeps): Hono<HttpEnv> {
  const app = new Hono<HttpEnv>()
  app.onError(createOnError(deps.log))
  app.notFound((c) => errorResponse(c, new ApiError(ErrorCode.NOT_FOUND)))
  app.use('*', securityHeaders())
  // before the body limit, so that a browser can read a 413 too
  const browsers = deviceCors(deps.corsOrigins.split(',').map((o) => o.trim()))
  for (const path of DEVICE_CORS_PATHS) app.use(`/v1${path}`, browsers)
  app.use('*', limitBody(deps.bodyLimitBytes))

  app.get('/healthz', (c) =>
    deps.isReady()
      ? c.json({ status: 'ok' })
      : errorResponse(c, new ApiError(ErrorCode.UNAVAILABLE)),
  )
  app.route('/v1', deviceRoutes(deps))
  app.route('/v1', serverRoutes(deps))
  app.route('/admin/v1', adminRoutes(deps))
  return app
}
