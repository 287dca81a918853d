import { serve, type ServerType } from '@hono/node-server'
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import type { Server as HttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { setFlagsFromString } from 'node:v8'
import { pino } from 'pino'
import { createBroker } from '../broker/index.js'
import { ErrorCode } from '../sdk/protocol/error-codes.js'
import type { AppId, RegId } from '../sdk/protocol/ids.js'
import { loadConfig } from './config/load.js'
import type { Config } from './config/schema.js'
import { AppService } from './core/apps/app-service.js'
import { type Clock, systemClock } from './core/clock.js'
import { DeviceService } from './core/devices/device-service.js'
import { ApiError } from './core/errors.js'
import { newSecret } from './core/ids.js'
import type { Logger } from './core/logger.js'
import type { Dispatcher, SessionManager } from './core/messages/dispatcher.js'
import { MessageService } from './core/messages/message-service.js'
import type { App } from './core/model.js'
import { ReceiptService } from './core/receipts/receipt-service.js'
import { createHttpApp } from './http/app.js'
import type { HttpDeps } from './http/deps.js'
import { withPushRoute } from './http/push-route.js'
import { defineJobs } from './jobs/definitions.js'
import { startJobs } from './jobs/index.js'
import { BackupSpaceError, openEmbeddedStore } from './store/embedded/index.js'
import { MemoryRateLimiter } from './store/memory/rate-limiter.js'

export interface StartOptions {
  clock?: Clock
  log?: Logger
  /** Print the first-start banner (credentials) to stdout. */
  banner?: boolean
  /**
   * For tests: `false` serves `POST /v1/messages` through hono's router like every other route,
   * instead of before it (api/http/push-route.ts), so that the two can be compared.
   */
  pushRoute?: boolean
}

export interface Running {
  httpPort: number
  mqttPort: number
  mqttTlsPort: number | undefined
  adminToken: string
  defaultApp: App
  config: Config
  services: { apps: AppService; devices: DeviceService; messages: MessageService }
  /** Runs a background job now (tests, operators). */
  runJob(name: string): Promise<unknown>
  close(): Promise<void>
}

/**
 * The composition root (STYLE rule 2): config → store → core → broker → HTTP → jobs.
 * Nothing else in the codebase wires parts together.
 */
export async function start(config: Config, options: StartOptions = {}): Promise<Running> {
  const clock = options.clock ?? systemClock
  const log = options.log ?? pino({ level: config.logLevel, base: { service: 'mqpush' } })

  const store = openEmbeddedStore({
    dataDir: config.dataDir,
    synchronous: config.storeSynchronous,
    onWriteError: (err) => log.error({ err }, 'store write failed'),
  })
  const adminToken = config.adminToken ?? loadOrCreateAdminToken(config.dataDir, options)

  // The broker and the core need each other: the core's ports are filled in once the broker
  // exists; the broker only calls the core after it listens, when both are built.
  const late: { sessions?: SessionManager; dispatcher?: Dispatcher } = {}
  const sessions = () => late.sessions as SessionManager
  const dispatcher = () => late.dispatcher as Dispatcher
  const sessionPort: SessionManager = {
    openSession: (a, r) => sessions().openSession(a, r),
    subscribe: (a, r, t) => sessions().subscribe(a, r, t),
    unsubscribe: (a, r, t) => sessions().unsubscribe(a, r, t),
    closeSession: (r) => sessions().closeSession(r),
    isOnline: (r) => late.sessions?.isOnline(r) ?? false,
  }
  const dispatcherPort: Dispatcher = {
    toDevices: (a, p) => dispatcher().toDevices(a, p),
    toTopic: (a, t, p) => dispatcher().toTopic(a, t, p),
    toAll: (a, p) => dispatcher().toAll(a, p),
    queuedMessageIds: () => dispatcher().queuedMessageIds(),
  }

  const apps = new AppService({ apps: store.apps, clock })
  const devices = new DeviceService({
    devices: store.devices,
    aliases: store.aliases,
    topics: store.topics,
    sessions: sessionPort,
    clock,
    log,
  })
  const messages = new MessageService({
    devices: store.devices,
    aliases: store.aliases,
    topics: store.topics,
    messages: store.messages,
    dispatcher: dispatcherPort,
    clock,
    log,
  })
  const receipts = new ReceiptService({ messages: store.messages, clock })
  const authFailures = new MemoryRateLimiter({
    ratePerSec: config.authFailuresPerMinute / 60,
    burst: config.authFailuresPerMinute,
    clock,
  })

  const broker = await createBroker(
    {
      authenticateDevice: async (appId, regId, token) => {
        const d = await devices.verifyToken(regId, token)
        return d && d.appId === appId ? d : undefined
      },
      topicsOf: (regId) => devices.topicsOf(regId as RegId),
      membership: {
        subscribed: (appId, regId, topics) =>
          store.topics.addTopics(appId as AppId, regId as RegId, topics, clock.now()),
        unsubscribed: (appId, regId, topics) =>
          store.topics.removeTopics(appId as AppId, regId as RegId, topics),
      },
      receipts: {
        delivered: (messageId, regId) => receipts.delivered(messageId as never, regId as RegId),
        clicked: (appId, regId, messageId) =>
          receipts.clicked(appId as AppId, regId as RegId, messageId),
      },
      presence: {
        connected: (regId) => devices.touch(regId as RegId),
        disconnected: (regId) => devices.touch(regId as RegId),
      },
      authFailures: {
        isLimited: (address) => authFailures.isLimited(address),
        record: (address) => void authFailures.take(address),
      },
      clock,
      log,
    },
    {
      persistence: store.brokerPersistence,
      host: config.mqttHost,
      port: config.mqttPort,
      tls:
        config.mqttTlsCertFile && config.mqttTlsKeyFile
          ? {
              port: config.mqttTlsPort,
              certFile: config.mqttTlsCertFile,
              keyFile: config.mqttTlsKeyFile,
            }
          : undefined,
      keepaliveMaxSeconds: config.mqttKeepaliveMaxSeconds,
      connectTimeoutMs: config.mqttConnectTimeoutMs,
      maxPacketBytes: config.mqttMaxPacketBytes,
    },
  )
  late.sessions = broker.sessions
  late.dispatcher = broker.dispatcher

  const { app: defaultApp, created } = await apps.ensureDefaultApp(config.defaultAppName)
  const recovered = await messages.recover()
  if (recovered > 0) log.info({ recovered }, 'dispatched messages accepted before a crash')

  let ready = false
  const httpDeps: HttpDeps = {
    apps,
    devices,
    messages,
    receipts,
    adminToken,
    backup: async () => {
      try {
        return await store.backup(join(config.dataDir, 'backups'), clock.now())
      } catch (err) {
        if (err instanceof BackupSpaceError) throw new ApiError(ErrorCode.BACKUP_NO_SPACE)
        throw err
      }
    },
    limits: {
      push: new MemoryRateLimiter({
        ratePerSec: config.pushRatePerSec,
        burst: config.pushRatePerSec * 2,
        clock,
      }),
      register: new MemoryRateLimiter({
        ratePerSec: config.registerRatePerSec,
        burst: config.registerRatePerSec * 2,
        clock,
      }),
      registerPerAddress: new MemoryRateLimiter({
        ratePerSec: config.registerPerAddressPerSec,
        burst: config.registerPerAddressPerSec * 2,
        clock,
      }),
      authFailures,
    },
    mqtt: { wsPath: config.mqttWsPath },
    bodyLimitBytes: config.httpBodyLimitBytes,
    corsOrigins: config.httpCorsOrigins,
    isReady: () => ready,
    log,
  }
  const http = createHttpApp(httpDeps)
  const fetch = options.pushRoute === false ? http.fetch : withPushRoute(http, httpDeps)
  const server = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch, port: config.httpPort, hostname: config.httpHost }, () => resolve(s))
    s.once('error', reject)
  })
  // app servers keep their connections between pushes; a server that closes them first makes
  // the next request meet a closed socket, or pay a new connection
  ;(server as HttpServer).keepAliveTimeout = config.httpKeepAliveSeconds * 1000
  broker.attachWebSocket(server as never, config.mqttWsPath)
  const mqtt = await broker.listen()

  const jobs = config.jobsEnabled
    ? startJobs(
        defineJobs({
          clock,
          devices,
          messages: store.messages,
          sweepExpired: (now) => store.brokerPersistence.sweepExpired(now),
          messageRetentionDays: config.messageRetentionDays,
          deviceInactiveDays: config.deviceInactiveDays,
        }),
        log,
      )
    : undefined
  ready = true

  const httpPort = (server.address() as AddressInfo).port
  if (created && options.banner !== false) printBanner(defaultApp, httpPort, mqtt.port, config)
  log.info(
    { httpPort, mqttPort: mqtt.port, mqttTlsPort: mqtt.tlsPort, dataDir: config.dataDir },
    'mqpush is serving',
  )

  let closing: Promise<void> | undefined
  return {
    httpPort,
    mqttPort: mqtt.port,
    mqttTlsPort: mqtt.tlsPort,
    adminToken,
    defaultApp,
    config,
    services: { apps, devices, messages },
    runJob: (name) => {
      if (!jobs) throw new Error('jobs are disabled')
      return jobs.runNow(name)
    },
    close() {
      closing ??= (async () => {
        ready = false
        await jobs?.stop()
        await new Promise<void>((resolve) => {
          server.close(() => resolve())
          ;(server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.()
        })
        await broker.close()
        await store.close()
        log.info({}, 'mqpush stopped')
      })()
      return closing
    },
  }
}

