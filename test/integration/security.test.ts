import { request } from 'node:http'
import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ErrorCode } from '../../sdk/protocol/error-codes.js'
import { connackCode, connectDevice } from '../helpers/mqtt.js'
import { deviceAuth, startTestServer, type TestServer } from '../helpers/server.js'

describe('security: authentication, ACL, app isolation', () => {
  let s: TestServer
  let other: { appId: string; appKey: string; appSecret: string }
  beforeAll(async () => {
    s = await startTestServer()
    other = (
      await s.http('POST', '/admin/v1/apps', {
        auth: `Bearer ${s.adminToken}`,
        body: { name: 'other' },
      })
    ).body
  })
  afterAll(() => s.stop())

  it('refuses pushes without or with a wrong app secret (HTTP 401)', async () => {
    const none = await s.http('POST', '/v1/messages', {
      body: { target: { all: true }, title: 't', description: 'd' },
    })
    expect(none.status).toBe(401)
    expect(none.body.code).toBe(ErrorCode.MISSING_CREDENTIALS)
    const wrong = await s.push(
      { target: { all: true }, title: 't', description: 'd' },
      'not-the-secret',
    )
    expect(wrong.status).toBe(401)
    expect(wrong.body.code).toBe(ErrorCode.INVALID_APP_SECRET)
    // MiPush's header form is accepted
    const mipush = await s.http('POST', '/v1/messages', {
      auth: `key=${s.defaultApp.secret}`,
      body: { target: { all: true }, kind: 'passThrough', payload: 'x' },
    })
    expect(mipush.status).toBe(200)
  })

  it('refuses MQTT connections with wrong credentials (CONNACK 4) or a clean session (CONNACK 5)', async () => {
    const reg = await s.register()
    const base = { clientId: reg.regId, username: reg.appId, clean: false }
    expect(await connackCode(s.mqttUrl, { ...base, password: 'wrong' })).toBe(4)
    expect(await connackCode(s.mqttUrl, { ...base })).toBe(4)
    expect(
      await connackCode(s.mqttUrl, { ...base, password: reg.token, username: other.appId }),
    ).toBe(4)
    expect(
      await connackCode(s.mqttUrl, { ...base, password: reg.token, clientId: 'someone-else' }),
    ).toBe(4)
    expect(await connackCode(s.mqttUrl, { ...base, password: reg.token, clean: true })).toBe(5)
    expect(await connackCode(s.mqttUrl, { ...base, password: reg.token })).toBe(0)
  })

  it('a device may subscribe only to its own inbox and its own app topics', async () => {
    const me = await s.register()
    const neighbour = await s.register()
    const stranger = await s.register({}, {}, other)
    const d = await connectDevice(s.mqttUrl, me)
    const topics = [
      me.mqtt.topics.inbox, // own inbox
      me.mqtt.topics.all, // own app
      `${me.mqtt.topics.topicPrefix}news`, // own app topic
      neighbour.mqtt.topics.inbox, // another device's inbox
      stranger.mqtt.topics.all, // another app
      `${stranger.mqtt.topics.topicPrefix}news`, // another app's topic
      `mqp/${me.appId}/#`, // wildcards
      '#',
      '$SYS/#',
      me.mqtt.topics.click, // upstream
    ]
    // MQTT.js turns a refusal into an error; read the SUBACK itself
    const suback = new Promise<number[]>((resolve) =>
      d.client.on('packetreceive', (p) => {
        if (p.cmd === 'suback') resolve(p.granted as number[])
      }),
    )
    d.client.subscribe(
      Object.fromEntries(topics.map((topic) => [topic, { qos: 1 as const }])),
      () => {},
    )
    expect(await suback).toEqual([1, 1, 1, 128, 128, 128, 128, 128, 128, 128])
    // the refused subscriptions took no effect, online or offline
    await s.push(
      { target: { regIds: [neighbour.regId] }, kind: 'passThrough', payload: 'private' },
      s.defaultApp.secret,
    )
    await s.push(
      { target: { all: true }, kind: 'passThrough', payload: 'other app' },
      other.appSecret,
    )
    await d.expectNoMore(0)
    await d.end()
    await s.push(
      { target: { all: true }, kind: 'passThrough', payload: 'other app again' },
      other.appSecret,
    )
    const back = await connectDevice(s.mqttUrl, me)
    await back.expectNoMore(0)
    await back.end()
    // nor were they recorded as membership of the other app's topic
    const count = await s.http('GET', '/v1/topics/news', { auth: `Bearer ${other.appSecret}` })
    expect(count.body.subscribers).toBe(0)
  })

  it('a device may publish only its own upstream reports; anything else closes the connection', async () => {
    const me = await s.register()
    const neighbour = await s.register()
    for (const topic of [
      me.mqtt.topics.inbox,
      me.mqtt.topics.all,
      neighbour.mqtt.topics.click,
      'anything',
    ]) {
      const d = await connectDevice(s.mqttUrl, me)
      const closed = new Promise<void>((r) => d.client.once('close', () => r()))
      d.client.publish(topic, '{"id":"x"}', { qos: 1 })
      await closed
      d.client.end(true)
    }
    // its own click topic is fine
    const d = await connectDevice(s.mqttUrl, me)
    await d.client.publishAsync(me.mqtt.topics.click, '{"id":"m000000000000000000x"}', { qos: 1 })
    expect(d.client.connected).toBe(true)
    await d.end()
  })

  it("one app can never reach another app's devices", async () => {
    const mine = await s.register()
    const theirs = await s.register({}, {}, other)
    await s.http('PUT', '/v1/device/aliases/shared-name', { auth: deviceAuth(theirs) })
    await s.http('PUT', '/v1/device/topics/shared-topic', { auth: deviceAuth(theirs) })
    const d = await connectDevice(s.mqttUrl, theirs)
    const byRegId = await s.push({
      target: { regIds: [theirs.regId] },
      kind: 'passThrough',
      payload: 'x',
    })
    expect(byRegId.body.funnel).toMatchObject({ planned: 1, invalid: 1, valid: 0 })
    const byAlias = await s.push({
      target: { aliases: ['shared-name'] },
      kind: 'passThrough',
      payload: 'x',
    })
    expect(byAlias.body.funnel).toMatchObject({ planned: 1, invalid: 1, valid: 0 })
    const byTopic = await s.push({
      target: { topic: 'shared-topic' },
      kind: 'passThrough',
      payload: 'x',
    })
    expect(byTopic.body.funnel).toMatchObject({ planned: 0, valid: 0 })
    await s.push({ target: { all: true }, kind: 'passThrough', payload: 'x' })
    await d.expectNoMore(0)
    await d.end()
    // lookups and server-side subscribe do not cross apps either
    const lookups = [
      await s.http('GET', `/v1/devices/${theirs.regId}`, { auth: `Bearer ${s.defaultApp.secret}` }),
      await s.http('GET', '/v1/aliases/shared-name', { auth: `Bearer ${s.defaultApp.secret}` }),
    ]
    expect(lookups.map((r) => r.status)).toEqual([404, 404])
    const sub = await s.http('POST', '/v1/topics/t/subscribe', {
      auth: `Bearer ${s.defaultApp.secret}`,
      body: { regIds: [theirs.regId] },
    })
    expect(sub.body).toEqual({ topic: 't', subscribed: 0, invalid: [theirs.regId] })
    // nor can a device read another app's message
    const msg = await s.push({
      target: { regIds: [mine.regId] },
      kind: 'passThrough',
      payload: 'x',
    })
    const foreign = await s.http('GET', `/v1/messages/${msg.body.messageId}`, {
      auth: `Bearer ${other.appSecret}`,
    })
    expect(foreign.status).toBe(404)
  })

  it("device endpoints need the device's own token", async () => {
    const reg = await s.register()
    expect((await s.http('GET', '/v1/device')).body.code).toBe(ErrorCode.MISSING_CREDENTIALS)
    const wrong = await s.http('GET', '/v1/device', {
      auth: deviceAuth({ regId: reg.regId, token: 'x' }),
    })
    expect(wrong.status).toBe(401)
    expect(wrong.body.code).toBe(ErrorCode.INVALID_DEVICE_TOKEN)
  })

  it('limits request bodies and wants JSON', async () => {
    // node:http rather than fetch: undici reports an error when the server answers before
    // reading the whole upload, which is what a body limit is for
    const huge = await rawPost(
      s.httpPort,
      '/v1/messages',
      { authorization: `Bearer ${s.defaultApp.secret}`, 'content-type': 'application/json' },
      JSON.stringify({ target: { all: true }, kind: 'passThrough', payload: 'x'.repeat(300_000) }),
    )
    expect(huge.status).toBe(413)
    expect(JSON.parse(huge.body).code).toBe(ErrorCode.BODY_TOO_LARGE)
    const text = await s.http('POST', '/v1/messages', {
      auth: `Bearer ${s.defaultApp.secret}`,
      body: 'target=all',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })
    expect(text.status).toBe(415)
    const broken = await s.http('POST', '/v1/messages', {
      auth: `Bearer ${s.defaultApp.secret}`,
      body: '{"target":',
    })
    expect(broken.status).toBe(400)
    expect(broken.body.code).toBe(ErrorCode.INVALID_REQUEST)
  })

  it('reads a body that comes in pieces, with or without Content-Length, and limits it', async () => {
    const auth = `Bearer ${s.defaultApp.secret}`
    const body = JSON.stringify({ target: { all: true }, kind: 'passThrough', payload: 'pieces' })
    // headers and half the body first, the rest 50 ms later
    const split = await slowPost(s.httpPort, auth, [body.slice(0, 20), body.slice(20)], true)
    expect(split.status).toBe(200)
    expect(JSON.parse(split.body).messageId).toMatch(/^m/)
    // chunked (no Content-Length): read while it comes
    const chunked = await slowPost(s.httpPort, auth, [body.slice(0, 20), body.slice(20)], false)
    expect(chunked.status).toBe(200)
    // over the limit without Content-Length (chunked): refused while reading, and in one read
    const limited = await startTestServer({ env: { MQPUSH_HTTP_BODY_LIMIT_BYTES: '2000' } })
    try {
      const a = `Bearer ${limited.defaultApp.secret}`
      const big = JSON.stringify({
        target: { all: true },
        kind: 'passThrough',
        payload: 'x'.repeat(3000),
      })
      const inPieces = await slowPost(
        limited.httpPort,
        a,
        [big.slice(0, 1000), big.slice(1000)],
        false,
      )
      expect(inPieces.status).toBe(413)
      const atOnce = await oneWritePost(limited.httpPort, a, big, false)
      expect(atOnce.status).toBe(413)
      expect(JSON.parse(atOnce.body).code).toBe(ErrorCode.BODY_TOO_LARGE)
      // request line, headers and body in one write (as load generators send): read at once
      const small = JSON.stringify({ target: { all: true }, kind: 'passThrough', payload: 'one' })
      for (const withLength of [true, false]) {
        const one = await oneWritePost(limited.httpPort, a, small, withLength)
        expect(one.status).toBe(200)
        expect(JSON.parse(one.body).messageId).toMatch(/^m/)
      }
    } finally {
      await limited.stop()
    }
  })
})

