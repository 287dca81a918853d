import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ManualClock } from '../helpers/clock.js'
import { connectDevice } from '../helpers/mqtt.js'
import { startTestServer, type TestServer } from '../helpers/server.js'

describe('offline devices and expiry (§4.3.1)', () => {
  let s: TestServer
  const clock = new ManualClock()
  beforeAll(async () => {
    s = await startTestServer({ clock })
  })
  afterAll(() => s.stop())

  it('queues messages for an offline device and delivers them in order on reconnect', async () => {
    const reg = await s.register()
    const ids: string[] = []
    for (let i = 0; i < 5; i++) {
      const res = await s.push({
        target: { regIds: [reg.regId] },
        kind: 'passThrough',
        payload: `m${i}`,
      })
      ids.push(res.body.messageId)
    }
    const d = await connectDevice(s.mqttUrl, reg)
    const got = await d.waitFor(5)
    expect(got.map((m) => m.json.id)).toEqual(ids)
    await d.expectNoMore(5)
    await d.end()
    // acknowledged: a second reconnect gets nothing again
    const again = await connectDevice(s.mqttUrl, reg)
    await again.expectNoMore(0)
    await again.end()
  })

  it('never delivers an expired message to a device that comes back late', async () => {
    const reg = await s.register()
    await s.push({
      target: { regIds: [reg.regId] },
      kind: 'passThrough',
      payload: 'short',
      ttlSeconds: 60,
    })
    const long = await s.push({
      target: { regIds: [reg.regId] },
      kind: 'passThrough',
      payload: 'long',
      ttlSeconds: 3600,
    })
    clock.advance(61_000)
    const d = await connectDevice(s.mqttUrl, reg)
    const got = await d.waitFor(1)
    expect(got[0]!.json.id).toBe(long.body.messageId)
    await d.expectNoMore(1)
    await d.end()
    const st = await s.http('GET', `/v1/messages/${long.body.messageId}`, {
      auth: `Bearer ${s.defaultApp.secret}`,
    })
    expect(st.body.expired).toBe(false)
  })

  it('never redelivers an unacknowledged message after it expired', async () => {
    const reg = await s.register()
    /** A device that receives but never sends PUBACK: the message stays in flight. */
    const stubborn = async () => {
      const received: string[] = []
      const client = mqtt.connect(s.mqttUrl, {
        clientId: reg.regId,
        username: reg.appId,
        password: reg.token,
        clean: false,
        reconnectPeriod: 0,
      })
      client.on('message', (_topic, message) => {
        received.push(JSON.parse(message.toString()).payload)
      })
      // MQTT.js sends the PUBACK once handleMessage calls back: never call back
      client.handleMessage = () => {}
      await new Promise((r) => client.once('connect', r))
      return { client, received }
    }
    const first = await stubborn()
    await s.push({
      target: { regIds: [reg.regId] },
      kind: 'passThrough',
      payload: 'inflight',
      ttlSeconds: 30,
    })
    await expect.poll(() => first.received).toEqual(['inflight'])
    first.client.end(true)

    // before expiry an unacknowledged message comes again
    const second = await stubborn()
    await expect.poll(() => second.received).toEqual(['inflight'])
    second.client.end(true)
    // after expiry, never
    clock.advance(31_000)
    const late = await connectDevice(s.mqttUrl, reg)
    await late.expectNoMore(0)
    await late.end()
  })

  it('never delivers an expired topic message to an offline subscriber, and sweeps it from the queue', async () => {
    const reg = await s.register()
    await s.http('POST', '/v1/topics/flash/subscribe', {
      auth: `Bearer ${s.defaultApp.secret}`,
      body: { regIds: [reg.regId] },
    })
    await s.push({
      target: { topic: 'flash' },
      kind: 'passThrough',
      payload: 'sale',
      ttlSeconds: 10,
    })
    clock.advance(11_000)
    const swept = await s.runJob('sweep-expired')
    expect(swept).toBeGreaterThanOrEqual(1)
    const d = await connectDevice(s.mqttUrl, reg)
    await d.expectNoMore(0)
    await d.end()
  })
})