/** The admin token: generated once, kept in the data directory with owner-only access. */
function loadOrCreateAdminToken(dataDir: string, options: StartOptions): string {
  const file = join(dataDir, 'admin-token')
  if (existsSync(file)) return readFileSync(file, 'utf8').trim()
  const token = newSecret()
  writeFileSync(file, `${token}\n`, { mode: 0o600 })
  chmodSync(file, 0o600)
  if (options.banner !== false) {
    console.log(
      `\nGenerated an admin token (MQPUSH_ADMIN_TOKEN was not set).\n` +
        `  Admin token: ${token}\n  Kept in:     ${file}\n`,
    )
  }
  return token
}

function printBanner(app: App, httpPort: number, mqttPort: number, config: Config): void {
  const tokenSource = config.adminToken
    ? 'MQPUSH_ADMIN_TOKEN'
    : `$(cat ${join(config.dataDir, 'admin-token')})`
  console.log(
    [
      '',
      `Created the default app "${app.name}". Its credentials:`,
      `  App id:     ${app.id}`,
      `  App key:    ${app.key}      (devices register with the app id and this key)`,
      `  App secret: ${app.secret}   (servers push with it; keep it secret)`,
      '',
      'Find them again with the admin API:',
      `  curl -H "Authorization: Bearer ${tokenSource}" http://localhost:${httpPort}/admin/v1/apps`,
      '',
      `HTTP API: http://localhost:${httpPort}   MQTT: mqtt://localhost:${mqttPort}   ` +
        `MQTT over WebSocket: ws://localhost:${httpPort}${config.mqttWsPath}`,
      '',
    ].join('\n'),
  )
}

