import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, connect, type AddressInfo, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '../../test/helpers/server.js'
import { MqpushApiError } from '../protocol/api-error.js'
import { ErrorCode } from '../protocol/error-codes.js'
import type { PushEnvelope } from '../protocol/envelope.js'
import { MqpushServer } from '../server/mqpush-server.js'
import type { DeviceStorage } from './device-storage.js'
import { FileStorage } from './file-storage.js'
import { MemoryStorage } from './memory-storage.js'
import { MqpushDevice, type MqpushDeviceEvents, type MqpushDeviceOptions } from './mqpush-device.js'

// The device SDK against the whole service over real sockets: TCP, WebSocket, HTTP.

let s: TestServer
let server: MqpushServer
let dir: string
const devices: MqpushDevice[] = []
const proxies: Proxy[] = []

beforeAll(async () => {
  s = await startTestServer()
  server = new MqpushServer({ baseUrl: s.baseUrl, appSecret: s.defaultApp.secret })
  dir = mkdtempSync(join(tmpdir(), 'mqpush-device-'))
})
afterEach(async () => {
  await Promise.all(devices.splice(0).map((d) => d.stop()))
  await Promise.all(proxies.splice(0).map((p) => p.close()))
})
afterAll(async () => {
  await s.stop()
  rmSync(dir, { recursive: true, force: true })
})

/** A device of the default app, reconnecting fast; stopped after the test. */
function newDevice(options: Partial<MqpushDeviceOptions> = {}): MqpushDevice {
  const device = new MqpushDevice({
    apiUrl: s.baseUrl,
    mqttUrl: s.mqttUrl,
    appId: s.defaultApp.id,
    appKey: s.defaultApp.key,
    reconnectPeriodMs: 50,
    ...options,
  })
  devices.push(device)
  return device
}

/** Starts a device and waits until it is connected. */
async function started(device: MqpushDevice) {
  const connected = next(device, 'connected')
  const registered = await device.start()
  await connected
  return registered
}

/** The next value of an event; listen before causing it. */
function next<E extends keyof MqpushDeviceEvents>(
  device: MqpushDevice,
  event: E,
  timeoutMs = 5000,
): Promise<MqpushDeviceEvents[E]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off()
      reject(new Error(`no ${event} event within ${timeoutMs} ms`))
    }, timeoutMs)
    const off = device.once(event, (value) => {
      clearTimeout(timer)
      resolve(value)
    })
  })
}

/** Every value of the listed events, in order. */
function record(device: MqpushDevice) {
  const seen = {
    notification: [] as PushEnvelope[],
    passThrough: [] as PushEnvelope[],
    message: [] as PushEnvelope[],
  }
  for (const event of ['notification', 'passThrough', 'message'] as const) {
    device.on(event, (m) => seen[event].push(m))
  }
  return seen
}

/** Polls a condition of the service (not a timer: it returns as soon as the state is there). */
async function until(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 10))
  }
}

const unique = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`
const note = (title: string) => ({ title, description: `${title}, described` })

/** A storage that calls `then` after each write. */
class AfterWrite implements DeviceStorage {
  constructor(
    readonly inner: DeviceStorage,
    readonly then: (key: string) => void,
  ) {}
  get(key: string) {
    return this.inner.get(key)
  }
  async set(key: string, value: string) {
    await this.inner.set(key, value)
    this.then(key)
  }
  delete(key: string) {
    return this.inner.delete(key)
  }
}

/** A TCP proxy in front of the broker whose connections a test can cut. */
interface Proxy {
  url: string
  /** Refuse new connections (the network is down). */
  refusing: boolean
  /** Drop every open connection at once, without a DISCONNECT. */
  cut(): void
  close(): Promise<void>
}

async function startProxy(): Promise<Proxy> {
  const sockets = new Set<Socket>()
  const tcp = createServer((downstream) => {
    if (proxy.refusing) return downstream.destroy()
    const upstream = connect(s.mqttPort, '127.0.0.1')
    for (const [a, b] of [
      [downstream, upstream],
      [upstream, downstream],
    ] as const) {
      sockets.add(a)
      a.on('error', () => a.destroy())
      a.on('close', () => {
        sockets.delete(a)
        b.destroy()
      })
      a.pipe(b)
    }
  })
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve))
  const proxy: Proxy = {
    url: `mqtt://127.0.0.1:${(tcp.address() as AddressInfo).port}`,
    refusing: false,
    cut: () => sockets.forEach((socket) => socket.destroy()),
    close: () => {
      proxy.cut()
      return new Promise((resolve) => tcp.close(() => resolve()))
    },
  }
  proxies.push(proxy)
  return proxy
}

