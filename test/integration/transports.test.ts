import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { connect } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectDevice } from '../helpers/mqtt.js'
import { startTestServer, type TestServer } from '../helpers/server.js'

describe('MQTT over WebSocket', () => {
  let s: TestServer
  beforeAll(async () => {
    s = await startTestServer()
  })
  afterAll(() => s.stop())

  it('serves devices on the HTTP port at /mqtt', async () => {
    const reg = await s.register()
    const d = await connectDevice(s.wsUrl, reg)
    const res = await s.push({ target: { regIds: [reg.regId] }, title: 'ws', description: 'works' })
    expect((await d.waitFor(1))[0]!.json.id).toBe(res.body.messageId)
    await d.end()
  })

  it('refuses WebSocket upgrades on other paths', async () => {
    const reg = await s.register()
    await expect(connectDevice(s.wsUrl.replace('/mqtt', '/other'), reg)).rejects.toThrow()
  })
})

describe('MQTT over TLS', () => {
  let dir: string
  let s: TestServer
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mqpush-tls-'))
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    )
    s = await startTestServer({
      env: {
        MQPUSH_MQTT_TLS_PORT: '0',
        MQPUSH_MQTT_TLS_CERT_FILE: join(dir, 'cert.pem'),
        MQPUSH_MQTT_TLS_KEY_FILE: join(dir, 'key.pem'),
      },
    })
  })
  afterAll(async () => {
    await s.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it('serves devices over mqtts when a certificate is configured', async () => {
    expect(s.mqttTlsPort).toBeGreaterThan(0)
    const reg = await s.register()
    const d = await connectDevice(`mqtts://127.0.0.1:${s.mqttTlsPort}`, reg, {
      ca: readFileSync(join(dir, 'cert.pem')),
    })
    const res = await s.push({
      target: { regIds: [reg.regId] },
      kind: 'passThrough',
      payload: 'tls',
    })
    expect((await d.waitFor(1))[0]!.json.id).toBe(res.body.messageId)
    await d.end()
  })

  it('drains a stored queue of more than a socket buffer over TLS, whole', async () => {
    // a TLS socket completes its writes later: the queue's coalescing ends at its first flush
    const reg = await s.register()
    const payload = 'q'.repeat(1000)
    const ids: string[] = []
    for (let i = 0; i < 200; i += 50) {
      const answers = await Promise.all(
        Array.from({ length: 50 }, () =>
          s.push({ target: { regIds: [reg.regId] }, kind: 'passThrough', payload }),
        ),
      )
      for (const a of answers) ids.push(a.body.messageId)
    }
    const d = await connectDevice(`mqtts://127.0.0.1:${s.mqttTlsPort}`, reg, {
      ca: readFileSync(join(dir, 'cert.pem')),
    })
    try {
      const got = await d.waitFor(200, 15_000)
      expect(new Set(got.map((r) => r.json.id))).toEqual(new Set(ids))
      // the queue's head went out with the CONNACK, the rest after it: the connection is not
      // left corked, a new message arrives
      await s.push({ target: { regIds: [reg.regId] }, kind: 'passThrough', payload: 'next' })
      expect((await d.waitFor(201, 5_000)).at(-1)?.json.payload).toBe('next')
    } finally {
      await d.end()
    }
  }, 30_000)
})

describe('HTTP keep-alive', () => {
  /** Sends one keep-alive request on a raw socket; resolves with ms from the answer to the server's close. */
  const idleUntilClosed = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port })
      let answeredAt = 0
      socket.on('data', (d: Buffer) => {
        if (answeredAt === 0 && d.toString('latin1').startsWith('HTTP/1.1 200')) {
          answeredAt = performance.now()
        }
      })
      socket.on('error', reject)
      socket.on('close', () =>
        answeredAt ? resolve(performance.now() - answeredAt) : reject(new Error('no answer')),
      )
      socket.write('GET /healthz HTTP/1.1\r\nhost: mqpush\r\nconnection: keep-alive\r\n\r\n')
    })

  it('closes an idle connection after MQPUSH_HTTP_KEEPALIVE_SECONDS, not before', async () => {
    const s = await startTestServer({ env: { MQPUSH_HTTP_KEEPALIVE_SECONDS: '1' } })
    try {
      const idleMs = await idleUntilClosed(s.httpPort)
      // Node's own default would close after 5 s; the setting says 1 s
      expect(idleMs).toBeGreaterThan(900)
      expect(idleMs).toBeLessThan(3000)
    } finally {
      await s.stop(true)
    }
  })

  it('sets a 65 s idle timeout by default, past the 60 s of common load balancers', async () => {
    const s = await startTestServer()
    try {
      const socket = connect({ host: '127.0.0.1', port: s.httpPort })
      const answered = new Promise<string>((resolve) =>
        socket.once('data', (d) => resolve(String(d))),
      )
      socket.write('GET /healthz HTTP/1.1\r\nhost: mqpush\r\nconnection: keep-alive\r\n\r\n')
      // Node states the server's idle timeout in the answer's Keep-Alive header
      expect(await answered).toMatch(/\r\nkeep-alive: timeout=65\r\n/i)
      socket.destroy()
    } finally {
      await s.stop(true)
    }
  })
})
