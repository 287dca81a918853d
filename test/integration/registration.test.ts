import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ErrorCode } from '../../sdk/protocol/error-codes.js'
import { connackCode, connectDevice } from '../helpers/mqtt.js'
import { deviceAuth, startTestServer, type TestServer } from '../helpers/server.js'

describe('registration (§4.2.2)', () => {
  let s: TestServer
  beforeAll(async () => {
    s = await startTestServer()
  })
  afterAll(() => s.stop())

  it('gives a new device a regId and token, and records its attributes', async () => {
    const reg = await s.register({
      model: 'Pixel 9',
      os: 'android',
      appVersion: '2.1.0',
      locale: 'en-US',
    })
    expect(reg.regId).toMatch(/^[0-9A-Za-z]{22}$/)
    expect(reg.token.length).toBeGreaterThanOrEqual(40)
    expect(reg.renewed).toBe(false)
    expect(reg.mqtt).toMatchObject({
      clientId: reg.regId,
      username: s.defaultApp.id,
      password: reg.token,
    })
    const info = await s.http('GET', `/v1/devices/${reg.regId}`, {
      auth: `Bearer ${s.defaultApp.secret}`,
    })
    expect(info.body).toMatchObject({
      regId: reg.regId,
      valid: true,
      attributes: { model: 'Pixel 9', os: 'android', appVersion: '2.1.0', locale: 'en-US' },
    })
  })

  it('keeps the regId when the device re-registers with its cached regId and token', async () => {
    const first = await s.register({ appVersion: '1.0' })
    const again = await s.register(
      { appVersion: '1.1' },
      { regId: first.regId, token: first.token },
    )
    expect(again.regId).toBe(first.regId)
    expect(again.renewed).toBe(true)
    const info = await s.http('GET', '/v1/device', { auth: deviceAuth(again) })
    expect(info.body.attributes.appVersion).toBe('1.1')
  })

  it('does not hand a regId to somebody who only knows the regId', async () => {
    const victim = await s.register()
    const thief = await s.register({}, { regId: victim.regId, token: 'guessed' })
    expect(thief.regId).not.toBe(victim.regId)
    expect(thief.renewed).toBe(false)
    // the victim is untouched
    expect((await s.http('GET', '/v1/device', { auth: deviceAuth(victim) })).status).toBe(200)
  })

  it('a fresh install (same installation, no cached regId) gets a new regId; the old one is invalid', async () => {
    const before = await s.register({}, { installationId: 'android-id-1' })
    const after = await s.register({}, { installationId: 'android-id-1' })
    expect(after.regId).not.toBe(before.regId)
    const old = await s.http('GET', `/v1/devices/${before.regId}`, {
      auth: `Bearer ${s.defaultApp.secret}`,
    })
    expect(old.body.valid).toBe(false)
    expect(
      await connackCode(s.mqttUrl, {
        clientId: before.regId,
        username: before.appId,
        password: before.token,
        clean: false,
      }),
    ).toBe(4)
    const push = await s.push({
      target: { regIds: [before.regId, after.regId] },
      kind: 'passThrough',
      payload: 'x',
    })
    expect(push.body.funnel).toMatchObject({ planned: 2, invalid: 1, valid: 1 })
    const feedback = await s.http('GET', '/v1/feedback/invalid-reg-ids', {
      auth: `Bearer ${s.defaultApp.secret}`,
    })
    expect(feedback.body.regIds).toContainEqual(
      expect.objectContaining({ regId: before.regId, reason: 'reinstalled' }),
    )
  })

  it('unregister invalidates the regId: no more connections, pushes count it invalid', async () => {
    const reg = await s.register()
    const device = await connectDevice(s.mqttUrl, reg)
    const closed = new Promise<void>((resolve) => device.client.once('close', () => resolve()))
    const res = await s.http('DELETE', '/v1/device', { auth: deviceAuth(reg) })
    expect(res.status).toBe(204)
    await closed // the live connection is closed by the service
    expect(
      await connackCode(s.mqttUrl, {
        clientId: reg.regId,
        username: reg.appId,
        password: reg.token,
        clean: false,
      }),
    ).toBe(4)
    const push = await s.push({
      target: { regIds: [reg.regId] },
      kind: 'passThrough',
      payload: 'x',
    })
    expect(push.body.funnel).toMatchObject({ planned: 1, invalid: 1, valid: 0 })
    expect((await s.http('GET', '/v1/device', { auth: deviceAuth(reg) })).status).toBe(401)
    device.client.end(true)
  })

  it('refuses a wrong app key and a malformed body with documented codes', async () => {
    const wrongKey = await s.http('POST', '/v1/devices/register', {
      body: { appId: s.defaultApp.id, appKey: 'nope', attributes: {} },
    })
    expect(wrongKey.status).toBe(401)
    expect(wrongKey.body.code).toBe(ErrorCode.INVALID_APP_KEY)
    const unknownApp = await s.http('POST', '/v1/devices/register', {
      body: { appId: 'ap00000000000000', appKey: s.defaultApp.key, attributes: {} },
    })
    expect(unknownApp.body.code).toBe(ErrorCode.INVALID_APP_KEY)
    const bad = await s.http('POST', '/v1/devices/register', {
      body: { appId: s.defaultApp.id, appKey: s.defaultApp.key, attributes: { model: 5 } },
    })
    expect(bad.status).toBe(400)
    expect(bad.body.code).toBe(ErrorCode.INVALID_REQUEST)
    expect(bad.body.details[0].path).toBe('attributes.model')
    const notJson = await s.http('POST', '/v1/devices/register', {
      body: 'x',
      headers: { 'content-type': 'text/plain' },
    })
    expect(notJson.status).toBe(415)
    expect(notJson.body.code).toBe(ErrorCode.UNSUPPORTED_MEDIA_TYPE)
  })
})
