import { Aedes } from 'aedes'
import mqttPacket from 'mqtt-packet'
import { Duplex, PassThrough } from 'node:stream'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { leanClient } from './lean-client.js'

/** An in-memory connection: what the test writes reaches the broker, and back. */
function connection() {
  const toBroker = new PassThrough()
  const toDevice = new PassThrough()
  const brokerSide = Duplex.from({ readable: toBroker, writable: toDevice })
  const packets: any[] = []
  const parser = mqttPacket.parser()
  parser.on('packet', (p: any) => packets.push(p))
  toDevice.on('data', (b: Buffer) => parser.parse(b))
  return {
    brokerSide,
    packets,
    send: (packet: object) => toBroker.write(mqttPacket.generate(packet as never)),
    sendRaw: (bytes: Buffer) => toBroker.write(bytes),
    /** The device's FIN. */
    end: () => toBroker.end(),
  }
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 5))
  expect(check()).toBe(true)
}

const connect = (clientId: string) => ({
  cmd: 'connect',
  protocolId: 'MQTT',
  protocolVersion: 4,
  clientId,
  username: 'app',
  password: Buffer.from(`secret of ${clientId}`),
  clean: true,
  keepalive: 0,
})

describe('leanClient', () => {
  let aedes: Aedes
  beforeEach(async () => {
    aedes = await Aedes.createBroker()
  })
  afterEach(async () => {
    await new Promise<void>((resolve) => aedes.close(() => resolve()))
  })

  const clients = () => (aedes as unknown as { clients: Record<string, unknown> }).clients

  function open() {
    const c = connection()
    const client = aedes.handle(c.brokerSide) as any
    leanClient(client, 1024)
    return { ...c, client }
  }

  it('keeps no CONNECT packet on the parser: one shared settings object per protocol level', async () => {
    const a = open()
    const b = open()
    a.send(connect('a'))
    b.send(connect('b'))
    await until(() => a.packets.length === 1 && b.packets.length === 1)
    expect(a.packets[0]).toMatchObject({ cmd: 'connack', returnCode: 0 })
    expect(a.client._parser.settings).toEqual({ protocolVersion: 4 })
    expect(a.client._parser.settings).toBe(b.client._parser.settings)
    // the connection keeps working after CONNECT
    a.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 't', qos: 1 }] })
    await until(() => a.packets.length === 2)
    expect(a.packets[1]).toMatchObject({ cmd: 'suback', granted: [1] })
  })

  it('parses into a plain list, not a stream', async () => {
    const a = open()
    expect(typeof a.client._parser._list.append).toBe('function')
    expect(typeof a.client._parser._list.pipe).toBe('undefined')
    // a packet split across reads is still parsed
    const bytes = mqttPacket.generate(connect('split') as never)
    a.sendRaw(bytes.subarray(0, 5))
    await new Promise((r) => setTimeout(r, 10))
    a.sendRaw(bytes.subarray(5))
    await until(() => a.packets.length === 1)
    expect(a.packets[0]).toMatchObject({ cmd: 'connack', returnCode: 0 })
  })

  it('keeps duplicates without inherited names (GHSA-52qw-whmv-87c5)', () => {
    const { client } = open()
    expect(client.duplicates.constructor).toBeUndefined()
    expect(client.duplicates.__proto__).toBeUndefined()
    expect(client.duplicates.toString).toBeUndefined()
    client.duplicates['__proto__'] = 3
    expect(client.duplicates['__proto__']).toBe(3)
  })

  it('answers a QoS 2 publish (inbound window) and keeps its listeners working', async () => {
    const a = open()
    let errors = 0
    a.client.on('error', () => errors++)
    a.send(connect('q2'))
    await until(() => a.packets.length === 1)
    a.send({ cmd: 'publish', topic: 't', payload: 'x', qos: 2, messageId: 5 })
    await until(() => a.packets.length === 2)
    expect(a.packets[1]).toMatchObject({ cmd: 'pubrec', messageId: 5 })
    expect(a.client._inboundInflight.has(5)).toBe(true)
    a.send({ cmd: 'pubrel', messageId: 5 })
    await until(() => a.packets.length === 3)
    expect(a.packets[2]).toMatchObject({ cmd: 'pubcomp', messageId: 5 })
    expect(a.client._inboundInflight.size).toBe(0)
    expect(errors).toBe(0)
    expect(a.client.listenerCount('connected')).toBe(0)
  })

  it('closes the client when its connection is destroyed or ended by the device', async () => {
    const a = open()
    const b = open()
    a.send(connect('gone'))
    b.send(connect('ended'))
    await until(() => a.packets.length === 1 && b.packets.length === 1)
    expect(clients()['gone']).toBe(a.client)
    a.brokerSide.destroy()
    await until(() => a.client.closed === true && clients()['gone'] === undefined)
    b.end()
    await until(() => b.client.closed === true && clients()['ended'] === undefined)
  })

  it('closes a connection announcing a packet over the limit before its body arrives', async () => {
    const a = open()
    const closed = new Promise<void>((r) => a.brokerSide.once('close', () => r()))
    // PUBLISH, remaining length 2000 (varint 0xd0 0x0f), no body sent
    a.sendRaw(Buffer.from([0x30, 0xd0, 0x0f]))
    await closed
    expect(a.packets).toEqual([])
  })
})
