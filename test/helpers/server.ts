import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../api/config/load.js'
import { start, type Running } from '../../api/main.js'
import type { Clock } from '../../api/core/clock.js'
import { type Logger, silentLogger } from '../../api/core/logger.js'
import type { RegisterResponse } from '../../sdk/protocol/schemas.js'

export interface TestServer extends Running {
  dataDir: string
  baseUrl: string
  mqttUrl: string
  wsUrl: string
  /** HTTP helper: JSON in, JSON out, status kept. */
  http(
    method: string,
    path: string,
    options?: { auth?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<{ status: number; body: any; headers: Headers }>
  /** Registers a device of the default app (or of `app`). */
  register(
    attributes?: Record<string, string>,
    extra?: Record<string, unknown>,
    app?: { appId: string; appKey: string },
  ): Promise<RegisterResponse>
  /** POST /v1/messages with the default app's secret (or `secret`). */
  push(body: unknown, secret?: string): Promise<{ status: number; body: any; headers: Headers }>
  /** Stops the server; the data directory stays unless `removeData`. */
  stop(removeData?: boolean): Promise<void>
}

export interface TestServerOptions {
  env?: Record<string, string>
  clock?: Clock
  /** Reuse a data directory (restart tests). */
  dataDir?: string
  /** `false`: `POST /v1/messages` through hono's router, as every other route (`StartOptions`). */
  pushRoute?: boolean
  /** Where the service logs (default: nowhere). */
  log?: Logger
}

/** The whole service in this process on free ports and a temporary data directory. */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'mqpush-test-'))
  const config = loadConfig({
    MQPUSH_DATA_DIR: dataDir,
    MQPUSH_HTTP_HOST: '127.0.0.1',
    MQPUSH_HTTP_PORT: '0',
    MQPUSH_MQTT_HOST: '127.0.0.1',
    MQPUSH_MQTT_PORT: '0',
    MQPUSH_LOG_LEVEL: 'silent',
    ...options.env,
  })
  const running = await start(config, {
    banner: false,
    log: options.log ?? silentLogger,
    ...(options.clock && { clock: options.clock }),
    ...(options.pushRoute !== undefined && { pushRoute: options.pushRoute }),
  })
  const baseUrl = `http://127.0.0.1:${running.httpPort}`
  const app = running.defaultApp
  const http: TestServer['http'] = async (method, path, o = {}) => {
    const headers: Record<string, string> = { ...o.headers }
    if (o.auth) headers.authorization = o.auth
    let body: string | undefined
    if (o.body !== undefined) {
      headers['content-type'] ??= 'application/json'
      body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body)
    }
    const res = await fetch(baseUrl + path, {
      method,
      headers,
      ...(body !== undefined && { body }),
    })
    const text = await res.text()
    let parsed: unknown = text
    try {
      parsed = text ? JSON.parse(text) : undefined
    } catch {
      // not JSON
    }
    return { status: res.status, body: parsed, headers: res.headers }
  }
  return {
    ...running,
    dataDir,
    baseUrl,
    mqttUrl: `mqtt://127.0.0.1:${running.mqttPort}`,
    wsUrl: `ws://127.0.0.1:${running.httpPort}${config.mqttWsPath}`,
    http,
    async register(attributes = {}, extra = {}, target) {
      const res = await http('POST', '/v1/devices/register', {
        body: {
          appId: target?.appId ?? app.id,
          appKey: target?.appKey ?? app.key,
          attributes,
          ...extra,
        },
      })
      if (res.status !== 200) throw new Error(`register failed: ${JSON.stringify(res.body)}`)
      return res.body as RegisterResponse
    },
    async push(body, secret = app.secret) {
      return http('POST', '/v1/messages', { auth: `Bearer ${secret}`, body })
    },
    async stop(removeData = true) {
      await running.close()
      if (removeData && !options.dataDir) rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

/** HTTP Basic credentials of a device. */
export function deviceAuth(reg: { regId: string; token: string }): string {
  return `Basic ${Buffer.from(`${reg.regId}:${reg.token}`).toString('base64')}`
}