/**
 * V8's allocation-site pretenuring, off unless the operator's node flags say otherwise. When
 * devices connect in a burst (a restart, a network coming back), the objects of each connect
 * (aedes' stream pipeline that empties the device's queue, its end-of-stream closures) live
 * across a few event-loop turns, so the allocation sites in Node's stream code look long-lived
 * and V8 switches them to allocate in the old generation directly. Every later connect's
 * short-lived objects then become old-generation garbage, which the heap keeps committed:
 * about 7 KB of resident memory per connected device (bench hold, 10000 devices: 14–15 KB per
 * device with it, 8–9 KB without). Set before the first connection; the flag only steers where
 * new objects are allocated.
 */
function disablePretenuring(): void {
  // V8 flags like this one are only accepted on the node command line, not in NODE_OPTIONS
  if (process.execArgv.some((a) => a.includes('allocation-site-pretenuring'))) return
  setFlagsFromString('--no-allocation-site-pretenuring')
}

/** `npm start`: read the environment, start, stop cleanly on SIGINT / SIGTERM. */
async function main(): Promise<void> {
  disablePretenuring()
  let config: Config
  try {
    config = loadConfig()
  } catch (err) {
    console.error(`mqpush: ${(err as Error).message}`)
    process.exit(2)
  }
  const running = await start(config)
  const stop = (signal: string) => {
    console.error(`mqpush: ${signal}, stopping`)
    running.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error('mqpush: failed to start:', err)
    process.exit(1)
  })
}
