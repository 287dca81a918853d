import { connect as netConnect, type Socket } from 'node:net'
import mqttPacket from 'mqtt-packet'

/**
 * A minimal MQTT 3.1.1 device for the load generator: CONNECT, optional SUBSCRIBE, QoS 1
 * PUBLISH received and acknowledged, nothing else. MQTT.js costs tens of kilobytes and a lot of
 * CPU per client; the load generator shares the machine with the service it measures, so it
 * should cost as little as possible. Every broker under test sees the same client.
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
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  let resolveConnected: (v: { sessionPresent: boolean; returnCode: number }) => void
  let rejectConnected: (e: Error) => void
  const connected = new Promise<{ sessionPresent: boolean; returnCode: number }>((res, rej) => {
    resolveConnected = res
    rejectConnected = rej
  })
  let subscribed: (() => void) | undefined
  const pending = new Map<number, () => void>()
  let nextId = 1
  parser.on('packet', (p: mqttPacket.Packet) => {
    switch (p.cmd) {
      case 'connack': {
        const c = p
        if (c.returnCode !== 0) {
          rejectConnected(new Error(`CONNACK ${c.returnCode}`))
          return
        }
        if (o.subscribe && o.subscribe.length > 0) {
          subscribed = () => resolveConnected({ sessionPresent: !!c.sessionPresent, returnCode: 0 })
          socket.write(
            mqttPacket.generate({
              cmd: 'subscribe',
              messageId: 1,
              subscriptions: o.subscribe.map((topic) => ({ topic, qos: 1 })),
            }),
          )
        } else resolveConnected({ sessionPresent: !!c.sessionPresent, returnCode: 0 })
        break
      }
      case 'suback':
        subscribed?.()
        break
      case 'puback': {
        const id = p.messageId as number
        pending.get(id)?.()
        pending.delete(id)
        break
      }
      case 'publish': {
        const pub = p
        const at = Date.now()
        if (pub.qos > 0) {
          socket.write(
            mqttPacket.generate({
              cmd: 'puback',
              messageId: pub.messageId,
            }),
          )
        }
        o.onMessage(pub.topic, pub.payload as Buffer, at)
        break
      }
      default:
        break
    }
  })
  socket.on('data', (d) => parser.parse(d))
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