describe('security: failed authentication limit', () => {
  it('blocks an address after too many failures, for HTTP and MQTT alike', async () => {
    const s = await startTestServer({ env: { MQPUSH_RATE_AUTH_FAILURES_PER_MIN: '3' } })
    try {
      const reg = await s.register()
      // two wrong app secrets and a wrong app key: failures of the same address
      for (let i = 0; i < 2; i++) {
        const res = await s.push(
          { target: { all: true }, title: 't', description: 'd' },
          `wrong${i}`,
        )
        expect(res.status).toBe(401)
      }
      const wrongKey = await s.http('POST', '/v1/devices/register', {
        body: { appId: s.defaultApp.id, appKey: 'wrong', attributes: {} },
      })
      expect(wrongKey.status).toBe(401)
      const blocked = await s.push({ target: { all: true }, title: 't', description: 'd' })
      expect(blocked.status).toBe(429)
      expect(blocked.body.code).toBe(ErrorCode.AUTH_RATE_LIMITED)
      expect(blocked.headers.get('retry-after')).toBe('60')
      // the same address over MQTT, even with the right token
      expect(
        await connackCode(s.mqttUrl, {
          clientId: reg.regId,
          username: reg.appId,
          password: reg.token,
          clean: false,
        }),
      ).toBe(5)
    } finally {
      await s.stop()
    }
  })
})

