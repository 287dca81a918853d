import { Aedes } from 'aedes'
import mqttPacket from 'mqtt-packet'
import { Duplex, PassThrough } from 'node:stream'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { dropOwnClientNotices } from './client-notices.js'

/** An in-memory connection to the broker: the test speaks for the device. */
function connection() {
  const toBroker = new PassThrough()
  const toDevice = new PassThrough()
  const packets: any[] = []
  const parser = mqttPacket.parser()
  parser.on('packet', (p: any) => packets.push(p))
  toDevice.on('data', (b: Buffer) => parser.parse(b))
  return {
    brokerSide: Duplex.from({ readable: toBroker, writable: toDevice }),
    packets,
    send: (packet: object) => toBroker.write(mqttPacket.generate(packet as never)),
  }
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 5))
  expect(check()).toBe(true)
}

describe('dropOwnClientNotices', () => {
  let aedes: Aedes
  let heard: string[]
  beforeEach(async () => {
    aedes = await Aedes.createBroker()
    heard = []
    // what aedes' emitter carries on $SYS, as a cluster peer (or a $SYS subscriber) would see it
    const mq = (aedes as any).mq
    for (const pattern of ['$SYS/+/new/clients', '$SYS/+/disconnect/clients', '$SYS/+/heartbeat'])
      mq.on(pattern, (packet: any, done: () => void) => {
        heard.push(`${packet.topic} ${packet.payload.toString()}`)
        done()
      })
  })
  afterEach(async () => {
    await new Promise<void>((resolve) => aedes.close(() => resolve()))
  })

  /** A client that connects, is acknowledged, and disconnects. */
  const connectAndLeave = async (clientId: string) => {
    const c = connection()
    aedes.handle(c.brokerSide)
    c.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId, clean: true })
    await until(() => c.packets.some((p) => p.cmd === 'connack'))
    c.send({ cmd: 'disconnect' })
    await until(() => (aedes as any).connectedClients === 0)
  }

  it("aedes' own notices are published without it (the test's own check)", async () => {
    await connectAndLeave('device-1')
    await until(() => heard.length === 2)
    expect(heard).toEqual([
      `$SYS/${aedes.id}/new/clients device-1`,
      `$SYS/${aedes.id}/disconnect/clients device-1`,
    ])
  })

  it('a connect and a disconnect publish nothing; the events and the count are as before', async () => {
    dropOwnClientNotices(aedes)
    const events: string[] = []
    aedes.on('client', (c: any) => events.push(`client ${c.id}`))
    aedes.on('clientDisconnect', (c: any) => events.push(`clientDisconnect ${c.id}`))
    await connectAndLeave('device-1')
    expect(events).toEqual(['client device-1', 'clientDisconnect device-1'])
    expect((aedes as any).connectedClients).toBe(0)
    await new Promise((r) => setTimeout(r, 20))
    expect(heard).toEqual([])
  })

  it("every other publish goes through: the heartbeat, another broker's notices, a message", async () => {
    dropOwnClientNotices(aedes)
    const messages: string[] = []
    ;(aedes as any).mq.on('a/b', (packet: any, done: () => void) => {
      messages.push(packet.payload.toString())
      done()
    })
    const published = (packet: object) =>
      new Promise<void>((resolve, reject) =>
        aedes.publish(packet as never, (err?: Error) => (err ? reject(err) : resolve())),
      )
    await published({ topic: `$SYS/${aedes.id}/heartbeat`, payload: Buffer.from(aedes.id) })
    await published({ topic: '$SYS/another-node/new/clients', payload: Buffer.from('device-2') })
    await published({ topic: 'a/b', payload: Buffer.from('hello'), qos: 0 })
    expect(heard).toEqual([
      `$SYS/${aedes.id}/heartbeat ${aedes.id}`,
      '$SYS/another-node/new/clients device-2',
    ])
    expect(messages).toEqual(['hello'])
  })

  it("the dropped publish still calls back, later, as aedes' would", async () => {
    dropOwnClientNotices(aedes)
    let called = false
    aedes.publish(
      { topic: `$SYS/${aedes.id}/new/clients`, payload: Buffer.from('x') } as never,
      () => {
        called = true
      },
    )
    expect(called).toBe(false)
    await new Promise((r) => process.nextTick(r))
    expect(called).toBe(true)
    expect(heard).toEqual([])
  })
})
