import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectDevice, type TestDevice } from '../../test/helpers/mqtt.js'
import { deviceAuth, startTestServer, type TestServer } from '../../test/helpers/server.js'
import { MqpushApiError } from '../protocol/api-error.js'
import { ErrorCode } from '../protocol/error-codes.js'
import type { RegisterResponse } from '../protocol/schemas.js'
import { MqpushServer } from './mqpush-server.js'

// The server SDK against the whole service; devices are plain MQTT clients (test/helpers).

let s: TestServer
let server: MqpushServer
const UNKNOWN_REG_ID = '0000000000000000000000'
let n = 0
const unique = (prefix: string) => `${prefix}-${++n}-${Date.now().toString(36)}`
const note = { title: 'Hi', description: 'Something happened' }

beforeAll(async () => {
  s = await startTestServer()
  server = new MqpushServer({ baseUrl: `${s.baseUrl}/`, appSecret: s.defaultApp.secret })
})
afterAll(() => s.stop())

/** A registered device of the default app, connected over MQTT. */
async function onlineDevice(): Promise<RegisterResponse & { conn: TestDevice }> {
  const reg = await s.register()
  return { ...reg, conn: await connectDevice(s.mqttUrl, reg) }
}

/** What the device API answers to a device setting an alias, userAccount or topic. */
async function deviceSets(reg: RegisterResponse, kind: string, name: string): Promise<void> {
  const res = await s.http('PUT', `/v1/device/${kind}/${encodeURIComponent(name)}`, {
    auth: deviceAuth(reg),
  })
  expect(res.status).toBe(204)
}