describe('security: stale devices are not attackers', () => {
  it('an invalidated regId with its right token is refused without counting as a failure', async () => {
    const s = await startTestServer({ env: { MQPUSH_RATE_AUTH_FAILURES_PER_MIN: '3' } })
    try {
      const stale = await s.register()
      await s.http('DELETE', '/v1/device', { auth: deviceAuth(stale) })
      const creds = {
        clientId: stale.regId,
        username: stale.appId,
        password: stale.token,
        clean: false,
      }
      for (let i = 0; i < 5; i++) expect(await connackCode(s.mqttUrl, creds)).toBe(4)
      const fresh = await s.register()
      expect(
        await connackCode(s.mqttUrl, {
          clientId: fresh.regId,
          username: fresh.appId,
          password: fresh.token,
          clean: false,
        }),
      ).toBe(0)
    } finally {
      await s.stop()
    }
  })
})

describe('security: MQTT packet size', () => {
  it('closes a connection that sends a packet over the limit', async () => {
    const s = await startTestServer({ env: { MQPUSH_MQTT_MAX_PACKET_BYTES: '2048' } })
    try {
      const reg = await s.register()
      const d = await connectDevice(s.mqttUrl, reg)
      const closed = new Promise<void>((r) => d.client.once('close', () => r()))
      d.client.publish(reg.mqtt.topics.click, 'x'.repeat(4096), { qos: 0 })
      await closed
      d.client.end(true)
      // a CONNECT over the limit never gets a CONNACK
      const code = await connackCode(s.mqttUrl, {
        clientId: reg.regId,
        username: reg.appId,
        password: 'p'.repeat(4096),
        clean: false,
        connectTimeout: 2000,
      })
      expect(code).not.toBe(0)
    } finally {
      await s.stop()
    }
  })
})

