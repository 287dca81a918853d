import { request } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '../helpers/server.js'

interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
}

/** A request as a browser on another origin sends it (node:http: any Origin header). */
function call(
  s: TestServer,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: unknown,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body)
    const req = request(
      `${s.baseUrl}${path}`,
      {
        method,
        headers: {
          ...headers,
          ...(data !== undefined && {
            'content-type': 'application/json',
            'content-length': String(Buffer.byteLength(data)),
          }),
        },
      },
      (res) => {
        res.resume()
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }))
      },
    )
    req.on('error', reject)
    req.end(data)
  })
}

const ALLOWED = 'https://app.example'

describe('CORS of the device endpoints, origins listed', () => {
  let s: TestServer
  beforeAll(async () => {
    s = await startTestServer({
      env: {
        MQPUSH_HTTP_CORS_ORIGINS: `${ALLOWED}, https://other.example`,
        MQPUSH_HTTP_BODY_LIMIT_BYTES: '4096',
      },
    })
  })
  afterAll(() => s.stop())
  const registration = () => ({ appId: s.defaultApp.id, appKey: s.defaultApp.key })

  it('an allowed origin gets its own origin back, and Vary: Origin', async () => {
    const res = await call(s, 'POST', '/v1/devices/register', { origin: ALLOWED }, registration())
    expect(res.status).toBe(200)
    expect(res.headers['access-control-allow-origin']).toBe(ALLOWED)
    expect(res.headers.vary).toBe('Origin')
    // the security headers are still there beside them
    expect(res.headers['x-content-type-options']).toBe('nosniff')
  })

  it('another origin gets no Allow-Origin (CORS is not authentication: the call still runs)', async () => {
    const res = await call(
      s,
      'POST',
      '/v1/devices/register',
      { origin: 'https://evil.example' },
      registration(),
    )
    expect(res.status).toBe(200)
    expect(res.headers['access-control-allow-origin']).toBeUndefined()
    expect(res.headers.vary).toBe('Origin')
  })

  it('an error answer carries the headers too, so the page can read it', async () => {
    const res = await call(
      s,
      'POST',
      '/v1/devices/register',
      { origin: ALLOWED },
      { appId: s.defaultApp.id, appKey: 'wrong-key-wrong-key-00' },
    )
    expect(res.status).toBe(401)
    expect(res.headers['access-control-allow-origin']).toBe(ALLOWED)
  })

  it('a body over the limit is refused 413 with the headers, so the page can read that too', async () => {
    const res = await call(
      s,
      'POST',
      '/v1/devices/register',
      { origin: ALLOWED },
      { ...registration(), attributes: { big: 'x'.repeat(5000) } },
    )
    expect(res.status).toBe(413)
    expect(res.headers['access-control-allow-origin']).toBe(ALLOWED)
    expect(res.headers.vary).toBe('Origin')
  })

  it("the device's own endpoints answer CORS; the servers' API does not", async () => {
    const d = await s.register()
    const basic = `Basic ${Buffer.from(`${d.regId}:${d.token}`).toString('base64')}`
    const own = await call(s, 'GET', '/v1/device', { origin: ALLOWED, authorization: basic })
    expect(own.status).toBe(200)
    expect(own.headers['access-control-allow-origin']).toBe(ALLOWED)
    const server = await call(
      s,
      'POST',
      '/v1/messages',
      { origin: ALLOWED, authorization: `Bearer ${s.defaultApp.secret}` },
      { target: { regIds: [d.regId] }, kind: 'passThrough', payload: 'x' },
    )
    expect(server.status).toBe(200)
    expect(server.headers['access-control-allow-origin']).toBeUndefined()
  })

  it('a preflight is answered 204 with the methods, headers and max age', async () => {
    const res = await call(s, 'OPTIONS', '/v1/devices/register', {
      origin: ALLOWED,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'content-type',
    })
    expect(res.status).toBe(204)
    expect(res.headers['access-control-allow-origin']).toBe(ALLOWED)
    expect(res.headers['access-control-allow-methods']).toBe('GET,POST,PUT,PATCH,DELETE')
    expect(res.headers['access-control-allow-headers']).toBe('Authorization,Content-Type')
    expect(res.headers['access-control-max-age']).toBe('600')
  })
})

describe('CORS of the device endpoints, any origin (the default)', () => {
  let s: TestServer
  beforeAll(async () => {
    s = await startTestServer()
  })
  afterAll(() => s.stop())

  it('answers Allow-Origin: * and no Vary', async () => {
    const res = await call(
      s,
      'POST',
      '/v1/devices/register',
      { origin: 'https://anywhere.example' },
      { appId: s.defaultApp.id, appKey: s.defaultApp.key },
    )
    expect(res.status).toBe(200)
    expect(res.headers['access-control-allow-origin']).toBe('*')
    expect(res.headers.vary).toBeUndefined()
  })
})