describe('MqpushServer', () => {
  it('sends to regIds and reports the message with its funnel', async () => {
    const online = await onlineDevice()
    const offline = await s.register()
    const sent = await server.sendToRegIds([online.regId, offline.regId, UNKNOWN_REG_ID], {
      ...note,
      extra: { k: 'v' },
      ttlSeconds: 3600,
    })
    expect(sent).toMatchObject({
      messageId: expect.stringMatching(/^m[0-9a-z]{19}$/),
      state: 'dispatched',
      funnel: { planned: 3, invalid: 1, valid: 2, delivered: 0, clicked: 0 },
    })
    expect(Date.parse(sent.expiresAt) - Date.now()).toBeGreaterThan(3500_000)
    const [got] = await online.conn.waitFor(1)
    expect(got?.json).toMatchObject({ id: sent.messageId, kind: 'notification', extra: { k: 'v' } })

    const status = await server.getMessage(sent.messageId)
    expect(status).toMatchObject({
      messageId: sent.messageId,
      appId: s.defaultApp.id,
      kind: 'notification',
      targetType: 'regId',
      state: 'dispatched',
      expired: false,
      funnel: { planned: 3, invalid: 1, valid: 2 },
    })
    await online.conn.end()
  })

  it('sends to aliases, userAccounts, a topic and everybody', async () => {
    const device = await onlineDevice()
    const alias = unique('Zoë 50% off') // path segments are encoded
    const account = unique('user@example.com')
    const topic = unique('sports')
    await deviceSets(device, 'aliases', alias)
    await deviceSets(device, 'user-accounts', account)
    await deviceSets(device, 'topics', topic)

    const kinds = { kind: 'passThrough' as const }
    const ids = [
      (await server.sendToAliases([alias], { ...kinds, payload: 'a' })).messageId,
      (await server.sendToUserAccounts([account], { ...kinds, payload: 'u' })).messageId,
      (await server.sendToTopic(topic, { ...kinds, payload: 't' })).messageId,
      (await server.sendToAll({ ...kinds, payload: 'all' })).messageId,
      (await server.send({ target: { aliases: [alias] }, ...kinds, payload: 'send' })).messageId,
    ]
    const got = await device.conn.waitFor(5)
    expect(got.map((m) => m.json.id)).toEqual(ids)
    expect(got.map((m) => m.json.target)).toEqual([
      { type: 'alias', alias },
      { type: 'userAccount', userAccount: account },
      { type: 'topic', topic },
      { type: 'all' },
      { type: 'alias', alias },
    ])
    expect((await server.getMessage(ids[2] as string)).topic).toBe(topic)
    await device.conn.end()
  })

  it('reads devices, aliases, userAccounts and topic sizes', async () => {
    const reg = await s.register({ model: 'Mi 14', locale: 'zh-CN' })
    const alias = unique('bob? 50%')
    const account = unique('acct &x=1')
    const topic = unique('weather')
    await deviceSets(reg, 'aliases', alias)
    await deviceSets(reg, 'user-accounts', account)
    await deviceSets(reg, 'topics', topic)

    expect(await server.getDevice(reg.regId)).toMatchObject({
      regId: reg.regId,
      appId: s.defaultApp.id,
      valid: true,
      online: false,
      attributes: { model: 'Mi 14', locale: 'zh-CN' },
      aliases: [alias],
      userAccounts: [account],
      topics: [topic],
    })
    expect(await server.lookupAlias(alias)).toBe(reg.regId)
    expect(await server.lookupUserAccount(account)).toEqual([reg.regId])
    expect(await server.countTopicSubscribers(topic)).toBe(1)
    expect(await server.countTopicSubscribers(unique('empty'))).toBe(0)
  })

  it('subscribes and unsubscribes devices to a topic by regIds or aliases', async () => {
    const a = await onlineDevice()
    const b = await s.register()
    const alias = unique('carol')
    await deviceSets(b, 'aliases', alias)
    const topic = unique('promo')

    expect(await server.subscribeTopic(topic, { regIds: [a.regId, UNKNOWN_REG_ID] })).toEqual({
      topic,
      subscribed: 1,
      invalid: [UNKNOWN_REG_ID],
    })
    expect(await server.subscribeTopic(topic, { aliases: [alias, 'nobody'] })).toEqual({
      topic,
      subscribed: 1,
      invalid: ['nobody'],
    })
    expect(await server.countTopicSubscribers(topic)).toBe(2)
    const sent = await server.sendToTopic(topic, { kind: 'passThrough', payload: 'p' })
    expect(sent.funnel.valid).toBe(2)
    expect((await a.conn.waitFor(1))[0]?.json.id).toBe(sent.messageId)

    expect(await server.unsubscribeTopic(topic, { regIds: [a.regId] })).toEqual({
      topic,
      unsubscribed: 1,
      invalid: [],
    })
    expect(await server.countTopicSubscribers(topic)).toBe(1)
    expect((await server.getDevice(a.regId)).topics).toEqual([])
    await a.conn.end()
  })

  it('lists invalidated regIds since a time, oldest first, up to a limit', async () => {
    const since = new Date()
    const regs = [await s.register(), await s.register()]
    for (const reg of regs) {
      expect((await s.http('DELETE', '/v1/device', { auth: deviceAuth(reg) })).status).toBe(204)
    }
    const all = await server.invalidRegIds({ since })
    expect(all.map((r) => r.regId)).toEqual(regs.map((r) => r.regId))
    expect(all[0]).toEqual({
      regId: regs[0]?.regId,
      invalidatedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      reason: 'unregistered',
    })
    expect(await server.invalidRegIds({ since: since.toISOString(), limit: 1 })).toEqual([all[0]])
    expect(await server.invalidRegIds({ since: new Date(Date.now() + 60_000) })).toEqual([])
    expect((await server.invalidRegIds()).map((r) => r.regId)).toEqual(
      expect.arrayContaining(regs.map((r) => r.regId)),
    )
  })

  it('throws API errors as MqpushApiError with the code to switch on', async () => {
    const reg = await s.register()
    const failure = (p: Promise<unknown>) =>
      p.then(
        () => expect.fail('expected an MqpushApiError'),
        (err: unknown) => {
          expect(err).toBeInstanceOf(MqpushApiError)
          return err as MqpushApiError
        },
      )

    const title = await failure(
      server.sendToRegIds([reg.regId], { ...note, title: 'x'.repeat(51) }),
    )
    expect(title).toMatchObject({ code: ErrorCode.TITLE_TOO_LONG, http: 400 })
    expect(title.link).toBeTruthy()

    const tooMany = Array.from({ length: 1001 }, () => reg.regId)
    expect(await failure(server.sendToRegIds(tooMany, note))).toMatchObject({
      code: ErrorCode.TOO_MANY_TARGETS,
    })
    expect(await failure(server.sendToRegIds([reg.regId], { kind: 'passThrough' }))).toMatchObject({
      code: ErrorCode.MISSING_CONTENT,
    })
    expect(await failure(server.getMessage('m0000000000nothere00'))).toMatchObject({
      code: ErrorCode.MESSAGE_NOT_FOUND,
      http: 404,
    })
    expect(await failure(server.getDevice(UNKNOWN_REG_ID))).toMatchObject({
      code: ErrorCode.DEVICE_NOT_FOUND,
    })
    expect(await failure(server.invalidRegIds({ limit: 0 }))).toMatchObject({
      code: ErrorCode.INVALID_REQUEST,
    })

    const wrong = new MqpushServer({ baseUrl: s.baseUrl, appSecret: 'not-the-secret' })
    expect(await failure(wrong.sendToAll(note))).toMatchObject({
      code: ErrorCode.INVALID_APP_SECRET,
      http: 401,
    })
  })

  it('gives the Retry-After of a rate-limited push', async () => {
    const limited = await startTestServer({ env: { MQPUSH_RATE_PUSH_PER_SEC: '1' } })
    try {
      const sdk = new MqpushServer({
        baseUrl: limited.baseUrl,
        appSecret: limited.defaultApp.secret,
      })
      const push = () => sdk.sendToAll({ kind: 'passThrough', payload: 'x' })
      await push()
      await push() // a burst of two seconds
      const err = await push().catch((e: unknown) => e)
      expect(err).toBeInstanceOf(MqpushApiError)
      expect(err).toMatchObject({ code: ErrorCode.RATE_LIMITED, http: 429 })
      expect((err as MqpushApiError).retryAfter).toBeGreaterThanOrEqual(1)
    } finally {
      await limited.stop()
    }
  })

  it('gives up after its timeout, through the fetch it was given', async () => {
    const hanging: typeof fetch = (_input, init) =>
      new Promise((_resolve, reject) =>
        init?.signal?.addEventListener('abort', () => reject(init.signal?.reason as Error)),
      )
    const sdk = new MqpushServer({
      baseUrl: s.baseUrl,
      appSecret: 'x',
      fetch: hanging,
      timeoutMs: 20,
    })
    await expect(sdk.getDevice(UNKNOWN_REG_ID)).rejects.toMatchObject({ name: 'TimeoutError' })
  })

  it('refuses misconfiguration when it is built', () => {
    expect(() => new MqpushServer({ baseUrl: '', appSecret: 'x' })).toThrow(/baseUrl/)
    expect(() => new MqpushServer({ baseUrl: 'ftp://x', appSecret: 'x' })).toThrow(/baseUrl/)
    expect(() => new MqpushServer({ baseUrl: s.baseUrl, appSecret: '' })).toThrow(/appSecret/)
    expect(() => new MqpushServer({ baseUrl: s.baseUrl, appSecret: 'x', timeoutMs: -1 })).toThrow(
      /timeoutMs/,
    )
  })
})
