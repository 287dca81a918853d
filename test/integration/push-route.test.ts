import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ManualClock } from '../helpers/clock.js'
import { startTestServer, type TestServer } from '../helpers/server.js'

/**
 * `POST /v1/messages` is served before hono's router (api/http/push-route.ts). Two services, one
 * with that route and one without (everything through the router), get the same requests byte
 * for byte, and must answer the same bytes: status line, every header but Date, in order and
 * case, and body (message ids aside, which are random). Whatever one path checks, refuses or
 * answers, the other must too.
 */

/** One request as it goes on the wire; `{secret}` and `{regId}` are each service's own. */
interface RawRequest {
  method?: string
  path?: string
  headers: Array<[string, string]>
  body?: string
  /** How the body is framed: Content-Length (the default), chunked, or no body at all. */
  framing?: 'length' | 'chunked' | 'none'
}

interface Target {
  server: TestServer
  secret: string
  regId: string
}

function wire(r: RawRequest, t: Target, last: boolean): string {
  const fill = (s: string) => s.replaceAll('{secret}', t.secret).replaceAll('{regId}', t.regId)
  const body = fill(r.body ?? '')
  const lines = [`${r.method ?? 'POST'} ${r.path ?? '/v1/messages'} HTTP/1.1`]
  if (!r.headers.some(([n]) => n.toLowerCase() === 'host')) lines.push('host: 127.0.0.1')
  for (const [name, value] of r.headers) lines.push(`${name}: ${fill(value)}`)
  if (last) lines.push('connection: close')
  const framing = r.framing ?? (r.body === undefined ? 'none' : 'length')
  if (framing === 'length') lines.push(`content-length: ${Buffer.byteLength(body)}`)
  if (framing === 'chunked') lines.push('transfer-encoding: chunked')
  const head = lines.join('\r\n') + '\r\n\r\n'
  if (framing === 'chunked') {
    return head + `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`
  }
  return head + (framing === 'length' ? body : '')
}

/** Sends the requests on one connection, the last with `connection: close`; the raw answer. */
function exchange(t: Target, requests: RawRequest[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(t.server.httpPort, '127.0.0.1', () => {
      socket.write(requests.map((r, i) => wire(r, t, i === requests.length - 1)).join(''))
    })
    const chunks: Buffer[] = []
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    // a server that refuses an upload may reset the connection after its answer
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') reject(err)
    })
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')))
  })
}

/** The answers' bytes with what must differ between two services (Date, message ids) blanked. */
function comparable(raw: string): string {
  return raw
    .replace(/^Date: .*$/gim, 'Date: -')
    .replace(/"messageId":"m[0-9a-z]+"/g, '"messageId":"-"')
}

const auth: [string, string] = ['authorization', 'Bearer {secret}']
const json: [string, string] = ['content-type', 'application/json']
const push = (target: string) =>
  `{"target":{"regIds":["${target}"]},"kind":"passThrough","payload":"same"}`

const CASES: Array<[string, RawRequest[]]> = [
  ['a push', [{ headers: [auth, json], body: push('{regId}') }]],
  [
    "MiPush's key= form",
    [{ headers: [['authorization', 'key={secret}'], json], body: push('{regId}') }],
  ],
  [
    'a push to all, in pieces',
    [
      {
        headers: [auth, json],
        body: '{"target":{"all":true},"kind":"passThrough","payload":"a"}',
        framing: 'chunked',
      },
    ],
  ],
  ['no credentials', [{ headers: [json], body: push('{regId}') }]],
  [
    'Basic credentials',
    [{ headers: [['authorization', 'Basic eDp5'], json], body: push('{regId}') }],
  ],
  [
    'a wrong secret',
    [{ headers: [['authorization', 'Bearer not-the-secret'], json], body: push('{regId}') }],
  ],
  ['two Authorization headers', [{ headers: [auth, auth, json], body: push('{regId}') }]],
  ['no content type', [{ headers: [auth], body: push('{regId}') }]],
  [
    'a form',
    [{ headers: [auth, ['content-type', 'application/x-www-form-urlencoded']], body: 'a=b' }],
  ],
  [
    'two content types',
    [{ headers: [auth, ['content-type', 'text/plain'], json], body: push('{regId}') }],
  ],
  [
    'JSON with a charset',
    [
      {
        headers: [auth, ['content-type', 'application/json; charset=utf-8']],
        body: push('{regId}'),
      },
    ],
  ],
  ['broken JSON', [{ headers: [auth, json], body: '{"target":' }]],
  ['no body', [{ headers: [auth, json] }]],
  [
    'a wrongly shaped push',
    [{ headers: [auth, json], body: '{"target":{"type":"all"},"title":""}' }],
  ],
  ['a bad regId', [{ headers: [auth, json], body: push('not-a-regid') }]],
  ['an unknown regId', [{ headers: [auth, json], body: push('AAAAAAAAAAAAAAAAAAAAAA') }]],
  [
    'a payload over the limit',
    [
      {
        headers: [auth, json],
        body: `{"target":{"all":true},"kind":"passThrough","payload":"${'x'.repeat(5000)}"}`,
      },
    ],
  ],
  [
    'a body over the limit, by Content-Length',
    [{ headers: [auth, json], body: `{"p":"${'x'.repeat(20_000)}"}` }],
  ],
  [
    'a body over the limit, chunked',
    [{ headers: [auth, json], body: `{"p":"${'x'.repeat(20_000)}"}`, framing: 'chunked' }],
  ],
  [
    'a declared length over the limit without credentials',
    [{ headers: [['content-length', '999999'], json] }],
  ],
  [
    'a refusal, then a push on the same connection',
    [
      { headers: [['authorization', 'Bearer wrong'], json], body: push('{regId}') },
      { headers: [auth, json], body: push('{regId}') },
    ],
  ],
  [
    'pushes in a row on one connection',
    [
      { headers: [auth, json], body: push('{regId}') },
      { headers: [auth, json], body: 'nope' },
      { headers: [auth, json], body: push('{regId}') },
    ],
  ],
  ['a bad Host header', [{ headers: [['host', 'a b'], auth, json], body: push('{regId}') }]],
  [
    'a query string (the router either way)',
    [{ path: '/v1/messages?x=1', headers: [auth, json], body: push('{regId}') }],
  ],
  ['a trailing slash', [{ path: '/v1/messages/', headers: [auth, json], body: push('{regId}') }]],
  ['another method', [{ method: 'PUT', headers: [auth, json], body: push('{regId}') }]],
  ['a GET', [{ method: 'GET', headers: [auth] }]],
  [
    'a preflight',
    [
      {
        method: 'OPTIONS',
        headers: [
          ['origin', 'https://a.example'],
          ['access-control-request-method', 'POST'],
        ],
      },
    ],
  ],
]

