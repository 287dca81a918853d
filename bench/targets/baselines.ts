import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createConnection } from 'node:net'
import { nodeArgsFrom } from '../load/pool.js'
import type { DeviceCreds } from '../load/protocol.js'
import { openPublisher, publishAll } from './publisher.js'
import {
  cleanUpAtExit,
  freePort,
  httpPusher,
  type HttpPushTarget,
  kill,
  type Target,
  waitUntil,
} from './target.js'

const canConnect = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => {
      s.destroy()
      resolve(true)
    })
    s.on('error', () => resolve(false))
  })

/**
 * A bare broker's unicast payload as long as the envelope mqpush delivers for the same payload
 * (the same fields, a message id of the same length, unique per payload): with
 * MQPUSH_BENCH_ENVELOPE=1, a baseline's queued messages (the drain's; its fixed rate and
 * broadcasts are left as they are) carry the bytes mqpush's do, and the load workers read as
 * many. Without it a baseline's message is its bare payload, about a seventh of mqpush's bytes.
 * For payloads of up to 19 characters, without quotes or backslashes (`id=q{j}`).
 */
export function envelopeLike(payload: string): string {
  if (payload.length > 19 || /["\\]/.test(payload)) {
    throw new Error(`envelopeLike takes a short plain payload, not ${JSON.stringify(payload)}`)
  }
  const id = `${payload}/`.padEnd(20, '0')
  return `{"id":"${id}","expiresAt":1796732778562,"kind":"passThrough","sentAt":1796646378562,"target":{"type":"regId"},"payload":"${payload}"}`
}

/**
 * A bare broker: devices subscribe to their topics themselves, a publisher client sends; with
 * `httpPort` (the `aedes-http` baseline), a unicast is an HTTP push by regId as for mqpush.
 */
async function bareBroker(
  name: string,
  child: ChildProcess,
  port: number,
  cleanup: () => void,
  httpPort?: number,
  httpConnections?: number,
): Promise<Target> {
  child.on('exit', cleanup)
  const forget = cleanUpAtExit(() => {
    child.kill('SIGKILL')
    cleanup()
  })
  await waitUntil(() => canConnect(port), 15_000, `${name} to listen`)
  // a bare broker gets its messages from a publisher client; the floor takes them over HTTP
  const publisher = httpPort === undefined ? await openPublisher('127.0.0.1', port) : undefined
  const mqtt = () => {
    if (!publisher) throw new Error(`${name} takes its pushes over HTTP only`)
    return publisher
  }
  let counter = 0
  const http = httpPort === undefined ? undefined : floorHttp(httpPort, httpConnections)
  const target: Target = {
    name,
    host: '127.0.0.1',
    port,
    pid: child.pid as number,
    async makeDevices(n) {
      const run = ++counter
      return Array.from({ length: n }, (_, i): DeviceCreds => ({ clientId: `d${run}x${i}` }))
    },
    // the floor's devices as many as mqpush's sessions have: their own and one app-wide topic
    subscriptions: http
      ? ['bench/d/{id}', 'bench/all']
      : ['bench/d/{id}', 'bench/all', 'bench/t/news'],
    async joinTopic() {
      // the devices subscribe to bench/t/news themselves when they connect
    },
    async broadcast(to, payload) {
      await mqtt().publish(to === 'all' ? 'bench/all' : 'bench/t/news', payload)
    },
    async unicast(devices, payload) {
      const body = process.env.MQPUSH_BENCH_ENVELOPE === '1' ? envelopeLike(payload) : payload
      await publishAll(
        mqtt(),
        devices.map((d) => ({ topic: `bench/d/${d.clientId}`, payload: body })),
      )
    },
    async sendOne(device, payload) {
      await mqtt().publish(`bench/d/${device.clientId}`, payload)
      return true
    },
    async stop() {
      publisher?.close()
      http?.pusher.close()
      // SIGTERM lets the plain Aedes baseline exit normally (so --cpu-prof writes its profile)
      await kill(child, name === 'mosquitto' ? 'SIGKILL' : 'SIGTERM')
      forget()
    },
  }
  if (!http) return target
  await waitUntil(() => canConnect(http.port), 15_000, `${name}'s HTTP to listen`)
  const withHttp: HttpPushTarget = {
    ...target,
    httpUrl: http.url,
    secret: 'unused',
    push: http.pusher.push,
    sendOne: http.pusher.sendOne,
  }
  return withHttp
}

/** The `aedes-http` floor's push endpoint, and the sender of its push requests. */
function floorHttp(port: number, maxConnections: number | undefined) {
  const url = `http://127.0.0.1:${port}`
  // as mqpush's requests carry one (the floor ignores it)
  const pusher = httpPusher(url, { authorization: 'Bearer unused' }, maxConnections)
  return { port, url, pusher }
}

/**
 * Aedes 1.x with its default in-memory persistence and no hooks; `http`: behind the least HTTP
 * push endpoint there can be (`aedes-server.ts`), the floor for mqpush's HTTP → device unicast.
 */
export async function startPlainAedes(
  o: { http?: boolean; httpConnections?: number } = {},
): Promise<Target> {
  const port = await freePort()
  const httpPort = o.http ? await freePort() : undefined
  const script = new URL('./aedes-server.js', import.meta.url)
  // MQPUSH_BENCH_BASELINE_ARGS: node flags for the plain Aedes baselines, e.g. --cpu-prof
  const nodeArgs = nodeArgsFrom('MQPUSH_BENCH_BASELINE_ARGS')
  const args = [...nodeArgs, script.pathname, String(port)]
  if (httpPort !== undefined) args.push(String(httpPort))
  const child = spawn(process.execPath, args, { stdio: 'inherit' })
  const name = o.http ? 'aedes-http' : 'aedes (memory)'
  return bareBroker(name, child, port, () => {}, httpPort, o.httpConnections)
}

/** Mosquitto from Debian, on a free loopback port, with no limit on queued messages. */
export async function startMosquitto(): Promise<Target> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'bench-mosquitto-'))
  const conf = join(dir, 'mosquitto.conf')
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence false',
      'max_queued_messages 0',
      'max_inflight_messages 0',
      'log_dest none',
    ].join('\n') + '\n',
  )
  const child = spawn('mosquitto', ['-c', conf], { stdio: 'inherit' })
  return bareBroker('mosquitto', child, port, () => rmSync(dir, { recursive: true, force: true }))
}

/** Mosquitto is there, or installed from Debian now; false (and said why) when it cannot be. */
export function ensureMosquitto(): boolean {
  try {
    execFileSync('mosquitto', ['-h'], { stdio: 'ignore' })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return true // -h exits non-zero
    console.error('installing Debian package mosquitto for the baseline…')
    try {
      execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'mosquitto'], {
        stdio: 'inherit',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      })
    } catch {
      console.error('SKIPPED mosquitto baseline: the package could not be installed')
      return false
    }
  }
  return true
}