describe('MqpushDevice', () => {
  it('registers, connects and emits a notification and a pass-through as their own events', async () => {
    const device = newDevice({ attributes: { model: 'Pixel 9', appVersion: '3.1.0' } })
    const registered = next(device, 'registered')
    const reg = await started(device)
    expect(reg).toEqual({ regId: device.regId, renewed: false })
    expect(await registered).toEqual(reg)
    expect(device.connected).toBe(true)
    expect((await server.getDevice(reg.regId)).attributes).toEqual({
      model: 'Pixel 9',
      appVersion: '3.1.0',
    })
    const seen = record(device)

    const notified = next(device, 'notification')
    const sent = await server.sendToRegIds([reg.regId], {
      ...note('Hello'),
      extra: { screen: 'inbox' },
      notifyId: 7,
    })
    const n = await notified
    expect(n).toMatchObject({
      id: sent.messageId,
      kind: 'notification',
      title: 'Hello',
      description: 'Hello, described',
      extra: { screen: 'inbox' },
      notifyId: 7,
      target: { type: 'regId' },
    })

    const passed = next(device, 'passThrough')
    await server.sendToRegIds([reg.regId], { kind: 'passThrough', payload: '{"sync":true}' })
    const p = await passed
    expect(p).toMatchObject({ kind: 'passThrough', payload: '{"sync":true}' })

    expect(seen.notification.map((m) => m.id)).toEqual([n.id])
    expect(seen.passThrough.map((m) => m.id)).toEqual([p.id])
    expect(seen.message.map((m) => m.id)).toEqual([n.id, p.id])
  })

  it('reconnects by itself after losing the connection and receives what was queued meanwhile', async () => {
    const proxy = await startProxy()
    const device = newDevice({ mqttUrl: proxy.url })
    const { regId } = await started(device)

    const disconnected = next(device, 'disconnected')
    proxy.refusing = true
    proxy.cut()
    expect(await disconnected).toEqual({ reconnecting: true })
    await until(async () => !(await server.getDevice(regId)).online)

    const sent = await server.sendToRegIds([regId], { kind: 'passThrough', payload: 'while away' })
    expect(sent.funnel).toMatchObject({ valid: 1 })
    const reconnected = next(device, 'connected')
    const received = next(device, 'passThrough')
    proxy.refusing = false
    await reconnected
    expect((await received).id).toBe(sent.messageId)
  })

  it('a restart with the same FileStorage keeps the regId and receives what was queued while stopped', async () => {
    const path = join(dir, unique('restart'), 'mqpush.json')
    const first = newDevice({ storage: new FileStorage(path) })
    const { regId } = await started(first)
    const shown = next(first, 'notification')
    await server.sendToRegIds([regId], note('Before'))
    await shown
    await first.stop()

    const queued = await server.sendToRegIds([regId], note('While stopped'))
    const second = newDevice({ storage: new FileStorage(path) })
    const seen = record(second)
    const received = next(second, 'notification')
    expect(await second.start()).toEqual({ regId, renewed: true })
    expect((await received).id).toBe(queued.messageId)
    expect(seen.message.map((m) => m.title)).toEqual(['While stopped'])
  })

  it('does not emit a message again when the broker redelivers it after a restart', async () => {
    const path = join(dir, unique('dedupe'), 'mqpush.json')
    const proxy = await startProxy()
    // the app "crashes" right after it stored the id, before the PUBACK leaves
    const crashing = new AfterWrite(new FileStorage(path), (key) => {
      if (!key.endsWith(':delivered')) return
      proxy.refusing = true
      proxy.cut()
    })
    const first = newDevice({ mqttUrl: proxy.url, storage: crashing })
    const { regId } = await started(first)
    const shown = next(first, 'notification')
    const lost = await server.sendToRegIds([regId], note('Shown once'))
    expect((await shown).id).toBe(lost.messageId)
    await first.stop()
    expect((await server.getMessage(lost.messageId)).funnel.delivered).toBe(0)

    const second = newDevice({ storage: new FileStorage(path) })
    const seen = record(second)
    const received = next(second, 'notification')
    await started(second)
    const fresh = await server.sendToRegIds([regId], note('New one'))
    expect((await received).id).toBe(fresh.messageId)
    expect(seen.message.map((m) => m.title)).toEqual(['New one'])
    // the broker did redeliver it, and the device acknowledged it without showing it
    await until(async () => (await server.getMessage(lost.messageId)).funnel.delivered === 1)
  })

  it('registers afresh and says so when the service invalidates its regId while connected', async () => {
    const installationId = unique('install')
    const storage = new MemoryStorage()
    const device = newDevice({ installationId, storage })
    const { regId: before } = await started(device)

    const registered = next(device, 'registered')
    const reconnected = next(device, 'connected')
    // the same installation registers without the cached regId: a reinstall, the old regId dies
    await s.register({}, { installationId })
    const event = await registered
    expect(event).toEqual({ regId: device.regId, renewed: false, previousRegId: before })
    expect(event.regId).not.toBe(before)
    await reconnected
    expect(
      JSON.parse((await storage.get(`mqpush:${s.defaultApp.id}:registration`)) ?? '{}'),
    ).toMatchObject({ regId: event.regId })

    const received = next(device, 'passThrough')
    const sent = await server.sendToRegIds([event.regId], { kind: 'passThrough', payload: 'new' })
    expect((await received).id).toBe(sent.messageId)
  })

  it('a cached regId the service no longer accepts gets replaced at start, and says so', async () => {
    const installationId = unique('install')
    const path = join(dir, unique('stale'), 'mqpush.json')
    const first = newDevice({ installationId, storage: new FileStorage(path) })
    const { regId: before } = await first.start()
    await first.stop()
    await s.register({}, { installationId }) // reinstalled elsewhere meanwhile

    const second = newDevice({ installationId, storage: new FileStorage(path) })
    const event = await started(second)
    expect(event).toEqual({ regId: second.regId, renewed: false, previousRegId: before })
    expect((await server.getDevice(before)).valid).toBe(false)
  })

  it('sets and unsets aliases, userAccounts and topics, which targeting then uses', async () => {
    const device = newDevice()
    const { regId } = await started(device)
    const alias = unique('alice')
    const account = unique('acct')
    const topic = unique('news')

    await device.setAlias(alias)
    await device.setUserAccount(account)
    await device.subscribe(topic)
    expect(await server.lookupAlias(alias)).toBe(regId)
    expect(await server.lookupUserAccount(account)).toEqual([regId])
    expect(await server.countTopicSubscribers(topic)).toBe(1)
    expect(await device.info()).toMatchObject({
      regId,
      valid: true,
      online: true,
      aliases: [alias],
      userAccounts: [account],
      topics: [topic],
    })

    const seen = record(device)
    const three = new Promise<void>((resolve) =>
      device.on('message', () => seen.message.length === 3 && resolve()),
    )
    await server.sendToAliases([alias], note('To alias'))
    await server.sendToUserAccounts([account], note('To account'))
    await server.sendToTopic(topic, note('To topic'))
    await three
    expect(seen.message.map((m) => m.target)).toEqual([
      { type: 'alias', alias },
      { type: 'userAccount', userAccount: account },
      { type: 'topic', topic },
    ])

    await device.unsetAlias(alias)
    await device.unsetUserAccount(account)
    await device.unsubscribe(topic)
    await expect(server.lookupAlias(alias)).rejects.toMatchObject({
      code: ErrorCode.ALIAS_NOT_FOUND,
    })
    await expect(server.lookupUserAccount(account)).rejects.toMatchObject({
      code: ErrorCode.USER_ACCOUNT_NOT_FOUND,
    })
    expect(await server.countTopicSubscribers(topic)).toBe(0)
    expect((await server.sendToTopic(topic, note('Nobody'))).funnel.valid).toBe(0)
  })

  it('reports a click over MQTT when connected and over HTTP when not', async () => {
    const requests: string[] = []
    const device = newDevice({
      fetch: (input, init) => {
        requests.push(`${init?.method ?? 'GET'} ${new URL(input as string).pathname}`)
        return fetch(input, init)
      },
    })
    const { regId } = await started(device)

    const first = next(device, 'notification')
    const { messageId: overMqtt } = await server.sendToRegIds([regId], note('Click me'))
    await first
    await device.reportClick(overMqtt)
    expect((await server.getMessage(overMqtt)).funnel).toMatchObject({ delivered: 1, clicked: 1 })
    expect(requests).not.toContain('POST /v1/device/clicks')

    const second = next(device, 'notification')
    const { messageId: overHttp } = await server.sendToRegIds([regId], note('Later'))
    await second
    await device.stop()
    await until(async () => (await server.getMessage(overHttp)).funnel.delivered === 1)
    await device.reportClick(overHttp)
    expect(requests).toContain('POST /v1/device/clicks')
    expect((await server.getMessage(overHttp)).funnel.clicked).toBe(1)
  })

  it('works over MQTT on WebSocket', async () => {
    const device = newDevice({ mqttUrl: s.wsUrl })
    const { regId } = await started(device)
    const received = next(device, 'notification')
    const { messageId } = await server.sendToRegIds([regId], note('Over WebSocket'))
    expect((await received).id).toBe(messageId)
    await device.reportClick(messageId)
    expect((await server.getMessage(messageId)).funnel.clicked).toBe(1)
  })

  it('updates its attributes, also for later registrations', async () => {
    const device = newDevice({ attributes: { appVersion: '1.0.0', locale: 'en-US' } })
    await started(device)
    await device.updateAttributes({ appVersion: '1.1.0', locale: 'de-DE', network: 'wifi' })
    expect((await device.info()).attributes).toEqual({
      appVersion: '1.1.0',
      locale: 'de-DE',
      network: 'wifi',
    })
    await device.stop()
    await device.start() // re-registers with its cached regId and the current attributes
    expect((await device.info()).attributes).toMatchObject({ appVersion: '1.1.0' })
  })

  it('unregister invalidates the regId, disconnects for good and clears the storage', async () => {
    const storage = new MemoryStorage()
    const since = new Date()
    const device = newDevice({ storage })
    const { regId } = await started(device)
    const pushed = next(device, 'passThrough')
    await server.sendToRegIds([regId], { kind: 'passThrough', payload: 'x' })
    await pushed

    const disconnected = next(device, 'disconnected')
    await device.unregister()
    expect(await disconnected).toEqual({ reconnecting: false })
    expect(device.regId).toBeUndefined()
    expect(device.connected).toBe(false)
    expect(await storage.get(`mqpush:${s.defaultApp.id}:registration`)).toBeUndefined()
    expect(await storage.get(`mqpush:${s.defaultApp.id}:delivered`)).toBeUndefined()
    expect((await server.getDevice(regId)).valid).toBe(false)
    expect(await server.invalidRegIds({ since })).toContainEqual(
      expect.objectContaining({ regId, reason: 'unregistered' }),
    )
    await expect(device.info()).rejects.toThrow(/not registered/)
  })

  it('throws API errors as MqpushApiError with their code', async () => {
    const wrongKey = newDevice({ appKey: 'not-the-key' })
    const err = await wrongKey.start().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(MqpushApiError)
    expect(err).toMatchObject({ code: ErrorCode.INVALID_APP_KEY, http: 401 })
    expect(wrongKey.regId).toBeUndefined()

    const device = newDevice()
    await device.start()
    await expect(device.setAlias('a/b')).rejects.toMatchObject({
      name: 'MqpushApiError',
      code: ErrorCode.INVALID_NAME,
    })
    await expect(device.subscribe('x'.repeat(129))).rejects.toMatchObject({
      code: ErrorCode.INVALID_NAME,
    })
  })

  it('refuses misconfiguration when it is built', () => {
    const base = { apiUrl: s.baseUrl, mqttUrl: s.mqttUrl, appId: 'a', appKey: 'k' }
    expect(() => new MqpushDevice({ ...base, mqttUrl: 'http://x' })).toThrow(/mqttUrl/)
    expect(() => new MqpushDevice({ ...base, apiUrl: 'mqtt://x' })).toThrow(/apiUrl/)
    expect(() => new MqpushDevice({ ...base, appKey: '' })).toThrow(/appKey/)
    expect(() => new MqpushDevice({ ...base, reconnectPeriodMs: 0 })).toThrow(/reconnectPeriodMs/)
  })
})
