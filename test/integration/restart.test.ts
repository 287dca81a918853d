import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { RegisterResponse } from '../../sdk/protocol/schemas.js'
import { connectDevice } from '../helpers/mqtt.js'
import { spawnService, type ServiceProcess } from '../helpers/process.js'

/**
 * The service as its own process: the first start prints the credentials; `kill -9` with
 * messages queued loses nothing that was accepted — queued messages, sessions, subscriptions,
 * devices and aliases all survive.
 */
describe('restart after kill -9', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mqpush-restart-'))
  let service: ServiceProcess | undefined
  afterAll(async () => {
    await service?.stop()
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('loses nothing accepted', async () => {
    service = await spawnService({ MQPUSH_DATA_DIR: dataDir })
    const banner = service.output()
    const field = (label: string) => new RegExp(`${label}:\\s+(\\S+)`).exec(banner)?.[1] as string
    const app = { id: field('App id'), key: field('App key'), secret: field('App secret') }
    expect(app.id).toMatch(/^ap/)
    expect(banner).toContain('Find them again')
    const adminToken = field('Admin token')
    expect(readFileSync(join(dataDir, 'admin-token'), 'utf8').trim()).toBe(adminToken)

    const base = () => `http://127.0.0.1:${(service as ServiceProcess).httpPort}`
    const call = async (method: string, path: string, auth: string, body?: unknown) => {
      const res = await fetch(base() + path, {
        method,
        headers: { authorization: auth, 'content-type': 'application/json' },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      })
      const text = await res.text()
      return { status: res.status, body: text ? JSON.parse(text) : undefined }
    }
    const server = `Bearer ${app.secret}`
    const basic = (r: RegisterResponse) =>
      `Basic ${Buffer.from(`${r.regId}:${r.token}`).toString('base64')}`
    const register = async () =>
      (
        await call('POST', '/v1/devices/register', '', {
          appId: app.id,
          appKey: app.key,
          attributes: {},
        })
      ).body as RegisterResponse

    const d1 = await register()
    const d2 = await register()
    expect((await call('PUT', '/v1/device/aliases/alice', basic(d1))).status).toBe(204)
    expect((await call('PUT', '/v1/device/user-accounts/alice-acc', basic(d1))).status).toBe(204)
    expect((await call('PUT', '/v1/device/topics/news', basic(d2))).status).toBe(204)
    // d2 also subscribes with a plain MQTT SUBSCRIBE, then goes offline
    const mqttUrl = () => `mqtt://127.0.0.1:${(service as ServiceProcess).mqttPort}`
    const online = await connectDevice(mqttUrl(), d2)
    await online.client.subscribeAsync(`${d2.mqtt.topics.topicPrefix}sports`, { qos: 1 })
    await online.end()

    const push = async (target: unknown, payload: string) => {
      const res = await call('POST', '/v1/messages', server, {
        target,
        kind: 'passThrough',
        payload,
      })
      expect(res.status).toBe(200)
      return res.body.messageId as string
    }
    const forD1: string[] = []
    const forD2: string[] = []
    for (let i = 0; i < 40; i++) forD1.push(await push({ regIds: [d1.regId] }, `r${i}`))
    for (let i = 0; i < 5; i++) forD1.push(await push({ aliases: ['alice'] }, `a${i}`))
    forD1.push(await push({ userAccounts: ['alice-acc'] }, 'u'))
    for (let i = 0; i < 3; i++) forD2.push(await push({ topic: 'news' }, `n${i}`))
    forD2.push(await push({ topic: 'sports' }, 's'))
    const all = await push({ all: true }, 'everyone')
    forD1.push(all)
    forD2.push(all)

    // no graceful anything: SIGKILL right after the last accepted push
    await service.kill9()
    service = await spawnService({ MQPUSH_DATA_DIR: dataDir })
    expect(service.output()).not.toContain('App secret') // the app exists: no new credentials
    // and again as soon as it serves: what the first start recovered may not be durable yet
    // (its queue rows and dispatched marks are written behind); the mark must not have passed it
    await service.kill9()
    service = await spawnService({ MQPUSH_DATA_DIR: dataDir })

    // devices, aliases, userAccounts and topic membership survived
    expect((await call('GET', '/v1/aliases/alice', server)).body.regId).toBe(d1.regId)
    expect((await call('GET', '/v1/user-accounts/alice-acc', server)).body.regIds).toEqual([
      d1.regId,
    ])
    expect((await call('GET', `/v1/devices/${d2.regId}`, server)).body.topics).toEqual([
      'news',
      'sports',
    ])

    // sessions survived (sessionPresent) and every queued message arrives, in order
    const r1 = await connectDevice(mqttUrl(), d1)
    const r2 = await connectDevice(mqttUrl(), d2)
    expect(r1.client.connected).toBe(true)
    const got1 = await r1.waitFor(forD1.length, 10_000)
    const got2 = await r2.waitFor(forD2.length, 10_000)
    expect(got1.map((m) => m.json.id)).toEqual(forD1)
    expect(got2.map((m) => m.json.id)).toEqual(forD2)
    await r1.expectNoMore(forD1.length)
    await r2.expectNoMore(forD2.length)

    // and the receipts are counted after the restart
    await expect
      .poll(async () => (await call('GET', `/v1/messages/${all}`, server)).body.funnel.delivered, {
        timeout: 5000,
      })
      .toBe(2)
    await r1.end()
    await r2.end()
  }, 90_000)
})
