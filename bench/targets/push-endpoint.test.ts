import { Aedes } from 'aedes'
import mqtt, { type MqttClient } from 'mqtt'
import type { AddressInfo } from 'node:net'
import { createServer, type Server as NetServer } from 'node:net'
import type { Server } from 'node:http'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { LeanHttpSender } from '../load/http-sender.js'
import { parsePush, servePushes } from './push-endpoint.js'

// The aedes-http baseline's endpoint: a push by regId over HTTP reaches the device over MQTT,
// with real sockets on both sides.

let aedes: Aedes
let mqttServer: NetServer
let http: Server
let base: string
let device: MqttClient
const received: Array<{ topic: string; payload: string }> = []

beforeAll(async () => {
  aedes = await Aedes.createBroker()
  mqttServer = createServer((s) => aedes.handle(s))
  await new Promise<void>((r) => mqttServer.listen(0, '127.0.0.1', r))
  http = await servePushes(aedes, 0)
  base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`
  const port = (mqttServer.address() as AddressInfo).port
  device = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
    clientId: 'dev1',
    clean: false,
    reconnectPeriod: 0,
  })
  device.on('message', (topic, payload) => received.push({ topic, payload: payload.toString() }))
  await device.subscribeAsync(['bench/d/dev1', 'bench/d/dev2'], { qos: 1 })
})

afterAll(async () => {
  await device?.endAsync()
  http?.closeAllConnections()
  await new Promise((r) => http?.close(r))
  await new Promise((r) => mqttServer?.close(r))
  await new Promise<void>((r) => aedes?.close(() => r()))
})

const push = (body: unknown, path = '/v1/messages') =>
  fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })

const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10))
  return check()
}

describe('the aedes-http push endpoint', () => {
  it('publishes a push by regId to each device topic at QoS 1 and answers 200', async () => {
    const res = await push({ target: { regIds: ['dev1', 'dev2'] }, kind: 'x', payload: 't=1' })
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ ok: true })
    expect(await until(() => received.length >= 2)).toBe(true)
    expect(received.map((m) => m.topic).sort()).toEqual(['bench/d/dev1', 'bench/d/dev2'])
    expect(received.every((m) => m.payload === 't=1')).toBe(true)
  })

  it('refuses what is not a push by regId, and publishes nothing', async () => {
    const before = received.length
    expect((await push('{not json')).status).toBe(400)
    expect((await push({ target: { all: true }, payload: 'x' })).status).toBe(400)
    expect((await push({ target: { regIds: ['a/b'] }, payload: 'x' })).status).toBe(400)
    expect((await push({ target: { regIds: ['dev1'] }, payload: 1 })).status).toBe(400)
    expect((await push({ target: { regIds: ['dev1'] }, payload: 'x' }, '/v1/other')).status).toBe(
      404,
    )
    expect((await fetch(`${base}/v1/messages`)).status).toBe(405)
    const big = { target: { regIds: ['dev1'] }, payload: 'x'.repeat(300_000) }
    expect((await push(big)).status).toBe(413)
    await new Promise((r) => setTimeout(r, 100))
    expect(received.length).toBe(before)
  })

  it('answers 500 when Aedes fails the publish', async () => {
    const failing = vi
      .spyOn(aedes, 'publish')
      .mockImplementation((_packet, done) => done(new Error('no')))
    try {
      const res = await push({ target: { regIds: ['dev1'] }, payload: 'x' })
      expect(res.status).toBe(500)
      expect(failing).toHaveBeenCalledOnce()
    } finally {
      failing.mockRestore()
    }
  })

  it("keeps a connection usable after a refusal (the bench's keep-alive sender)", async () => {
    const sender = new LeanHttpSender(`${base}/v1/messages`, {}, 1)
    try {
      const before = received.length
      expect(await sender.post('{not json')).toBe(400)
      expect(await sender.post(JSON.stringify({ payload: 'x'.repeat(300_000) }))).toBe(413)
      const ok = JSON.stringify({ target: { regIds: ['dev1'] }, payload: 't=2' })
      expect(await sender.post(ok)).toBe(200)
      expect(await until(() => received.length > before)).toBe(true)
      expect(received.at(-1)).toEqual({ topic: 'bench/d/dev1', payload: 't=2' })
    } finally {
      sender.close()
    }
  })
})

describe('parsePush', () => {
  it("takes the regIds and the payload of mqpush's push body", () => {
    expect(parsePush('{"target":{"regIds":["a","b-c"]},"payload":"p"}')).toEqual({
      regIds: ['a', 'b-c'],
      payload: 'p',
    })
    expect(parsePush('{"target":{"regIds":[]},"payload":"p"}')).toBeUndefined()
    expect(parsePush('{"target":{"regIds":["+"]},"payload":"p"}')).toBeUndefined()
  })
})
