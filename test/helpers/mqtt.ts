import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import mqttPacket from 'mqtt-packet'
import type { RegisterResponse } from '../../sdk/protocol/schemas.js'

export interface Received {
  topic: string
  payload: Buffer
  json: any
}

/** A device over a real socket, with what it receives collected in order. */
export interface TestDevice {
  client: MqttClient
  received: Received[]
  /** Resolves when `count` messages have arrived in total; rejects after `timeoutMs`. */
  waitFor(count: number, timeoutMs?: number): Promise<Received[]>
  /** Resolves after `ms` if nothing more than `count` arrived meanwhile (asserting silence). */
  expectNoMore(count: number, ms?: number): Promise<void>
  end(): Promise<void>
}

/** A device's CONNECT packet, encoded, for tests on raw sockets (a persistent session). */
export function connectPacket(
  reg: Pick<RegisterResponse, 'regId' | 'token' | 'appId'>,
  keepalive = 60,
): Buffer {
  return mqttPacket.generate({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clean: false,
    clientId: reg.regId,
    keepalive,
    username: reg.appId,
    password: Buffer.from(reg.token),
  })
}

/** Connects like a device does: client id = regId, username = app id, password = token. */
export async function connectDevice(
  url: string,
  reg: Pick<RegisterResponse, 'regId' | 'token' | 'appId'>,
  options: IClientOptions = {},
): Promise<TestDevice> {
  const client = mqtt.connect(url, {
    clientId: reg.regId,
    username: reg.appId,
    password: reg.token,
    clean: false,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...options,
  })
  const received: Received[] = []
  const waiters: Array<() => void> = []
  client.on('message', (topic, payload) => {
    let json: unknown
    try {
      json = JSON.parse(payload.toString())
    } catch {
      json = undefined
    }
    received.push({ topic, payload, json })
    for (const w of waiters.splice(0)) w()
  })
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve())
    client.once('error', reject)
    client.once('close', () => reject(new Error('connection closed before CONNACK')))
  })
  return {
    client,
    received,
    waitFor(count, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`expected ${count} messages, got ${received.length}`)),
          timeoutMs,
        )
        const check = () => {
          if (received.length >= count) {
            clearTimeout(timer)
            resolve(received.slice())
          } else waiters.push(check)
        }
        check()
      })
    },
    async expectNoMore(count, ms = 300) {
      await new Promise((r) => setTimeout(r, ms))
      if (received.length > count) {
        throw new Error(`expected no more than ${count} messages, got ${received.length}`)
      }
    },
    end: () => new Promise<void>((resolve) => client.end(false, {}, () => resolve())),
  }
}

/** Tries to connect and returns the CONNACK refusal code (or 0 when accepted). */
export function connackCode(url: string, options: IClientOptions): Promise<number> {
  return new Promise((resolve) => {
    const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options })
    client.once('connect', () => {
      client.end(true)
      resolve(0)
    })
    client.once('error', (err: Error & { code?: number }) => {
      client.end(true)
      resolve(typeof err.code === 'number' ? err.code : -1)
    })
    // closed without any CONNACK (e.g. a refused oversized CONNECT)
    client.once('close', () => {
      client.end(true)
      resolve(-1)
    })
  })
}
