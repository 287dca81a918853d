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
  /** Publishes waiting for their PUBACK: settled by it, or failed when the connection closes. */
  const pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>()
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
      pending.get(id)?.resolve()
      pending.delete(id)
    },
    publish(topic, payload, qos, messageId) {
      const at = Date.now()
      if (qos > 0) socket.write(pubackOf(messageId))
      o.onMessage(topic, payload, at)
    },
  })
  let isConnected = false
  void connected.then(
    () => (isConnected = true),
    () => {},
  )
  socket.on('data', (d: Buffer) => {
    try {
      reader.read(d)
    } catch (err) {
      // a handler's own error is not the broker's: it goes up, as before
      if (!(err instanceof MalformedPacket)) throw err
      // once connected, nobody awaits the connect any more: say it, once a process, so that a
      // device leaving a round does not only show as messages not delivered
      if (isConnected && !malformedReported) {
        malformedReported = true
        console.error(`load device ${o.clientId}: ${err.message}; its connection closed`)
      }
      socket.destroy(err)
    }
  })
  socket.on('error', (e) => rejectConnected(e))
  socket.on('close', () => {
    rejectConnected(new Error('closed'))
    for (const p of pending.values()) p.reject(new Error('closed before its PUBACK'))
    pending.clear()
  })
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
      return new Promise<void>((resolve, reject) => {
        pending.set(messageId, { resolve, reject })
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

/** Whether this process has said that a device read a malformed packet (said once). */
let malformedReported = false

/** What `LiteReader` throws on a packet it cannot read. */
export class MalformedPacket extends Error {
  constructor(what: string) {
    super(`malformed MQTT packet: ${what}`)
    this.name = 'MalformedPacket'
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
 * length. A packet split over reads waits for the rest. Less strict than mqtt-packet's: the fixed
 * header's flag bits of CONNACK, PUBACK and SUBACK are not checked, nor a topic's length of 0.
 *
 * Why not mqtt-packet's parser: in the offline drain each load worker spent ~40 µs of CPU a
 * delivered message, about twice what the broker under test spent, and its V8 compiler threads
 * ran ~20 % of a core the whole time: mqtt-packet's `parse` and `bl`'s `get` were deoptimized
 * ("wrong map") and compiled again 13–14 times in a three-round run. On this 2-core machine the
 * generator's CPU is taken from the broker's: each broker's thread waited on the run queue for
 * ~45 % of the drain (twenty-third session in docs/benchmarks-log.md).
 */
export class LiteReader {
  readonly #h: LiteHandlers
  /** The start of a packet not yet complete, from earlier reads. */
  #rest: Buffer | undefined

  constructor(handlers: LiteHandlers) {
    this.#h = handlers
  }

  /**
   * Throws MalformedPacket on a packet it cannot read: a remaining length over 4 bytes, a CONNACK,
   * PUBACK or SUBACK shorter than 2 bytes, a PUBLISH whose topic or packet id runs past its end
   * or with both QoS bits set.
   */
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
        if (mul > 128 ** 3) throw new MalformedPacket('remaining length over 4 bytes')
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
        if (end - body < 2) throw new MalformedPacket('short CONNACK')
        this.#h.connack((buf[body]! & 1) === 1, buf[body + 1]!)
        return
      case 3: {
        // PUBLISH
        const qos = (first >> 1) & 3
        if (qos === 3) throw new MalformedPacket('PUBLISH with both QoS bits set')
        if (end - body < 2) throw new MalformedPacket('PUBLISH without a topic')
        const topicEnd = body + 2 + buf.readUInt16BE(body)
        const payloadAt = topicEnd + (qos > 0 ? 2 : 0)
        if (payloadAt > end) throw new MalformedPacket('PUBLISH topic past its end')
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
        if (end - body < 2) throw new MalformedPacket('short PUBACK')
        this.#h.puback(buf.readUInt16BE(body))
        return
      case 9: // SUBACK
        if (end - body < 2) throw new MalformedPacket('short SUBACK')
        this.#h.suback(buf.readUInt16BE(body))
        return
      default:
        return
    }
  }
}