async function pair(env: Record<string, string>): Promise<[Target, Target]> {
  const clock = new ManualClock()
  const targets: Target[] = []
  for (const pushRoute of [true, false]) {
    const server = await startTestServer({ env, clock, pushRoute })
    const reg = await server.register()
    targets.push({ server, secret: server.defaultApp.secret, regId: reg.regId })
  }
  return targets as [Target, Target]
}

describe('POST /v1/messages before the router answers as the router does', () => {
  let fast: Target
  let router: Target
  beforeAll(async () => {
    ;[fast, router] = await pair({ MQPUSH_HTTP_BODY_LIMIT_BYTES: '16384' })
  })
  afterAll(async () => {
    await fast?.server.stop()
    await router?.server.stop()
  })

  it.each(CASES)('%s', async (_name, requests) => {
    const a = await exchange(fast, requests)
    const b = await exchange(router, requests)
    expect(a).toMatch(/^HTTP\/1\.1 \d{3} /)
    expect(comparable(a)).toBe(comparable(b))
  })
})

describe('POST /v1/messages before the router: limits', () => {
  it('the push limit: the same answers, Retry-After included', async () => {
    const [fast, router] = await pair({ MQPUSH_RATE_PUSH_PER_SEC: '2' })
    try {
      // a burst of two seconds: 4 pushes, then 42901
      const requests = Array.from({ length: 6 }, () => ({
        headers: [auth, json],
        body: push('{regId}'),
      }))
      const a = await exchange(fast, requests)
      expect(a.match(/HTTP\/1\.1 429 /g)).toHaveLength(2)
      expect(a).toMatch(/\r\nretry-after: 1\r\n/)
      expect(comparable(a)).toBe(comparable(await exchange(router, requests)))
    } finally {
      await fast.server.stop()
      await router.server.stop()
    }
  })

  it('the failed-authentication limit: the same answers, the address blocked for the secret too', async () => {
    const [fast, router] = await pair({ MQPUSH_RATE_AUTH_FAILURES_PER_MIN: '3' })
    try {
      const wrong = { headers: [['authorization', 'Bearer wrong'], json], body: push('{regId}') }
      const right = { headers: [auth, json], body: push('{regId}') }
      const requests = [wrong, wrong, wrong, wrong, right] as RawRequest[]
      const a = await exchange(fast, requests)
      expect(a.match(/HTTP\/1\.1 401 /g)).toHaveLength(3)
      expect(a.match(/HTTP\/1\.1 429 /g)).toHaveLength(2)
      expect(a).toMatch(/"code":42902/)
      expect(comparable(a)).toBe(comparable(await exchange(router, requests)))
    } finally {
      await fast.server.stop()
      await router.server.stop()
    }
  })

  it('an unexpected failure: 50001 either way', async () => {
    const [fast, router] = await pair({})
    try {
      for (const t of [fast, router]) {
        t.server.services.messages.send = () => Promise.reject(new Error('the store is gone'))
      }
      const requests: RawRequest[] = [{ headers: [auth, json], body: push('{regId}') }]
      const a = await exchange(fast, requests)
      expect(a).toMatch(/^HTTP\/1\.1 500 /)
      expect(a).toMatch(/"code":50001/)
      expect(comparable(a)).toBe(comparable(await exchange(router, requests)))
    } finally {
      await fast.server.stop()
      await router.server.stop()
    }
  })
})
