import { connect as netConnect, type Socket } from 'node:net'
import mqttPacket from 'mqtt-packet'

/**
 * A minimal MQTT 3.1.1 device for the load generator: CONNECT, optional SUBSCRIBE, QoS 1
 * PUBLISH received and acknowledged, nothing else. MQTT.js costs tens of kilobytes and a lot of
 * CPU per client; the load generator shares the machine with the service it measures, so it
 * should cost as little as possible. Every broker under test sees the same client. What it reads
 * is parsed by `LiteReader`; what it writes by mqtt-packet's `generate` (CONNECT, SUBSCRIBE,
 * PUBLISH), but for the PUBACK, which it writes for every message it gets (`pubackOf`).
 */
export interface LiteOptions {
  host: string
  port: number
  localAddress?: string
  clientId: string
  username?: string
  password?: string
  clean: boolean
  keepalive?: number
  subscribe?: string[]
  onMessage(topic: string, payload: Buffer, receivedAt: number): void
}

export interface LiteClient {
  connected: Promise<{ sessionPresent: boolean; returnCode: number }>
  /** QoS 1 publish; resolves on PUBACK. */
  publish(topic: string, payload: string | Buffer): Promise<void>
  close(): void
}

export function connectLite(o: LiteOptions): LiteClient {
  const socket: Socket = netConnect({
    host: o.host,
    port: o.port,
    ...(o.localAddress && { localAddress: o.localAddress }),
  })
  socket.setNoDelay(true)
  let resolveConnected: (v: { sessionPresent: boolean; returnCode: number }) => void
  let rejectConnected: (e: Error) => void
  const connected = new Promise<{ sessionPresent: boolean; returnCode: number }>((res, rej) => {
    resolveConnected = res
    rejectConnected = rej
  })
  let subscribed: (() => void) | undefined
  const pending = new Map<number, () => void>()
  let nextId = 1
  const reader = new LiteReader({
    connack(sessionPresent, returnCode) {
      if (returnCode !== 0) {
        rejectConnected(new Error(`CONNACK ${returnCode}`))
        return
      }
      if (o.subscribe && o.subscribe.length > 0) {
        subscribed = () => resolveConnected({ sessionPresent, returnCode: 0 })
        socket.write(
          mqttPacket.generate({
            cmd: 'subscribe',
            messageId: 1,
            subscriptions: o.subscribe.map((topic) => ({ topic, qos: 1 })),
          }),
        )
      } else resolveConnected({ sessionPresent, returnCode: 0 })
    },
    suback() {
      subscribed?.()
    },
    puback(id) {
      pending.get(id)?.()
      pending.delete(id)
    },
    publish(topic, payload, qos, messageId) {
      const at = Date.now()
      if (qos > 0) socket.write(pubackOf(messageId))
      o.onMessage(topic, payload, at)
    },
  })
  socket.on('data', (d: Buffer) => {
    try {
      reader.read(d)
    } catch (err) {
      socket.destroy(err as Error)
    }
  })
  socket.on('error', (e) => rejectConnected(e))
  socket.on('close', () => rejectConnected(new Error('closed')))
  socket.write(
    mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: o.clean,
      clientId: o.clientId,
      keepalive: o.keepalive ?? 600,
      ...(o.username !== undefined && { username: o.username }),
      ...(o.password !== undefined && { password: Buffer.from(o.password) }),
    }),
  )
  return {
    connected,
    publish(topic, payload) {
      const messageId = nextId
      nextId = nextId >= 65535 ? 1 : nextId + 1
      return new Promise<void>((resolve) => {
        pending.set(messageId, resolve)
        socket.write(
          mqttPacket.generate({
            cmd: 'publish',
            topic,
            payload,
            qos: 1,
            messageId,
            retain: false,
            dup: false,
          }),
        )
      })
    },
    close() {
      socket.end(mqttPacket.generate({ cmd: 'disconnect' }))
      socket.destroy()
    },
  }
}

