import { mkdtempSync, rmSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqttPacket from 'mqtt-packet'
import type { Config } from './config/schema.js'
import { newSecret } from './core/ids.js'
import { type Logger, silentLogger } from './core/logger.js'
import type { Running, StartOptions } from './main.js'

/** Devices of the throwaway copy that receive its pushes, one connection each. */
const DEVICES = 4
/** Connections the pushes are sent on, each with up to `WINDOW` requests in flight. */
const SENDERS = 4
const WINDOW = 16
/** A warm-up that has not finished by then is given up: the service starts without it. */
const DEFAULT_TIMEOUT_MS = 15_000

export interface WarmUpResult {
  pushes: number
  delivered: number
  ms: number
}

/**
 * Drives the push path of a throwaway copy of the service before the real one starts, so that
 * V8 has compiled the code every push runs (Node's HTTP server, the API, the store, the broker,
 * the socket writes) when the first pushes arrive. Started cold and met at once by 2000 pushes a
 * second, the service falls behind for up to seconds while V8 compiles that code (the benchmark
 * log's twenty-fifth section); warmed up, it meets them at its speed.
 *
 * The copy is the same composition (`start`) with its own store in a new temporary directory,
 * listeners on loopback at ports the system picks, a random admin token, no TLS, no jobs, no
 * log. `pushes` unicast pushes by regId go over real HTTP connections to devices connected
 * over real MQTT connections, which acknowledge them. Nothing of the copy stays: it is closed
 * and its directory removed, also when the warm-up fails. It shares only code with the service
 * that starts after it (which is the point), no state: not the store, the apps, the devices,
 * the statistics or the rate limits.
 */
export async function warmUp(
  config: Config,
  start: (config: Config, options: StartOptions) => Promise<Running>,
  pushes: number,
  options: { timeoutMs?: number } = {},
): Promise<WarmUpResult> {
  const started = performance.now()
  const dataDir = mkdtempSync(join(tmpdir(), 'mqpush-warm-up-'))
  const sockets: Socket[] = []
  let running: Running | undefined
  let timer: NodeJS.Timeout | undefined
  let delivered = 0
  try {
    // an empty store and listeners on loopback: as quick and as sure as the start that follows
    const copy = await start(
      Object.assign({}, config, {
        dataDir,
        httpHost: '127.0.0.1',
        httpPort: 0,
        mqttHost: '127.0.0.1',
        mqttPort: 0,
        mqttTlsCertFile: undefined,
        mqttTlsKeyFile: undefined,
        adminToken: newSecret(),
        jobsEnabled: false,
        pushRatePerSec: Math.max(config.pushRatePerSec, pushes),
      }),
      { log: silentLogger, banner: false },
    )
    running = copy
    // devices, pushes and deliveries: what could wait on a socket, so under a time limit
    const work = async (): Promise<void> => {
      const { defaultApp: app, httpPort, mqttPort } = copy
      let allDelivered: () => void = () => {}
      const done = new Promise<void>((resolve) => (allDelivered = resolve))
      const regIds: string[] = []
      for (let i = 0; i < DEVICES; i++) {
        const reg = await copy.services.devices.register(app, { attributes: {} })
        regIds.push(reg.regId)
        const socket = await connectDevice(mqttPort, reg.regId, app.id, reg.token, () => {
          if (++delivered === pushes) allDelivered()
        })
        sockets.push(socket)
      }
      let next = 0
      const body = (i: number) =>
        JSON.stringify({
          target: { regIds: [regIds[i % DEVICES]] },
          kind: 'passThrough',
          payload: `warm-up ${i}`,
        })
      await Promise.all(
        Array.from({ length: SENDERS }, () =>
          sendPushes(httpPort, `Bearer ${app.secret}`, sockets, () =>
            next < pushes ? body(next++) : undefined,
          ),
        ),
      )
      if (delivered < pushes) await done
    }
    await Promise.race([
      work(),
      new Promise<never>((_, reject) => {
        const ms = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
        timer = setTimeout(() => reject(new Error(`the warm-up took over ${ms} ms`)), ms)
      }),
    ])
    return { pushes, delivered, ms: Math.round(performance.now() - started) }
  } finally {
    clearTimeout(timer)
    for (const s of sockets) s.destroy()
    // the copy's checkpoint thread does not hold the process open, and nothing else may yet:
    // keep the event loop alive until the copy has closed
    const hold = setInterval(() => {}, 1000)
    try {
      await running?.close()
    } finally {
      clearInterval(hold)
      rmSync(dataDir, { recursive: true, force: true })
    }
  }
}

/**
 * `warmUp` as `npm start` runs it: logs what it did, and never keeps the service from starting
 * (a warm-up that fails or times out is logged as a warning).
 */
export async function warmUpBeforeServing(
  config: Config,
  start: (config: Config, options: StartOptions) => Promise<Running>,
  log: Logger,
  options: { timeoutMs?: number } = {},
): Promise<WarmUpResult | undefined> {
  if (config.warmUpPushes === 0) return undefined
  try {
    const result = await warmUp(config, start, config.warmUpPushes, options)
    log.info(result, 'warmed up the push path')
    return result
  } catch (err) {
    log.warn({ err }, 'the warm-up failed; starting without it')
    return undefined
  }
}

/** A device on a plain socket: CONNECT with its session kept, then PUBACK for each PUBLISH. */
function connectDevice(
  port: number,
  clientId: string,
  username: string,
  password: string,
  onMessage: () => void,
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, noDelay: true })
    const parser = mqttPacket.parser({ protocolVersion: 4 })
    parser.on('packet', (p) => {
      if (p.cmd === 'connack') {
        if (p.returnCode === 0) resolve(socket)
        else reject(new Error(`the warm-up's device was refused: ${p.returnCode}`))
      } else if (p.cmd === 'publish') {
        if (p.qos > 0) socket.write(mqttPacket.generate({ cmd: 'puback', messageId: p.messageId }))
        onMessage()
      }
    })
    parser.on('error', reject)
    socket.on('data', (d) => parser.parse(d))
    socket.on('error', reject)
    socket.write(
      mqttPacket.generate({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clientId,
        clean: false,
        keepalive: 60,
        username,
        password: Buffer.from(password),
      }),
    )
  })
}

