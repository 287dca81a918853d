import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { deviceAuth, startTestServer, type TestServer } from '../helpers/server.js'

const ALLOWED = 'https://app.example'
const ALLOW_ORIGIN = 'access-control-allow-origin'

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
  /** A registration as a page on `origin` sends it. */
  const register = (origin: string, body: object = {}) =>
    s.http('POST', '/v1/devices/register', {
      headers: { origin },
      body: { appId: s.defaultApp.id, appKey: s.defaultApp.key, ...body },
    })

  it('an allowed origin gets its own origin back, and Vary: Origin', async () => {
    const res = await register(ALLOWED)
    expect(res.status).toBe(200)
    expect(res.headers.get(ALLOW_ORIGIN)).toBe(ALLOWED)
    expect(res.headers.get('vary')).toBe('Origin')
    // the security headers are still there beside them
    expect(res.headers.get('x-content-type-options')).toBe('nosniff')
  })

  it('another origin gets no Allow-Origin (CORS is not authentication: the call still runs)', async () => {
    const res = await register('https://evil.example')
    expect(res.status).toBe(200)
    expect(res.headers.get(ALLOW_ORIGIN)).toBeNull()
    expect(res.headers.get('vary')).toBe('Origin')
  })

  it('an error answer carries the headers too, so the page can read it', async () => {
    const res = await register(ALLOWED, { appKey: 'wrong-key-wrong-key-00' })
    expect(res.status).toBe(401)
    expect(res.headers.get(ALLOW_ORIGIN)).toBe(ALLOWED)
  })

  it('a body over the limit is refused 413 with the headers, so the page can read that too', async () => {
    const res = await register(ALLOWED, { attributes: { big: 'x'.repeat(5000) } })
    expect(res.status).toBe(413)
    expect(res.headers.get(ALLOW_ORIGIN)).toBe(ALLOWED)
    expect(res.headers.get('vary')).toBe('Origin')
  })

  it("the device's own endpoints answer CORS; the servers' API does not", async () => {
    const d = await s.register()
    const own = await s.http('GET', '/v1/device', {
      auth: deviceAuth(d),
      headers: { origin: ALLOWED },
    })
    expect(own.status).toBe(200)
    expect(own.headers.get(ALLOW_ORIGIN)).toBe(ALLOWED)
    const server = await s.http('POST', '/v1/messages', {
      auth: `Bearer ${s.defaultApp.secret}`,
      headers: { origin: ALLOWED },
      body: { target: { regIds: [d.regId] }, kind: 'passThrough', payload: 'x' },
    })
    expect(server.status).toBe(200)
    expect(server.headers.get(ALLOW_ORIGIN)).toBeNull()
  })

  it('a preflight is answered 204 with the methods, headers and max age', async () => {
    const res = await s.http('OPTIONS', '/v1/devices/register', {
      headers: {
        origin: ALLOWED,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    })
    expect(res.status).toBe(204)
    expect(res.headers.get(ALLOW_ORIGIN)).toBe(ALLOWED)
    expect(res.headers.get('access-control-allow-methods')).toBe('GET,POST,PUT,PATCH,DELETE')
    expect(res.headers.get('access-control-allow-headers')).toBe('Authorization,Content-Type')
    expect(res.headers.get('access-control-max-age')).toBe('600')
  })
})

describe('CORS of the device endpoints, any origin (the default)', () => {
  let s: TestServer
  beforeAll(async () => {
    s = await startTestServer()
  })
  afterAll(() => s.stop())

  it('answers Allow-Origin: * and no Vary', async () => {
    const res = await s.http('POST', '/v1/devices/register', {
      headers: { origin: 'https://anywhere.example' },
      body: { appId: s.defaultApp.id, appKey: s.defaultApp.key },
    })
    expect(res.status).toBe(200)
    expect(res.headers.get(ALLOW_ORIGIN)).toBe('*')
    expect(res.headers.get('vary')).toBeNull()
  })
})
