import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { ErrorCode } from '../../sdk/protocol/error-codes.js'
import { MAX_PAYLOAD_BYTES } from '../../sdk/protocol/limits.js'
import { FANOUT_MIN_CLIENTS } from '../../api/store/embedded/broker-persistence.js'
import { ManualClock } from '../helpers/clock.js'
import { connectDevice, type TestDevice } from '../helpers/mqtt.js'
import { deviceAuth, startTestServer, type TestServer } from '../helpers/server.js'

const note = { title: 'Hello', description: 'World' }

describe('push from a server (§4.1, §4.2, §8.4)', () => {
  let s: TestServer
  beforeAll(async () => {
    // these tests register about fifty devices from one address within a few seconds, past the
    // default per-address limit (20/s, a burst of 40) on a fast machine: CI once got a 429 here.
    // That limit has its own test (session-races.test.ts).
    s = await startTestServer({ env: { MQPUSH_RATE_REGISTER_PER_ADDRESS_PER_SEC: '1000' } })
  })
  afterAll(() => s.stop())

  async function online(attributes = {}) {
    const reg = await s.register(attributes)
    return { reg, device: await connectDevice(s.mqttUrl, reg) }
  }

  async function status(id: string) {
    return (await s.http('GET', `/v1/messages/${id}`, { auth: `Bearer ${s.defaultApp.secret}` }))
      .body
  }

  it('delivers a notification to regIds with every field of the envelope', async () => {
    const a = await online()
    const b = await online()
    const res = await s.push({
      target: { regIds: [a.reg.regId, b.reg.regId] },
      title: '标题',
      description: 'desc',
      payload: '{"deep":"link"}',
      extra: { sound: 'ding' },
      notifyId: 7,
      notifyType: 1,
    })
    expect(res.status).toBe(200)
    expect(res.body.messageId).toMatch(/^m[0-9a-z]{19}$/)
    expect(res.body.funnel).toMatchObject({ planned: 2, invalid: 0, filtered: 0, valid: 2 })
    for (const { device, reg } of [a, b]) {
      const [m] = await device.waitFor(1)
      expect(m!.topic).toBe(reg.mqtt.topics.inbox)
      expect(m!.json).toMatchObject({
        id: res.body.messageId,
        kind: 'notification',
        title: '标题',
        description: 'desc',
        payload: '{"deep":"link"}',
        extra: { sound: 'ding' },
        notifyId: 7,
        notifyType: 1,
        target: { type: 'regId' },
      })
      expect(m!.json.expiresAt - m!.json.sentAt).toBe(14 * 24 * 3600 * 1000)
      await device.end()
    }
  })

  it('delivers a pass-through message (payload only)', async () => {
    const a = await online()
    const res = await s.push({
      target: { regIds: [a.reg.regId] },
      kind: 'passThrough',
      payload: 'sync',
    })
    const [m] = await a.device.waitFor(1)
    expect(m!.json).toMatchObject({ id: res.body.messageId, kind: 'passThrough', payload: 'sync' })
    expect(m!.json.title).toBeUndefined()
    await a.device.end()
  })

  it('acknowledged deliveries are counted: planned, valid, delivered', async () => {
    const a = await online()
    const b = await online()
    const offline = await s.register()
    const res = await s.push({
      target: { regIds: [a.reg.regId, b.reg.regId, offline.regId, 'AAAAAAAAAAAAAAAAAAAAAA'] },
      ...note,
    })
    expect(res.body.funnel).toMatchObject({ planned: 4, invalid: 1, valid: 3, delivered: 0 })
    await a.device.waitFor(1)
    await b.device.waitFor(1)
    await vi.waitFor(async () =>
      expect((await status(res.body.messageId)).funnel.delivered).toBe(2),
    )
    const st = await status(res.body.messageId)
    expect(st).toMatchObject({
      messageId: res.body.messageId,
      kind: 'notification',
      targetType: 'regId',
      state: 'dispatched',
      expired: false,
      funnel: { planned: 4, invalid: 1, filtered: 0, valid: 3, delivered: 2, clicked: 0 },
    })
    // the offline device acknowledges when it comes back
    const late = await connectDevice(s.mqttUrl, offline)
    await late.waitFor(1)
    await vi.waitFor(async () =>
      expect((await status(res.body.messageId)).funnel.delivered).toBe(3),
    )
    for (const d of [a.device, b.device, late]) await d.end()
  })

  it('a click report counts once per device and only after delivery', async () => {
    const a = await online()
    const res = await s.push({ target: { regIds: [a.reg.regId] }, ...note })
    await a.device.waitFor(1)
    await vi.waitFor(async () =>
      expect((await status(res.body.messageId)).funnel.delivered).toBe(1),
    )
    const click = JSON.stringify({ id: res.body.messageId })
    await a.device.client.publishAsync(a.reg.mqtt.topics.click, click, { qos: 1 })
    await a.device.client.publishAsync(a.reg.mqtt.topics.click, click, { qos: 1 })
    expect((await status(res.body.messageId)).funnel.clicked).toBe(1)
    // a device that never got the message cannot click it
    const other = await s.register()
    const viaHttp = await s.http('POST', '/v1/device/clicks', {
      auth: deviceAuth(other),
      body: { messageId: res.body.messageId },
    })
    expect(viaHttp.body).toEqual({ counted: false })
    expect((await status(res.body.messageId)).funnel.clicked).toBe(1)
    await a.device.end()
  })

  it('pushes to every device of the app with target all, online and offline', async () => {
    const app = await s.http('POST', '/admin/v1/apps', {
      auth: `Bearer ${s.adminToken}`,
      body: { name: 'all-test' },
    })
    const creds = { appId: app.body.appId, appKey: app.body.appKey }
    const regs = [
      await s.register({}, {}, creds),
      await s.register({}, {}, creds),
      await s.register({}, {}, creds),
    ]
    const on = [await connectDevice(s.mqttUrl, regs[0]!), await connectDevice(s.mqttUrl, regs[1]!)]
    const res = await s.push(
      { target: { all: true }, kind: 'passThrough', payload: 'everyone' },
      app.body.appSecret,
    )
    expect(res.body.funnel).toMatchObject({ planned: 3, valid: 3 })
    for (const d of on) {
      const [m] = await d.waitFor(1)
      expect(m!.topic).toBe(`mqp/${creds.appId}/all`)
      expect(m!.json.target).toEqual({ type: 'all' })
    }
    const third = await connectDevice(s.mqttUrl, regs[2]!)
    expect((await third.waitFor(1))[0]!.json.payload).toBe('everyone')
    for (const d of [...on, third]) await d.end()
  })

  it('pushes to all and to a topic of as many devices as make a fan-out, online and offline', async () => {
    // found by the bench: a fan-out through the dispatcher's recoverable enqueue recursed
    const app = await s.http('POST', '/admin/v1/apps', {
      auth: `Bearer ${s.adminToken}`,
      body: { name: 'fanout-test' },
    })
    const creds = { appId: app.body.appId, appKey: app.body.appKey }
    const regs = []
    for (let i = 0; i < FANOUT_MIN_CLIENTS + 4; i++) regs.push(await s.register({}, {}, creds))
    for (const r of regs) {
      const put = await s.http('PUT', '/v1/device/topics/news', { auth: deviceAuth(r) })
      expect(put.status).toBe(204)
    }
    const first = await connectDevice(s.mqttUrl, regs[0]!)
    for (const target of [{ all: true }, { topic: 'news' }]) {
      const res = await s.push({ target, kind: 'passThrough', payload: 'many' }, app.body.appSecret)
      expect(res.status).toBe(200)
      expect(res.body.funnel).toMatchObject({ valid: regs.length })
    }
    expect((await first.waitFor(2)).map((m) => m.json.payload)).toEqual(['many', 'many'])
    const last = await connectDevice(s.mqttUrl, regs[regs.length - 1]!)
    expect((await last.waitFor(2)).map((m) => m.json.target.type)).toEqual(['all', 'topic'])
    await first.end()
    await last.end()
  })

  it('accepts 1000 regIds and a 4 KB payload; refuses 1001 targets and 4 KB + 1', async () => {
    const a = await online()
    const ids = [
      a.reg.regId,
      ...Array.from({ length: 999 }, (_, i) => `X${String(i).padStart(21, '0')}`),
    ]
    const big = 'é'.repeat(MAX_PAYLOAD_BYTES / 2) // 2 bytes each in UTF-8
    const ok = await s.push({ target: { regIds: ids }, kind: 'passThrough', payload: big })
    expect(ok.status).toBe(200)
    expect(ok.body.funnel).toMatchObject({ planned: 1000, invalid: 999, valid: 1 })
    expect((await a.device.waitFor(1))[0]!.json.payload).toBe(big)

    const tooMany = await s.push({ target: { regIds: [...ids, 'Y'.repeat(22)] }, ...note })
    expect(tooMany.status).toBe(400)
    expect(tooMany.body.code).toBe(ErrorCode.TOO_MANY_TARGETS)
    for (const key of ['aliases', 'userAccounts']) {
      const r = await s.push({
        target: { [key]: Array.from({ length: 1001 }, (_, i) => `n${i}`) },
        ...note,
      })
      expect(r.body.code).toBe(ErrorCode.TOO_MANY_TARGETS)
    }
    const tooBig = await s.push({
      target: { regIds: [a.reg.regId] },
      kind: 'passThrough',
      payload: `${big}x`,
    })
    expect(tooBig.status).toBe(413)
    expect(tooBig.body.code).toBe(ErrorCode.PAYLOAD_TOO_LARGE)
    await a.device.expectNoMore(1)
    await a.device.end()
  })

  it('enforces title, description, TTL, target and content rules with their codes', async () => {
    const to = { regIds: ['A'.repeat(22)] }
    const cases: Array<[unknown, number, number]> = [
      [{ target: to, title: 'x'.repeat(51), description: 'd' }, 400, ErrorCode.TITLE_TOO_LONG],
      [
        { target: to, title: '字'.repeat(50), description: 'd'.repeat(129) },
        400,
        ErrorCode.DESCRIPTION_TOO_LONG,
      ],
      [{ target: to, ...note, ttlSeconds: 14 * 24 * 3600 + 1 }, 400, ErrorCode.TTL_OUT_OF_RANGE],
      [{ target: to, ...note, ttlSeconds: 0 }, 400, ErrorCode.TTL_OUT_OF_RANGE],
      [{ target: {}, ...note }, 400, ErrorCode.INVALID_TARGET],
      [{ target: { all: true, topic: 'a' }, ...note }, 400, ErrorCode.INVALID_TARGET],
      [{ target: { regIds: [] }, ...note }, 400, ErrorCode.INVALID_TARGET],
      [{ target: { topic: 'a/b' }, ...note }, 400, ErrorCode.INVALID_NAME],
      [{ target: { regIds: ['short'] }, ...note }, 400, ErrorCode.INVALID_REG_ID],
      [{ target: to, title: 'only title' }, 400, ErrorCode.MISSING_CONTENT],
      [{ target: to, kind: 'passThrough' }, 400, ErrorCode.MISSING_CONTENT],
      [{ target: to, ...note, extra: { k: 1 } }, 400, ErrorCode.INVALID_REQUEST],
      [{ target: to, ...note, surprise: true }, 400, ErrorCode.INVALID_REQUEST],
      [
        {
          target: to,
          ...note,
          extra: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])),
        },
        400,
        ErrorCode.INVALID_EXTRA,
      ],
    ]
    for (const [body, http, code] of cases) {
      const res = await s.push(body)
      expect({ body, status: res.status, code: res.body.code }).toEqual({
        body,
        status: http,
        code,
      })
      expect(res.body.error).toEqual(expect.any(String))
    }
    // exactly at the limits is fine: 50 / 128 characters (CJK counts as one), 14 days
    const edge = await s.push({
      target: to,
      title: '字'.repeat(50),
      description: 'd'.repeat(128),
      ttlSeconds: 14 * 24 * 3600,
    })
    expect(edge.status).toBe(200)
  })

  it('reports unknown and foreign messages as not found', async () => {
    const res = await s.http('GET', '/v1/messages/m000000000000000000x', {
      auth: `Bearer ${s.defaultApp.secret}`,
    })
    expect(res.status).toBe(404)
    expect(res.body.code).toBe(ErrorCode.MESSAGE_NOT_FOUND)
  })
})

describe('push rate limit', () => {
  it('answers 429 with Retry-After past the per-app rate, and nothing is lost that was accepted', async () => {
    // a fixed clock: the bucket does not refill while the test runs
    const s = await startTestServer({
      env: { MQPUSH_RATE_PUSH_PER_SEC: '2' },
      clock: new ManualClock(),
    })
    try {
      const reg = await s.register()
      const device: TestDevice = await connectDevice(s.mqttUrl, reg)
      const results = []
      for (let i = 0; i < 6; i++) {
        results.push(
          await s.push({
            target: { regIds: [reg.regId] },
            kind: 'passThrough',
            payload: String(i),
          }),
        )
      }
      const accepted = results.filter((r) => r.status === 200)
      const limited = results.filter((r) => r.status === 429)
      expect(accepted.length).toBe(4) // burst of two seconds
      expect(limited.length).toBe(2)
      expect(limited[0]!.body.code).toBe(ErrorCode.RATE_LIMITED)
      const got = await device.waitFor(accepted.length)
      expect(got.map((m) => m.json.id).sort()).toEqual(accepted.map((r) => r.body.messageId).sort())
      await device.end()
    } finally {
      await s.stop()
    }
  })
})
