import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Logger } from '../../api/core/logger.js'
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

/**
 * Sends the requests on one connection (from `localAddress`, default 127.0.0.1), the last with
 * `connection: close`; the raw answer.
 */
function exchange(t: Target, requests: RawRequest[], localAddress = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port: t.server.httpPort, host: '127.0.0.1', localAddress }, () => {
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

/** The status of every answer in a raw exchange, in order (a 100 Continue included). */
function statuses(raw: string): number[] {
  return [...raw.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]))
}

/** A client that sends the head and the start of a body, then goes away. */
function cutOff(t: Target): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(t.server.httpPort, '127.0.0.1', () => {
      const head = wire(
        { headers: [auth, json, ['content-length', '100']], framing: 'none' },
        t,
        false,
      )
      socket.write(head + '{"targ')
      setTimeout(() => socket.destroy(), 50)
    })
    socket.on('close', () => resolve())
    socket.on('error', () => {})
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

const over = (n: number) => `{"p":"${'x'.repeat(n)}"}`
const wrong: [string, string] = ['authorization', 'Bearer not-the-secret']

/** Name, the status of each answer, and the requests, sent on one connection. */
const CASES: Array<[string, number[], RawRequest[]]> = [
  ['a push', [200], [{ headers: [auth, json], body: push('{regId}') }]],
  [
    "MiPush's key= form",
    [200],
    [{ headers: [['authorization', 'key={secret}'], json], body: push('{regId}') }],
  ],
  [
    'a push to all, chunked',
    [200],
    [
      {
        headers: [auth, json],
        body: '{"target":{"all":true},"kind":"passThrough","payload":"a"}',
        framing: 'chunked',
      },
    ],
  ],
  ['no credentials', [401], [{ headers: [json], body: push('{regId}') }]],
  [
    'Basic credentials',
    [401],
    [{ headers: [['authorization', 'Basic eDp5'], json], body: push('{regId}') }],
  ],
  ['a wrong secret', [401], [{ headers: [wrong, json], body: push('{regId}') }]],
  ['two Authorization headers', [401], [{ headers: [auth, auth, json], body: push('{regId}') }]],
  ['no content type', [415], [{ headers: [auth], body: push('{regId}') }]],
  [
    'a form',
    [415],
    [{ headers: [auth, ['content-type', 'application/x-www-form-urlencoded']], body: 'a=b' }],
  ],
  [
    'two content types',
    [415],
    [{ headers: [auth, ['content-type', 'text/plain'], json], body: push('{regId}') }],
  ],
  [
    'JSON with a charset',
    [200],
    [
      {
        headers: [auth, ['content-type', 'application/json; charset=utf-8']],
        body: push('{regId}'),
      },
    ],
  ],
  ['broken JSON', [400], [{ headers: [auth, json], body: '{"target":' }]],
  ['no body', [400], [{ headers: [auth, json] }]],
  ['a Content-Length of 0', [400], [{ headers: [auth, json], body: '' }]],
  [
    'a wrongly shaped push',
    [400],
    [{ headers: [auth, json], body: '{"target":{"type":"all"},"title":""}' }],
  ],
  ['a bad regId', [400], [{ headers: [auth, json], body: push('not-a-regid') }]],
  ['an unknown regId', [200], [{ headers: [auth, json], body: push('AAAAAAAAAAAAAAAAAAAAAA') }]],
  [
    'a lone surrogate in the payload',
    [200],
    [
      {
        headers: [auth, json],
        body: '{"target":{"all":true},"kind":"passThrough","payload":"\udc80"}',
      },
    ],
  ],
  [
    'a payload over the limit',
    [413],
    [
      {
        headers: [auth, json],
        body: `{"target":{"all":true},"kind":"passThrough","payload":"${'x'.repeat(5000)}"}`,
      },
    ],
  ],
  [
    'a body over the limit, by Content-Length',
    [413],
    [{ headers: [auth, json], body: over(20_000) }],
  ],
  [
    'a body over the limit, chunked',
    [413],
    [{ headers: [auth, json], body: over(20_000), framing: 'chunked' }],
  ],
  [
    'a declared length over the limit without credentials',
    [413],
    [{ headers: [['content-length', '999999'], json] }],
  ],
  [
    'Expect: 100-continue',
    [100, 200],
    [{ headers: [auth, json, ['expect', '100-continue']], body: push('{regId}') }],
  ],
  [
    'a refusal, then a push on the same connection',
    [401, 200],
    [
      { headers: [wrong, json], body: push('{regId}') },
      { headers: [auth, json], body: push('{regId}') },
    ],
  ],
  [
    'pushes in a row on one connection',
    [200, 400, 200],
    [
      { headers: [auth, json], body: push('{regId}') },
      { headers: [auth, json], body: 'nope' },
      { headers: [auth, json], body: push('{regId}') },
    ],
  ],
  // refused by Node or @hono/node-server before either path
  ['a bad Host header', [400], [{ headers: [['host', 'a b'], auth, json], body: push('{regId}') }]],
  [
    'Content-Length and chunked at once',
    [400],
    [{ headers: [auth, json, ['content-length', '5']], body: push('{regId}'), framing: 'chunked' }],
  ],
  [
    'a lower-case method',
    [400],
    [{ method: 'post', headers: [auth, json], body: push('{regId}') }],
  ],
  // through the router either way
  [
    'a query string',
    [200],
    [{ path: '/v1/messages?x=1', headers: [auth, json], body: push('{regId}') }],
  ],
  [
    'an absolute-form target',
    [200],
    [{ path: 'http://127.0.0.1/v1/messages', headers: [auth, json], body: push('{regId}') }],
  ],
  [
    'a percent-encoded path',
    [200],
    [{ path: '/v1/%6Dessages', headers: [auth, json], body: push('{regId}') }],
  ],
  ['a fragment', [200], [{ path: '/v1/messages#x', headers: [auth, json], body: push('{regId}') }]],
  [
    'a trailing slash',
    [404],
    [{ path: '/v1/messages/', headers: [auth, json], body: push('{regId}') }],
  ],
  ['another method', [404], [{ method: 'PUT', headers: [auth, json], body: push('{regId}') }]],
  ['a GET', [404], [{ method: 'GET', headers: [auth] }]],
  ['a HEAD', [404], [{ method: 'HEAD', headers: [auth] }]],
  [
    'a preflight',
    [404],
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

/** Two services alike but for the push route, on one clock; `logs` gets what each logs. */
async function pair(
  env: Record<string, string>,
  logs?: [LogEntry[], LogEntry[]],
): Promise<[Target, Target]> {
  const clock = new ManualClock()
  const targets: Target[] = []
  for (const [i, pushRoute] of [true, false].entries()) {
    const log = logs && recorder(logs[i] as LogEntry[])
    const server = await startTestServer({ env, clock, pushRoute, ...(log && { log }) })
    const reg = await server.register()
    targets.push({ server, secret: server.defaultApp.secret, regId: reg.regId })
  }
  return targets as [Target, Target]
}

interface LogEntry {
  level: string
  fields: Record<string, string>
  msg: string | undefined
}

/** A logger that keeps each entry, its fields as strings (an error as its message). */
function recorder(into: LogEntry[]): Logger {
  const keep = (level: string) => (obj: object, msg?: string) => {
    const fields: Record<string, string> = {}
    for (const [k, v] of Object.entries(obj)) fields[k] = String(v)
    into.push({ level, fields, msg })
  }
  return { error: keep('error'), warn: keep('warn'), info: keep('info'), debug: keep('debug') }
}

/** Runs `body` with a pair (`pair`), and stops both services after it. */
async function onPair(
  env: Record<string, string>,
  body: (fast: Target, router: Target) => Promise<void>,
  logs?: [LogEntry[], LogEntry[]],
): Promise<void> {
  const [fast, router] = await pair(env, logs)
  try {
    await body(fast, router)
  } finally {
    await fast.server.stop()
    await router.server.stop()
  }
}

/** The fast service's answer to `requests`, after checking the router's is the same. */
async function sameAnswers(fast: Target, router: Target, requests: RawRequest[]): Promise<string> {
  const a = await exchange(fast, requests)
  expect(comparable(a)).toBe(comparable(await exchange(router, requests)))
  return a
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

  it.each(CASES)('%s: %j', async (_name, expected, requests) => {
    const a = await exchange(fast, requests)
    const b = await exchange(router, requests)
    expect(statuses(a)).toEqual(expected)
    expect(comparable(a)).toBe(comparable(b))
  })
})

describe('POST /v1/messages before the router: limits', () => {
  const one: RawRequest = { headers: [auth, json], body: push('{regId}') }
  const refused: RawRequest = { headers: [wrong, json], body: push('{regId}') }

  it('the push limit: the same answers, Retry-After included', async () => {
    await onPair({ MQPUSH_RATE_PUSH_PER_SEC: '2' }, async (fast, router) => {
      // a burst of two seconds: 4 pushes, then 42901
      const a = await sameAnswers(fast, router, [one, one, one, one, one, one])
      expect(statuses(a)).toEqual([200, 200, 200, 200, 429, 429])
      expect(a).toMatch(/\r\nretry-after: 1\r\n/)
    })
  })

  it('the push limit is spent before the body is read: 42901 for a broken body too', async () => {
    await onPair({ MQPUSH_RATE_PUSH_PER_SEC: '1' }, async (fast, router) => {
      const broken: RawRequest = { headers: [auth, json], body: 'nope' }
      const a = await sameAnswers(fast, router, [one, one, broken])
      expect(statuses(a)).toEqual([200, 200, 429])
      expect(a).toMatch(/"code":42901/)
    })
  })

  it('the failed-authentication limit: the same answers, the address blocked for the secret too', async () => {
    await onPair({ MQPUSH_RATE_AUTH_FAILURES_PER_MIN: '3' }, async (fast, router) => {
      const a = await sameAnswers(fast, router, [refused, refused, refused, refused, one])
      expect(statuses(a)).toEqual([401, 401, 401, 429, 429])
      expect(a).toMatch(/"code":42902/)
    })
  })

  it('the failed-authentication limit counts per client address', async () => {
    await onPair({ MQPUSH_RATE_AUTH_FAILURES_PER_MIN: '2' }, async (fast, router) => {
      for (const t of [fast, router]) {
        const a = await exchange(t, [refused, refused, refused], '127.0.0.1')
        expect(statuses(a)).toEqual([401, 401, 429])
        // another address is not blocked
        expect(statuses(await exchange(t, [one], '127.0.0.2'))).toEqual([200])
      }
    })
  })
})

describe('POST /v1/messages before the router: failures', () => {
  const one: RawRequest = { headers: [auth, json], body: push('{regId}') }

  it('is served before the router in the service that has the route, and only there', async () => {
    await onPair({}, async (fast, router) => {
      // the byte comparison cannot tell which path answered: the stack at the send can
      const stacks: string[] = []
      for (const t of [fast, router]) {
        const messages = t.server.services.messages
        const send = messages.send.bind(messages)
        messages.send = (...args) => {
          stacks.push(new Error('where from').stack ?? '')
          return send(...args)
        }
      }
      await exchange(fast, [one])
      await exchange(router, [one])
      expect(stacks).toHaveLength(2)
      expect(stacks[0]).toMatch(/push-route\.ts/)
      expect(stacks[1]).not.toMatch(/push-route\.ts/)
    })
  })

  it('an unexpected failure: 50001 either way, logged the same way', async () => {
    const logs: [LogEntry[], LogEntry[]] = [[], []]
    await onPair(
      {},
      async (fast, router) => {
        for (const t of [fast, router]) {
          t.server.services.messages.send = () => Promise.reject(new Error('the store is gone'))
        }
        const a = await sameAnswers(fast, router, [one])
        expect(statuses(a)).toEqual([500])
        expect(a).toMatch(/"code":50001/)
        const errors = logs.map((l) => l.filter((e) => e.level === 'error'))
        expect(errors[0]).toEqual([
          {
            level: 'error',
            fields: { err: 'Error: the store is gone', method: 'POST', path: '/v1/messages' },
            msg: 'unhandled error',
          },
        ])
        expect(errors[1]).toEqual(errors[0])
      },
      logs,
    )
  })

  it('a rejection that is not an Error: the same answer either way (a bare 500)', async () => {
    await onPair({}, async (fast, router) => {
      for (const t of [fast, router]) {
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the point
        t.server.services.messages.send = () => Promise.reject('the store is gone')
      }
      expect(statuses(await sameAnswers(fast, router, [one]))).toEqual([500])
    })
  })

  it('a body cut off by its client: not logged as an error, and both keep serving', async () => {
    const logs: [LogEntry[], LogEntry[]] = [[], []]
    await onPair(
      {},
      async (fast, router) => {
        for (const t of [fast, router]) await cutOff(t)
        await sleep(100)
        // a client going away is not the service's fault: no error logged, either way
        expect(logs.map((l) => l.filter((e) => e.level === 'error'))).toEqual([[], []])
        // (the loggers were listening: each has the start's lines)
        expect(logs[0].length).toBeGreaterThan(0)
        expect(statuses(await sameAnswers(fast, router, [one]))).toEqual([200])
      },
      logs,
    )
  })
})