/**
 * Sends push requests on one keep-alive connection, up to `WINDOW` in flight (HTTP/1.1
 * pipelining), until `nextBody` has no more; rejects on any answer but 200.
 */
function sendPushes(
  port: number,
  authorization: string,
  sockets: Socket[],
  nextBody: () => string | undefined,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, noDelay: true })
    sockets.push(socket)
    const head =
      `POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: keep-alive\r\n` +
      `content-type: application/json\r\nauthorization: ${authorization}\r\ncontent-length: `
    let inFlight = 0
    let buffered = ''
    const fill = () => {
      let out = ''
      while (inFlight < WINDOW) {
        const body = nextBody()
        if (body === undefined) break
        out += `${head}${Buffer.byteLength(body)}\r\n\r\n${body}`
        inFlight++
      }
      if (out) socket.write(out)
      else if (inFlight === 0) {
        socket.end()
        resolve()
      }
    }
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => {
      buffered += chunk
      for (;;) {
        const end = buffered.indexOf('\r\n\r\n')
        if (end < 0) break
        const head = buffered.slice(0, end)
        const declared = /\r\ncontent-length: *(\d+)/i.exec(head)
        if (!declared) {
          reject(new Error(`a warm-up push was answered without a content-length: ${head}`))
          socket.destroy()
          return
        }
        const length = Number(declared[1])
        if (buffered.length < end + 4 + length) break
        const status = head.slice(9, 12)
        if (status !== '200') {
          reject(new Error(`a warm-up push was answered ${status}: ${buffered.slice(end + 4)}`))
          socket.destroy()
          return
        }
        buffered = buffered.slice(end + 4 + length)
        inFlight--
      }
      fill()
    })
    socket.on('error', reject)
    socket.once('connect', fill)
  })
}