/** A PUBACK (MQTT 3.1.1): `0x40 0x02` and the packet identifier. */
export function pubackOf(messageId: number): Buffer {
  const b = Buffer.allocUnsafe(4)
  b[0] = 0x40
  b[1] = 2
  b.writeUInt16BE(messageId, 2)
  return b
}

/** What a lite device does with the packets it reads. */
export interface LiteHandlers {
  connack(sessionPresent: boolean, returnCode: number): void
  suback(messageId: number): void
  puback(messageId: number): void
  /** `messageId` is 0 for QoS 0. `payload` is a view into the read, not a copy. */
  publish(topic: string, payload: Buffer, qos: number, messageId: number): void
}

/**
 * The MQTT 3.1.1 packets a lite device reads from its broker, parsed straight off the socket's
 * reads: CONNACK, SUBACK, PUBACK and PUBLISH to its handlers, every other packet skipped by its
 * length. A packet split over reads waits for the rest.
 *
 * Why not mqtt-packet's parser: in the offline drain each load worker spent 36–52 µs of CPU a
 * delivered message, about twice what the broker under test spent, and its V8 compiler threads
 * ran ~20 % of a core the whole time: mqtt-packet's `parse` and `bl`'s `get` were deoptimized
 * ("wrong map") and compiled again 13–14 times in a three-round run. On this 2-core machine the
 * generator's CPU is taken from the broker's: each broker's thread waited on the run queue for
 * ~45 % of the drain (twenty-third session in docs/benchmarks.md).
 */
export class LiteReader {
  readonly #h: LiteHandlers
  /** The start of a packet not yet complete, from earlier reads. */
  #rest: Buffer | undefined

  constructor(handlers: LiteHandlers) {
    this.#h = handlers
  }

  /** Throws on a malformed packet (a remaining length over 4 bytes, a topic past the packet's end). */
  read(chunk: Buffer): void {
    let buf = chunk
    if (this.#rest !== undefined) {
      buf = Buffer.concat([this.#rest, chunk])
      this.#rest = undefined
    }
    const end = buf.length
    let at = 0
    for (;;) {
      // fixed header: the type byte, then the remaining length in 1–4 bytes of 7 bits
      let i = at + 1
      let len = 0
      let mul = 1
      let complete = false
      while (i < end) {
        const b = buf[i++]!
        len += (b & 0x7f) * mul
        if ((b & 0x80) === 0) {
          complete = true
          break
        }
        mul *= 128
        if (mul > 128 ** 3) throw new Error('malformed MQTT packet: remaining length over 4 bytes')
      }
      if (!complete || end - i < len) break
      this.#packet(buf, buf[at]!, i, i + len)
      at = i + len
    }
    // a copy: what stays may wait for many reads, and need not hold the whole read
    if (at < end) this.#rest = Buffer.from(buf.subarray(at))
  }

  #packet(buf: Buffer, first: number, body: number, end: number): void {
    switch (first >> 4) {
      case 2: // CONNACK
        if (end - body < 2) throw new Error('malformed MQTT packet: short CONNACK')
        this.#h.connack((buf[body]! & 1) === 1, buf[body + 1]!)
        return
      case 3: {
        // PUBLISH
        const qos = (first >> 1) & 3
        if (end - body < 2) throw new Error('malformed MQTT packet: PUBLISH without a topic')
        const topicEnd = body + 2 + buf.readUInt16BE(body)
        const payloadAt = topicEnd + (qos > 0 ? 2 : 0)
        if (payloadAt > end) throw new Error('malformed MQTT packet: PUBLISH topic past its end')
        const messageId = qos > 0 ? buf.readUInt16BE(topicEnd) : 0
        this.#h.publish(
          buf.toString('utf8', body + 2, topicEnd),
          buf.subarray(payloadAt, end),
          qos,
          messageId,
        )
        return
      }
      case 4: // PUBACK
        if (end - body < 2) throw new Error('malformed MQTT packet: short PUBACK')
        this.#h.puback(buf.readUInt16BE(body))
        return
      case 9: // SUBACK
        if (end - body < 2) throw new Error('malformed MQTT packet: short SUBACK')
        this.#h.suback(buf.readUInt16BE(body))
        return
      default:
        return
    }
  }
}
