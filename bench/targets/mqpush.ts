import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, mkdtempSync, openSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { SERVICE_NODE_FLAGS } from '../../api/runtime-flags.js'
import { nodeArgsFrom } from '../load/pool.js'
import type { DeviceCreds } from '../load/protocol.js'
import { httpJson } from './http.js'
import {
  cleanUpAtExit,
  freePort,
  httpPusher,
  type HttpPushTarget,
  kill,
  waitUntil,
} from './target.js'

const ADMIN_TOKEN = 'bench-admin-token'

export interface MqpushTarget extends HttpPushTarget {
  /** kill -9 and start again on the same data; resolves with ms until /healthz answers 200. */
  crashAndRestart(): Promise<number>
}

/**
 * The node flags a build of the service runs with (`api/runtime-flags.ts`, as its `npm start`
 * passes them), read from its `dist/`; none for a build from before that file.
 */
export async function serviceNodeFlagsOf(buildDir: string): Promise<readonly string[]> {
  const file = join(buildDir, 'dist/api/runtime-flags.js')
  if (!existsSync(file)) return []
  const flags = ((await import(pathToFileURL(file).href)) as { SERVICE_NODE_FLAGS?: unknown })
    .SERVICE_NODE_FLAGS
  if (!Array.isArray(flags) || !flags.every((f) => typeof f === 'string')) {
    throw new Error(`${file}: SERVICE_NODE_FLAGS is not a list of strings`)
  }
  return flags
}

export interface MqpushOptions {
  /** Environment variables for the service, over the bench's own. */
  env?: Record<string, string>
  /** Another build's entry point (`npm run bench:ab` compares two builds). */
  main?: string
  /** That build's node flags (`serviceNodeFlagsOf`); each build runs with its own. */
  serviceFlags?: readonly string[]
  /** The most connections its push requests are sent on (`--http-connections`). */
  httpConnections?: number
}

/**
 * The built service (`dist/api/main.js`) as its own process, on the embedded store, with its
 * node flags, or another build's (`main`, `serviceFlags`).
 */
export async function startMqpush(o: MqpushOptions = {}): Promise<MqpushTarget> {
  const env = o.env ?? {}
  const main = o.main ?? new URL('../../api/main.js', import.meta.url).pathname
  const serviceFlags = o.serviceFlags ?? SERVICE_NODE_FLAGS
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-mqpush-'))
  const httpPort = await freePort()
  const mqttPort = await freePort()
  const httpUrl = `http://127.0.0.1:${httpPort}`
  const fullEnv = {
    ...process.env,
    MQPUSH_DATA_DIR: dataDir,
    MQPUSH_HTTP_HOST: '127.0.0.1',
    MQPUSH_HTTP_PORT: String(httpPort),
    MQPUSH_MQTT_HOST: '127.0.0.1',
    MQPUSH_MQTT_PORT: String(mqttPort),
    MQPUSH_ADMIN_TOKEN: ADMIN_TOKEN,
    MQPUSH_LOG_LEVEL: 'warn',
    // the bench measures capacity, not the per-app protection limits
    MQPUSH_RATE_PUSH_PER_SEC: '1000000',
    MQPUSH_RATE_REGISTER_PER_SEC: '1000000',
    MQPUSH_RATE_REGISTER_PER_ADDRESS_PER_SEC: '1000000',
    MQPUSH_RATE_AUTH_FAILURES_PER_MIN: '1000000',
    ...env,
  }
  let child: ChildProcess | undefined
  const forget = cleanUpAtExit(() => {
    child?.kill('SIGKILL')
    rmSync(dataDir, { recursive: true, force: true })
  })
  const spawnService = async (): Promise<number> => {
    const started = performance.now()
    // the service's own flags, as `npm start` passes them; then MQPUSH_BENCH_NODE_ARGS: extra
    // node flags for the service only, e.g. --cpu-prof (a later flag wins: --v8-pool-size=4
    // there undoes the service's =1)
    const nodeArgs = [...serviceFlags, ...nodeArgsFrom('MQPUSH_BENCH_NODE_ARGS')]
    // MQPUSH_BENCH_SERVICE_LOG: a file for the service's stdout (its log, --trace-gc output)
    const logFile = process.env.MQPUSH_BENCH_SERVICE_LOG
    const out = logFile ? openSync(logFile, 'a') : 'ignore'
    child = spawn(process.execPath, [...nodeArgs, main], {
      env: fullEnv,
      stdio: ['ignore', out, 'inherit'],
    })
    if (typeof out === 'number') closeSync(out)
    await waitUntil(
      async () => (await httpJson('GET', `${httpUrl}/healthz`)).status === 200,
      60_000,
      'mqpush to serve',
    )
    return performance.now() - started
  }
  await spawnService()

  const apps = (
    await httpJson('GET', `${httpUrl}/admin/v1/apps`, undefined, {
      authorization: `Bearer ${ADMIN_TOKEN}`,
    })
  ).body as { apps: Array<{ appId: string; appKey: string; appSecret: string }> }
  const app = apps.apps[0]!
  const auth = { authorization: `Bearer ${app.appSecret}` }
  const pusher = httpPusher(httpUrl, auth, o.httpConnections)
  const post = async (path: string, body: unknown) => {
    const res = await httpJson('POST', httpUrl + path, body, auth)
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(res.body)}`)
    return res.body as unknown
  }
  const inBatches = async (devices: DeviceCreds[], f: (ids: string[]) => Promise<unknown>) => {
    const batches: string[][] = []
    for (let i = 0; i < devices.length; i += 1000) {
      batches.push(devices.slice(i, i + 1000).map((d) => d.clientId))
    }
    let next = 0
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < batches.length) await f(batches[next++]!)
      }),
    )
  }

  const target: MqpushTarget = {
    name: 'mqpush',
    host: '127.0.0.1',
    port: mqttPort,
    get pid() {
      return (child as ChildProcess).pid as number
    },
    httpUrl,
    secret: app.appSecret,
    async makeDevices(n) {
      const out: DeviceCreds[] = new Array(n)
      let next = 0
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (next < n) {
            const i = next++
            const res = await httpJson('POST', `${httpUrl}/v1/devices/register`, {
              appId: app.appId,
              appKey: app.appKey,
              attributes: {},
            })
            if (res.status !== 200) {
              throw new Error(`register: ${res.status} ${JSON.stringify(res.body)}`)
            }
            const reg = res.body as { regId: string; token: string }
            out[i] = { clientId: reg.regId, username: app.appId, password: reg.token }
          }
        }),
      )
      return out
    },
    // the service subscribed each session to its inbox and the app's topic at registration
    subscriptions: [],
    async joinTopic(devices) {
      await inBatches(devices, (regIds) => post('/v1/topics/news/subscribe', { regIds }))
    },
    async broadcast(to, payload) {
      await post('/v1/messages', {
        target: to === 'all' ? { all: true } : { topic: 'news' },
        kind: 'passThrough',
        payload,
      })
    },
    async unicast(devices, payload, ttlSeconds) {
      await inBatches(devices, (regIds) =>
        post('/v1/messages', {
          target: { regIds },
          kind: 'passThrough',
          payload,
          ...(ttlSeconds !== undefined && { ttlSeconds }),
        }),
      )
    },
    push: pusher.push,
    sendOne: pusher.sendOne,
    async crashAndRestart() {
      pusher.close()
      await kill(child as ChildProcess, 'SIGKILL')
      return spawnService()
    },
    async stop() {
      pusher.close()
      await kill(child as ChildProcess, 'SIGTERM')
      rmSync(dataDir, { recursive: true, force: true })
      forget()
    },
  }
  return target
}
