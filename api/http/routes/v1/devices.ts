import { Hono } from 'hono'
import type { RegisterResponse } from '../../../../sdk/protocol/schemas.js'
import {
  RegisterRequestSchema,
  UpdateDeviceRequestSchema,
} from '../../../../sdk/protocol/schemas.js'
import {
  broadcastTopic,
  inboxTopic,
  TOPIC_ROOT,
  upstreamTopic,
} from '../../../../sdk/protocol/topics.js'
import type { HttpDeps, HttpEnv } from '../../deps.js'
import { clientAddress, deviceAuth, guarded, spend } from '../../middleware/auth.js'
import { readJson } from '../../middleware/body.js'
import { nameParam } from '../../params.js'
import { z } from 'zod'

const ClickSchema = z.strictObject({ messageId: z.string().min(1).max(64) })

/**
 * The paths of the device surface, which answer CORS: relative to where it is mounted, as its
 * routes are (`createHttpApp` puts the middleware before the body limit).
 */
export const DEVICE_CORS_PATHS = ['/devices/register', '/device', '/device/*'] as const

/**
 * The device surface: registration (app id + app key) and the device's own endpoints (HTTP
 * Basic regId:token). Browsers call these, so they answer CORS.
 */
export function deviceRoutes(deps: HttpDeps) {
  const r = new Hono<HttpEnv>()

  r.post('/devices/register', async (c) => {
    spend(deps.limits.registerPerAddress, clientAddress(c))
    const body = await readJson(c, RegisterRequestSchema)
    const app = await guarded(c, deps, () => deps.apps.authenticateKey(body.appId, body.appKey))
    spend(deps.limits.register, app.id)
    const reg = await deps.devices.register(app, body)
    const appId = reg.app.id
    const response: RegisterResponse = {
      regId: reg.regId,
      token: reg.token,
      appId,
      renewed: reg.renewed,
      mqtt: {
        clientId: reg.regId,
        username: appId,
        password: reg.token,
        topics: {
          inbox: inboxTopic(appId, reg.regId),
          all: broadcastTopic(appId),
          topicPrefix: `${TOPIC_ROOT}/${appId}/t/`,
          click: upstreamTopic(appId, reg.regId, 'click'),
        },
      },
    }
    return c.json(response)
  })

  const own = new Hono<HttpEnv>()
  own.use('*', deviceAuth(deps))
  own.get('/', async (c) => {
    const d = c.get('device')
    return c.json(await deps.devices.describe(d.appId, d.regId))
  })
  own.patch('/', async (c) => {
    const body = await readJson(c, UpdateDeviceRequestSchema)
    await deps.devices.updateAttributes(c.get('device'), body.attributes)
    return c.body(null, 204)
  })
  own.delete('/', async (c) => {
    await deps.devices.unregister(c.get('device'))
    return c.body(null, 204)
  })
  own.put('/aliases/:alias', async (c) => {
    await deps.devices.setAlias(c.get('device'), nameParam(c.req.param('alias'), 'alias'))
    return c.body(null, 204)
  })
  own.delete('/aliases/:alias', async (c) => {
    await deps.devices.unsetAlias(c.get('device'), nameParam(c.req.param('alias'), 'alias'))
    return c.body(null, 204)
  })
  own.put('/user-accounts/:account', async (c) => {
    const account = nameParam(c.req.param('account'), 'userAccount')
    await deps.devices.setUserAccount(c.get('device'), account)
    return c.body(null, 204)
  })
  own.delete('/user-accounts/:account', async (c) => {
    const account = nameParam(c.req.param('account'), 'userAccount')
    await deps.devices.unsetUserAccount(c.get('device'), account)
    return c.body(null, 204)
  })
  own.put('/topics/:topic', async (c) => {
    await deps.devices.subscribeTopics(c.get('device'), [nameParam(c.req.param('topic'), 'topic')])
    return c.body(null, 204)
  })
  own.delete('/topics/:topic', async (c) => {
    const topic = nameParam(c.req.param('topic'), 'topic')
    await deps.devices.unsubscribeTopics(c.get('device'), [topic])
    return c.body(null, 204)
  })
  own.post('/clicks', async (c) => {
    const { messageId } = await readJson(c, ClickSchema)
    const d = c.get('device')
    const counted = await deps.receipts.clicked(d.appId, d.regId, messageId)
    return c.json({ counted })
  })
  r.route('/device', own)
  return r
}
