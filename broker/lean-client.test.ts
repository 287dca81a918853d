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

  it('takes PUBACKs off the front of a read without mqtt-packet, and aedes acts on each', async () => {
    const a = open()
    const acks: number[] = []
    aedes.on('ack', (packet: any) => acks.push(packet.messageId))
    // a persistent session: aedes' memory persistence keeps what it sends and hands it back
    a.send({ ...connect('acker'), clean: false })
    await until(() => a.packets.length === 1)
    a.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'd/acker', qos: 1 }] })
    await until(() => a.packets.length === 2)
    for (let i = 0; i < 3; i++) {
      aedes.publish(
        {
          cmd: 'publish',
          topic: 'd/acker',
          payload: Buffer.from(`m${i}`),
          qos: 1,
          retain: false,
          dup: false,
        } as never,
        () => {},
      )
    }
    await until(() => a.packets.length === 5)
    const ids = a.packets.slice(2).map((p: any) => p.messageId as number)
    // mqtt-packet's own steps are not run for a read of PUBACKs alone
    const parser = a.client._parser
    let header = 0
    const own = Object.getPrototypeOf(parser)._parseHeader
    parser._parseHeader = function (this: unknown) {
      header++
      return own.call(this)
    }
    a.sendRaw(
      Buffer.concat(ids.map((id: number) => mqttPacket.generate({ cmd: 'puback', messageId: id }))),
    )
    await until(() => acks.length === 3)
    expect(acks).toEqual(ids)
    expect(header).toBe(0)
    // a read that begins with something else goes through mqtt-packet
    a.send({ cmd: 'pingreq' })
    await until(() => a.packets.length === 6)
    expect(a.packets[5]).toMatchObject({ cmd: 'pingresp' })
    expect(header).toBe(1)
  })

  it('parses any stream of packets, split anywhere, into what mqtt-packet emits', () => {
    const parserMaker = () => {
      const conn = connection()
      const client = aedes.handle(conn.brokerSide) as any
      leanClient(client, 1 << 20)
      // the parser alone: aedes' listener off, ours on
      const parser = client._parser
      parser.removeAllListeners('packet')
      conn.brokerSide.destroy()
      return parser
    }
    const packets: object[] = [
      { cmd: 'puback', messageId: 1 },
      { cmd: 'puback', messageId: 65535 },
      { cmd: 'puback', messageId: 0x1234 },
      { cmd: 'pingreq' },
      {
        cmd: 'publish',
        topic: 'a/b',
        payload: Buffer.from('hello'),
        qos: 1,
        messageId: 7,
        retain: false,
        dup: false,
      },
      { cmd: 'pubrec', messageId: 9 },
      { cmd: 'puback', messageId: 2 },
      { cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: 'x/#', qos: 1 }] },
      { cmd: 'puback', messageId: 3 },
      // a PUBACK's bytes (0x40 0x02) inside packets: never taken for one
      { cmd: 'puback', messageId: 0x4002 },
      { cmd: 'pubrec', messageId: 0x4002 },
      {
        cmd: 'publish',
        topic: '@\x02',
        payload: Buffer.from([0x40, 0x02, 0x40, 0x02, 0x00, 0x05]),
        qos: 1,
        messageId: 0x4002,
        retain: false,
        dup: false,
      },
    ]
    let seed = 42
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
    for (let round = 0; round < 200; round++) {
      const sequence = Array.from(
        { length: 1 + Math.floor(random() * 12) },
        () => packets[Math.floor(random() * packets.length)] as object,
      )
      const bytes = Buffer.concat(sequence.map((p) => mqttPacket.generate(p as never)))
      // the same bytes in the same random reads to a plain mqtt-packet parser and to a lean one
      const cuts = [0]
      while ((cuts[cuts.length - 1] as number) < bytes.length)
        cuts.push(
          Math.min(bytes.length, (cuts[cuts.length - 1] as number) + 1 + Math.floor(random() * 9)),
        )
      const plain = mqttPacket.parser({ protocolVersion: 4 })
      const lean = parserMaker()
      lean.settings = { protocolVersion: 4 }
      const expected: object[] = []
      const got: object[] = []
      plain.on('packet', (p: object) => expected.push(p))
      lean.on('packet', (p: object) => got.push(p))
      for (let i = 1; i < cuts.length; i++) {
        const chunk = bytes.subarray(cuts[i - 1], cuts[i])
        plain.parse(chunk)
        lean.parse(chunk)
      }
      expect(got).toEqual(expected)
      expect(got.map((p) => p.constructor)).toEqual(expected.map((p) => p.constructor))
      expect(got).toHaveLength(sequence.length)
    }
  })

  it('leaves the PUBACKs of MQTT 5 (a reason code of 0 is implied) to mqtt-packet', async () => {
    const a = open()
    a.send({ ...connect('five'), protocolVersion: 5 })
    await until(() => a.packets.length === 1)
    const parser = a.client._parser
    expect(parser.settings.protocolVersion).toBe(5)
    const got: any[] = []
    parser.removeAllListeners('packet')
    parser.on('packet', (p: any) => got.push(p))
    parser.parse(Buffer.from([0x40, 0x02, 0x00, 0x07]))
    expect(got).toHaveLength(1)
    expect(got[0]).toMatchObject({ cmd: 'puback', messageId: 7, reasonCode: 0 })
  })
})
