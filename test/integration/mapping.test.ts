import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ErrorCode } from '../../sdk/protocol/error-codes.js'
import { connectDevice } from '../helpers/mqtt.js'
import { deviceAuth, startTestServer, type TestServer } from '../helpers/server.js'

describe('aliases, userAccounts and topics (§4.2.1, §4.2.3)', () => {
  let s: TestServer
  const server = () => `Bearer ${s.defaultApp.secret}`
  beforeAll(async () => {
    s = await startTestServer()
  })
  afterAll(() => s.stop())

  it('an alias maps to one device: the last setter wins', async () => {
    const a = await s.register()
    const b = await s.register()
    expect(
      (await s.http('PUT', '/v1/device/aliases/user%40example.com', { auth: deviceAuth(a) }))
        .status,
    ).toBe(204)
    expect(
      (await s.http('GET', '/v1/aliases/user%40example.com', { auth: server() })).body,
    ).toEqual({
      alias: 'user@example.com',
      regId: a.regId,
    })
    await s.http('PUT', '/v1/device/aliases/user%40example.com', { auth: deviceAuth(b) })
    expect(
      (await s.http('GET', '/v1/aliases/user%40example.com', { auth: server() })).body.regId,
    ).toBe(b.regId)
    // only b receives a push to the alias
    const da = await connectDevice(s.mqttUrl, a)
    const db = await connectDevice(s.mqttUrl, b)
    const res = await s.push({
      target: { aliases: ['user@example.com', 'nobody'] },
      title: 't',
      description: 'd',
    })
    expect(res.body.funnel).toMatchObject({ planned: 2, invalid: 1, valid: 1 })
    const [m] = await db.waitFor(1)
    expect(m!.json.target).toEqual({ type: 'alias', alias: 'user@example.com' })
    await da.expectNoMore(0)
    // a device that no longer holds the alias cannot unset it for the holder
    await s.http('DELETE', '/v1/device/aliases/user%40example.com', { auth: deviceAuth(a) })
    expect(
      (await s.http('GET', '/v1/aliases/user%40example.com', { auth: server() })).body.regId,
    ).toBe(b.regId)
    await s.http('DELETE', '/v1/device/aliases/user%40example.com', { auth: deviceAuth(b) })
    const gone = await s.http('GET', '/v1/aliases/user%40example.com', { auth: server() })
    expect(gone.status).toBe(404)
    expect(gone.body.code).toBe(ErrorCode.ALIAS_NOT_FOUND)
    await da.end()
    await db.end()
  })

  it('a userAccount maps to at most 10 devices: the 11th evicts the oldest', async () => {
    const regs = []
    for (let i = 0; i < 11; i++) {
      const reg = await s.register()
      await s.http('PUT', '/v1/device/user-accounts/alice', { auth: deviceAuth(reg) })
      regs.push(reg)
    }
    const res = await s.http('GET', '/v1/user-accounts/alice', { auth: server() })
    expect(res.body.regIds).toHaveLength(10)
    expect(res.body.regIds).not.toContain(regs[0]!.regId)
    expect(new Set(res.body.regIds)).toEqual(new Set(regs.slice(1).map((r) => r.regId)))
    // setting it again makes a device the newest
    await s.http('PUT', '/v1/device/user-accounts/alice', { auth: deviceAuth(regs[1]!) })
    const twelfth = await s.register()
    await s.http('PUT', '/v1/device/user-accounts/alice', { auth: deviceAuth(twelfth) })
    const after = (await s.http('GET', '/v1/user-accounts/alice', { auth: server() })).body.regIds
    expect(after).toContain(regs[1]!.regId)
    expect(after).not.toContain(regs[2]!.regId)
    // a push to the account reaches all its devices
    const push = await s.push({
      target: { userAccounts: ['alice', 'bob'] },
      kind: 'passThrough',
      payload: 'p',
    })
    expect(push.body.funnel).toMatchObject({ planned: 2, invalid: 1, valid: 10 })
    const d = await connectDevice(s.mqttUrl, twelfth)
    expect((await d.waitFor(1))[0]!.json.target).toEqual({
      type: 'userAccount',
      userAccount: 'alice',
    })
    await d.end()
  })

  it('a plain MQTT SUBSCRIBE to an app topic is known to the service and receives topic pushes', async () => {
    const reg = await s.register()
    const d = await connectDevice(s.mqttUrl, reg)
    const granted = await d.client.subscribeAsync(`${reg.mqtt.topics.topicPrefix}news`, { qos: 1 })
    expect(granted[0]!.qos).toBe(1)
    expect((await s.http('GET', '/v1/topics/news', { auth: server() })).body).toEqual({
      topic: 'news',
      subscribers: 1,
    })
    expect(
      (await s.http('GET', `/v1/devices/${reg.regId}`, { auth: server() })).body.topics,
    ).toEqual(['news'])
    const res = await s.push({ target: { topic: 'news' }, title: 'Breaking', description: 'story' })
    expect(res.body.funnel).toMatchObject({ planned: 1, valid: 1 })
    const [m] = await d.waitFor(1)
    expect(m!.topic).toBe(`${reg.mqtt.topics.topicPrefix}news`)
    expect(m!.json.target).toEqual({ type: 'topic', topic: 'news' })
    await d.client.unsubscribeAsync(`${reg.mqtt.topics.topicPrefix}news`)
    await expect
      .poll(
        async () => (await s.http('GET', '/v1/topics/news', { auth: server() })).body.subscribers,
      )
      .toBe(0)
    await s.push({ target: { topic: 'news' }, title: 'again', description: 'x' })
    await d.expectNoMore(1)
    await d.end()
  })

  it('servers subscribe online and offline devices to topics; it lasts across reconnects', async () => {
    const on = await s.register()
    const off = await s.register()
    const aliased = await s.register()
    await s.http('PUT', '/v1/device/aliases/carol', { auth: deviceAuth(aliased) })
    const d = await connectDevice(s.mqttUrl, on)
    const sub = await s.http('POST', '/v1/topics/sports/subscribe', {
      auth: server(),
      body: { regIds: [on.regId, off.regId, 'ZZZZZZZZZZZZZZZZZZZZZZ'] },
    })
    expect(sub.body).toEqual({
      topic: 'sports',
      subscribed: 2,
      invalid: ['ZZZZZZZZZZZZZZZZZZZZZZ'],
    })
    const byAlias = await s.http('POST', '/v1/topics/sports/subscribe', {
      auth: server(),
      body: { aliases: ['carol', 'dave'] },
    })
    expect(byAlias.body).toEqual({ topic: 'sports', subscribed: 1, invalid: ['dave'] })
    expect((await s.http('GET', '/v1/topics/sports', { auth: server() })).body.subscribers).toBe(3)

    const res = await s.push({ target: { topic: 'sports' }, kind: 'passThrough', payload: 'goal' })
    expect(res.body.funnel).toMatchObject({ planned: 3, valid: 3 })
    expect((await d.waitFor(1))[0]!.json.payload).toBe('goal')
    const late = await connectDevice(s.mqttUrl, off)
    expect((await late.waitFor(1))[0]!.json.payload).toBe('goal')

    // unsubscribe the online one server-side: it stops receiving
    const unsub = await s.http('POST', '/v1/topics/sports/unsubscribe', {
      auth: server(),
      body: { regIds: [on.regId] },
    })
    expect(unsub.body).toEqual({ topic: 'sports', unsubscribed: 1, invalid: [] })
    await d.end()
    const again = await connectDevice(s.mqttUrl, on)
    await s.push({ target: { topic: 'sports' }, kind: 'passThrough', payload: 'second' })
    expect((await late.waitFor(2))[1]!.json.payload).toBe('second')
    await again.expectNoMore(0)
    await again.end()
    await late.end()
  })

  it('devices subscribe and unsubscribe topics over HTTP too', async () => {
    const reg = await s.register()
    expect(
      (await s.http('PUT', '/v1/device/topics/weather', { auth: deviceAuth(reg) })).status,
    ).toBe(204)
    const info = await s.http('GET', '/v1/device', { auth: deviceAuth(reg) })
    expect(info.body.topics).toEqual(['weather'])
    await s.http('DELETE', '/v1/device/topics/weather', { auth: deviceAuth(reg) })
    expect((await s.http('GET', '/v1/device', { auth: deviceAuth(reg) })).body.topics).toEqual([])
  })

  it('refuses bad names with 40007', async () => {
    const reg = await s.register()
    for (const path of [
      '/v1/device/aliases/%24sys',
      '/v1/device/topics/a%2Bb',
      `/v1/device/user-accounts/${'x'.repeat(129)}`,
    ]) {
      const res = await s.http('PUT', path, { auth: deviceAuth(reg) })
      expect(res.status).toBe(400)
      expect(res.body.code).toBe(ErrorCode.INVALID_NAME)
    }
  })

  it('invalidating a device drops its aliases, userAccounts and topics', async () => {
    const reg = await s.register()
    await s.http('PUT', '/v1/device/aliases/erin', { auth: deviceAuth(reg) })
    await s.http('PUT', '/v1/device/user-accounts/erin-acc', { auth: deviceAuth(reg) })
    await s.http('PUT', '/v1/device/topics/erin-topic', { auth: deviceAuth(reg) })
    await s.http('DELETE', '/v1/device', { auth: deviceAuth(reg) })
    expect((await s.http('GET', '/v1/aliases/erin', { auth: server() })).status).toBe(404)
    expect((await s.http('GET', '/v1/user-accounts/erin-acc', { auth: server() })).status).toBe(404)
    expect(
      (await s.http('GET', '/v1/topics/erin-topic', { auth: server() })).body.subscribers,
    ).toBe(0)
  })
})
