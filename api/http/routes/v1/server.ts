import { Hono } from 'hono'
import { ErrorCode } from '../../../../sdk/protocol/error-codes.js'
import type {
  AliasLookup,
  InvalidRegIdsResponse,
  PushResponse,
  TopicInfo,
  TopicSubscribeResult,
  TopicUnsubscribeResult,
  UserAccountLookup,
} from '../../../../sdk/protocol/responses.js'
import {
  type ParsedPushRequest,
  PushRequestSchema,
  TopicMembersRequestSchema,
} from '../../../../sdk/protocol/schemas.js'
import { ApiError } from '../../../core/errors.js'
import type { App } from '../../../core/model.js'
import type { HttpDeps, HttpEnv } from '../../deps.js'
import { appAuth, spend } from '../../middleware/auth.js'
import { readJson } from '../../middleware/body.js'
import { nameParam } from '../../params.js'

const MAX_FEEDBACK_PAGE = 1000

/** A push of an authenticated app: its push limit spent, then its body read and sent. */
export async function acceptPush(
  deps: HttpDeps,
  app: App,
  body: () => Promise<ParsedPushRequest>,
): Promise<PushResponse> {
  spend(deps.limits.push, app.id)
  return deps.messages.send(app.id, await body())
}

/** The server surface (app secret): push, message status, lookups, server-side topics. */
export function serverRoutes(deps: HttpDeps) {
  const r = new Hono<HttpEnv>()
  const auth = appAuth(deps)

  // on Node this route is served before the router (api/http/push-route.ts), with the same
  // steps: keep the two alike (test/integration/push-route.test.ts compares their answers)
  r.post('/messages', auth, async (c) => {
    return c.json(await acceptPush(deps, c.get('app'), () => readJson(c, PushRequestSchema)))
  })

  r.get('/messages/:id', auth, async (c) => {
    return c.json(await deps.messages.status(c.get('app').id, c.req.param('id')))
  })

  r.get('/devices/:regId', auth, async (c) => {
    return c.json(await deps.devices.describe(c.get('app').id, c.req.param('regId')))
  })

  r.get('/aliases/:alias', auth, async (c) => {
    const alias = nameParam(c.req.param('alias'), 'alias')
    const body: AliasLookup = {
      alias,
      regId: await deps.devices.lookupAlias(c.get('app').id, alias),
    }
    return c.json(body)
  })

  r.get('/user-accounts/:account', auth, async (c) => {
    const account = nameParam(c.req.param('account'), 'userAccount')
    const regIds = await deps.devices.lookupUserAccount(c.get('app').id, account)
    const body: UserAccountLookup = { userAccount: account, regIds }
    return c.json(body)
  })

  r.get('/topics/:topic', auth, async (c) => {
    const topic = nameParam(c.req.param('topic'), 'topic')
    const body: TopicInfo = {
      topic,
      subscribers: await deps.devices.countTopicMembers(c.get('app').id, topic),
    }
    return c.json(body)
  })

  for (const action of ['subscribe', 'unsubscribe'] as const) {
    r.post(`/topics/:topic/${action}`, auth, async (c) => {
      const topic = nameParam(c.req.param('topic'), 'topic')
      const body = await readJson(c, TopicMembersRequestSchema)
      const result = await deps.devices.changeTopicMembers(c.get('app').id, topic, body, action)
      const answer: TopicSubscribeResult | TopicUnsubscribeResult =
        action === 'subscribe'
          ? { topic, subscribed: result.changed, invalid: result.invalid }
          : { topic, unsubscribed: result.changed, invalid: result.invalid }
      return c.json(answer)
    })
  }

  /** §4.2.2 feedback: regIds that became invalid since a time, oldest first. */
  r.get('/feedback/invalid-reg-ids', auth, async (c) => {
    const sinceText = c.req.query('since')
    const since = sinceText === undefined ? 0 : Date.parse(sinceText)
    if (Number.isNaN(since)) {
      throw new ApiError(ErrorCode.INVALID_REQUEST, 'since must be an ISO 8601 time')
    }
    const limitText = c.req.query('limit') ?? String(MAX_FEEDBACK_PAGE)
    const limit = Number(limitText)
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_FEEDBACK_PAGE) {
      throw new ApiError(ErrorCode.INVALID_REQUEST, `limit must be 1 … ${MAX_FEEDBACK_PAGE}`)
    }
    const rows = await deps.devices.listInvalidated(c.get('app').id, since, limit)
    const body: InvalidRegIdsResponse = {
      regIds: rows.map((r) => ({
        regId: r.regId,
        invalidatedAt: new Date(r.at).toISOString(),
        reason: r.reason,
      })),
    }
    return c.json(body)
  })

  return r
}
