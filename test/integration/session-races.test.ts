import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectDevice } from '../helpers/mqtt.js'
import { deviceAuth, startTestServer, type TestServer } from '../helpers/server.js'

describe('sessions under races and odd clients', () => {
  let s: TestServer
  beforeAll(async () => {
    s = await startTestServer()
  })
  afterAll(() => s.stop())

  it('a topic subscribed while the device is still draining its queue applies at once', async () => {
    const reg = await s.register()
    await s.push({
      target: { regIds: [reg.regId] },
      kind: 'passThrough',
      payload: 'backlog',
    })
    for (let i = 0; i < 30; i++) {
      await Promise.all(
        Array.from({ length: 50 }, () =>
          s.push({ target: { regIds: [reg.regId] }, kind: 'passThrough', payload: 'backlog' }),
        ),
      )
    }
    const d = await connectDevice(s.mqttUrl, reg)
    // the SDK subscribes over HTTP right after connecting, while the queue drains
    expect((await s.http('PUT', '/v1/device/topics/news', { auth: deviceAuth(reg) })).status).toBe(
      204,
    )
    const res = await s.push({ target: { topic: 'news' }, kind: 'passThrough', payload: 'topic' })
    expect(res.body.funnel.valid).toBe(1)
    await d.waitFor(1502, 15_000)
    expect(d.received.some((m) => m.json.id === res.body.messageId)).toBe(true)
    await d.end()
  })

  it('a device cannot switch off queueing for its own inbox', async () => {
    const reg = await s.register()
    const d = await connectDevice(s.mqttUrl, reg)
    await d.client.subscribeAsync(reg.mqtt.topics.inbox, { qos: 0 })
    await d.client.unsubscribeAsync(reg.mqtt.topics.all)
    await d.end()
    const direct = await s.push({
      target: { regIds: [reg.regId] },
      kind: 'passThrough',
      payload: 'a',
    })
    const all = await s.push({ target: { all: true }, kind: 'passThrough', payload: 'b' })
    const back = await connectDevice(s.mqttUrl, reg)
    const got = await back.waitFor(2)
    expect(got.map((m) => m.json.id).sort()).toEqual(
      [direct.body.messageId, all.body.messageId].sort(),
    )
    await back.end()
  })
})

describe('registration limit per address', () => {
  it('answers 42901 past the per-address rate', async () => {
    const s = await startTestServer({ env: { MQPUSH_RATE_REGISTER_PER_ADDRESS_PER_SEC: '1' } })
    try {
      const results = []
      for (let i = 0; i < 4; i++) {
        results.push(
          await s.http('POST', '/v1/devices/register', {
            body: { appId: s.defaultApp.id, appKey: s.defaultApp.key, attributes: {} },
          }),
        )
      }
      expect(results.map((r) => r.status)).toEqual([200, 200, 429, 429])
      expect(results[2]!.body.code).toBe(42901)
    } finally {
      await s.stop()
    }
  })
})