function rawPost(
  port: number,
  path: string,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers }, (res) => {
      let text = ''
      res.on('data', (chunk) => (text += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** A POST over node:http whose body goes out in these pieces, 50 ms apart. */
function slowPost(
  port: number,
  auth: string,
  pieces: string[],
  withLength: boolean,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {
      authorization: auth,
      'content-type': 'application/json',
    }
    if (withLength) headers['content-length'] = String(Buffer.byteLength(pieces.join('')))
    const req = request(
      { host: '127.0.0.1', port, path: '/v1/messages', method: 'POST', headers },
      (res) => {
        let text = ''
        res.on('data', (chunk) => (text += chunk))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
      },
    )
    req.on('error', (err) => {
      // the server may answer 413 and close before the whole upload went out
      if ((err as NodeJS.ErrnoException).code !== 'EPIPE') reject(err)
    })
    const send = (i: number) => {
      if (i === pieces.length - 1) return req.end(pieces[i])
      req.write(pieces[i])
      setTimeout(() => send(i + 1), 50)
    }
    send(0)
  })
}

/** A POST written to a plain socket in one write: request line, headers and body together. */
function oneWritePost(
  port: number,
  auth: string,
  body: string,
  withLength: boolean,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const bytes = Buffer.from(body)
    const framing = withLength
      ? `content-length: ${bytes.length}\r\n\r\n${body}`
      : `transfer-encoding: chunked\r\n\r\n${bytes.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(
        `POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n` +
          `authorization: ${auth}\r\ncontent-type: application/json\r\n${framing}`,
      )
    })
    let text = ''
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()))
    socket.on('error', reject)
    socket.on('close', () => {
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0)
      let rest = text.slice(text.indexOf('\r\n\r\n') + 4)
      if (/transfer-encoding: chunked/i.test(text)) {
        // de-chunk the answer
        let out = ''
        for (;;) {
          const nl = rest.indexOf('\r\n')
          const size = parseInt(rest.slice(0, nl), 16)
          if (!size) break
          out += rest.slice(nl + 2, nl + 2 + size)
          rest = rest.slice(nl + 2 + size + 2)
        }
        rest = out
      }
      resolve({ status, body: rest })
    })
  })
}
