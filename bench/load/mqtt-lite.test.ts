import { once } from 'node:events'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import mqttPacket from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import { connectLite, LiteReader, MalformedPacket, pubackOf } from './mqtt-lite.js'

type Seen =
  | ['connack', boolean, number]
  | ['suback', number]
  | ['puback', number]
  | ['publish', string, string, number, number]

function recorder(): { seen: Seen[]; reader: LiteReader } {
  const seen: Seen[] = []
  const reader = new LiteReader({
    connack: (sp, rc) => seen.push(['connack', sp, rc]),
    suback: (id) => seen.push(['suback', id]),
    puback: (id) => seen.push(['puback', id]),
    publish: (topic, payload, qos, id) =>
      seen.push(['publish', topic, payload.toString('latin1'), qos, id]),
  })
  return { seen, reader }
}

/** A deterministic generator (the failures of a seed can be replayed). */
function random(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s / 2 ** 32
  }
}

describe('LiteReader', () => {
  it('reads what mqtt-packet writes, split into reads anywhere, and skips the packets it has no use for', () => {
    const rnd = random(7)
    const int = (n: number) => Math.floor(rnd() * n)
    // payload sizes around the first two remaining-length boundaries (127 and 16383 bytes; the
    // third, a 4-byte length, has a test of its own)
    const sizes = [0, 1, 20, 120, 124, 125, 126, 127, 128, 200, 16_370, 16_383, 16_384, 70_000]
    const topics = ['a', 'mqpush/d/dev-1', 'ünï/cøde', 'x'.repeat(300)]
    for (let round = 0; round < 40; round++) {
      const wire: Buffer[] = []
      const expected: Seen[] = []
      for (let k = 0; k < 30; k++) {
        const kind = int(7)
        const id = 1 + int(65_535)
        if (kind === 0) {
          const sessionPresent = rnd() < 0.5
          const returnCode = int(6)
          wire.push(mqttPacket.generate({ cmd: 'connack', sessionPresent, returnCode }))
          expected.push(['connack', sessionPresent, returnCode])
        } else if (kind === 1) {
          wire.push(mqttPacket.generate({ cmd: 'suback', messageId: id, granted: [1, 0] }))
          expected.push(['suback', id])
        } else if (kind === 2) {
          wire.push(mqttPacket.generate({ cmd: 'puback', messageId: id }))
          expected.push(['puback', id])
        } else if (kind === 3) {
          // packets a device has no handler for: skipped by their length
          wire.push(mqttPacket.generate({ cmd: 'pingresp' }))
          wire.push(mqttPacket.generate({ cmd: 'pubrel', messageId: id }))
          wire.push(mqttPacket.generate({ cmd: 'unsuback', messageId: id, granted: [] }))
        } else {
          const qos = int(3) as 0 | 1 | 2
          const topic = topics[int(topics.length)]!
          const size = sizes[int(sizes.length)]!
          const payload = Buffer.alloc(size, 0x41 + int(26))
          const dup = qos > 0 && rnd() < 0.3
          const retain = rnd() < 0.3
          wire.push(
            mqttPacket.generate({
              cmd: 'publish',
              topic,
              payload,
              qos,
              dup,
              retain,
              ...(qos > 0 && { messageId: id }),
            }),
          )
          expected.push(['publish', topic, payload.toString('latin1'), qos, qos > 0 ? id : 0])
        }
      }
      const all = Buffer.concat(wire)
      const { seen, reader } = recorder()
      // reads of 1 byte to a few packets' worth, cut anywhere (in a length's bytes too)
      for (let at = 0; at < all.length;) {
        const n = 1 + int(rnd() < 0.3 ? 6 : 40_000)
        reader.read(all.subarray(at, at + n))
        at += n
      }
      expect(seen, `round ${round}`).toEqual(expected)
    }
  })

  it('waits for the rest of a packet, however many reads it takes', () => {
    const { seen, reader } = recorder()
    const p = mqttPacket.generate({
      cmd: 'publish',
      topic: 't',
      payload: Buffer.alloc(300, 0x62),
      qos: 1,
      messageId: 9,
      dup: false,
      retain: false,
    })
    for (const b of p.subarray(0, p.length - 1)) reader.read(Buffer.from([b]))
    expect(seen).toEqual([])
    reader.read(p.subarray(p.length - 1))
    expect(seen).toEqual([['publish', 't', 'b'.repeat(300), 1, 9]])
  })

  it('reads a packet whose remaining length takes four bytes, in reads of 64 kB', () => {
    const { seen, reader } = recorder()
    const payload = Buffer.alloc(2_100_000, 0x63)
    const p = mqttPacket.generate({
      cmd: 'publish',
      topic: 'big',
      payload,
      qos: 1,
      messageId: 3,
      dup: false,
      retain: false,
    })
    expect(p[4]! & 0x80).toBe(0) // the fourth length byte ends it
    for (let at = 0; at < p.length; at += 65_536) reader.read(p.subarray(at, at + 65_536))
    expect(seen).toEqual([['publish', 'big', payload.toString('latin1'), 1, 3]])
  })

  it('refuses what it cannot read: a 5-byte length, short acknowledgements, a PUBLISH past its end or at QoS 3', () => {
    const bad: Array<[number[], RegExp]> = [
      [[0x30, 0xff, 0xff, 0xff, 0xff, 0x01], /remaining length/],
      [[0x20, 0x01, 0x00], /short CONNACK/],
      [[0x40, 0x01, 0x00], /short PUBACK/],
      [[0x90, 0x01, 0x00], /short SUBACK/],
      [[0x30, 0x01, 0x00], /without a topic/],
      // a topic of 200 bytes in a packet of 4; a QoS 1 packet without room for its id
      [[0x30, 0x04, 0x00, 0xc8, 0x61, 0x62], /topic past/],
      [[0x32, 0x03, 0x00, 0x01, 0x61], /topic past/],
      [[0x36, 0x05, 0x00, 0x01, 0x61, 0x00, 0x01], /both QoS bits/],
    ]
    for (const [bytes, message] of bad) {
      const read = () => recorder().reader.read(Buffer.from(bytes))
      expect(read, message.source).toThrow(MalformedPacket)
      expect(read, message.source).toThrow(message)
    }
  })

  it('makes the PUBACK mqtt-packet makes', () => {
    for (const id of [1, 255, 256, 40_000, 65_535]) {
      expect(pubackOf(id)).toEqual(mqttPacket.generate({ cmd: 'puback', messageId: id }))
    }
  })
})

describe('connectLite', () => {
  it('connects, acknowledges each QoS 1 message, and gets PUBACKs for its own publishes', async () => {
    // a scripted broker: reads with mqtt-packet's parser, answers with its generate
    const got: mqttPacket.Packet[] = []
    let peer: Socket | undefined
    const server = createServer((s) => {
      peer = s
      const parser = mqttPacket.parser({ protocolVersion: 4 })
      parser.on('packet', (p: mqttPacket.Packet) => {
        got.push(p)
        if (p.cmd === 'connect') {
          s.write(mqttPacket.generate({ cmd: 'connack', sessionPresent: true, returnCode: 0 }))
        } else if (p.cmd === 'subscribe') {
          s.write(mqttPacket.generate({ cmd: 'suback', messageId: p.messageId!, granted: [1] }))
          // two messages in one write, then one cut in two
          const m = (id: number, text: string) =>
            mqttPacket.generate({
              cmd: 'publish',
              topic: 'in/d1',
              payload: text,
              qos: 1,
              messageId: id,
              dup: false,
              retain: false,
            })
          s.write(Buffer.concat([m(5, 'one'), m(6, 'two')]))
          const third = m(7, 'three')
          s.write(third.subarray(0, 3))
          setTimeout(() => s.write(third.subarray(3)), 20)
        } else if (p.cmd === 'publish') {
          s.write(mqttPacket.generate({ cmd: 'puback', messageId: p.messageId! }))
        }
      })
      s.on('data', (d) => parser.parse(d))
      s.on('error', () => {})
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const { port } = server.address() as AddressInfo
    const messages: string[] = []
    const c = connectLite({
      host: '127.0.0.1',
      port,
      clientId: 'd1',
      clean: false,
      subscribe: ['in/d1'],
      onMessage: (topic, payload) => messages.push(`${topic} ${payload.toString()}`),
    })
    try {
      expect(await c.connected).toEqual({ sessionPresent: true, returnCode: 0 })
      await expect.poll(() => messages).toEqual(['in/d1 one', 'in/d1 two', 'in/d1 three'])
      await expect
        .poll(() => got.filter((p) => p.cmd === 'puback').map((p) => p.messageId))
        .toEqual([5, 6, 7])
      // (only now: the scripted broker would write its PUBACK between the halves of the third)
      await c.publish('out/x', 'hello')
      expect(got.find((p) => p.cmd === 'publish')).toMatchObject({ topic: 'out/x', qos: 1 })
    } finally {
      c.close()
      peer?.destroy()
      server.close()
    }
  })

  it('fails its waiting publishes when a malformed packet closes it after its connect', async () => {
    const server = createServer((s) => {
      s.once('data', () => {
        s.write(Buffer.from([0x20, 0x02, 0x00, 0x00]))
        // the PUBLISH from the device: answered with a PUBLISH at QoS 3
        s.once('data', () => s.write(Buffer.from([0x36, 0x05, 0x00, 0x01, 0x61, 0x00, 0x01])))
      })
      s.on('error', () => {})
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const { port } = server.address() as AddressInfo
    const c = connectLite({ host: '127.0.0.1', port, clientId: 'd3', clean: true, onMessage() {} })
    try {
      await c.connected
      await expect(c.publish('out/x', 'hello')).rejects.toThrow('closed before its PUBACK')
    } finally {
      c.close()
      server.close()
    }
  })

  it('fails its connect on a refused CONNACK and on a malformed packet', async () => {
    const replies = [
      Buffer.from([0x20, 0x02, 0x00, 0x05]),
      Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]),
    ]
    const server = createServer((s) => {
      s.once('data', () => s.write(replies.shift()!))
      s.on('error', () => {})
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const { port } = server.address() as AddressInfo
    const attempt = () =>
      connectLite({ host: '127.0.0.1', port, clientId: 'd2', clean: true, onMessage() {} })
    try {
      const refused = attempt()
      await expect(refused.connected).rejects.toThrow('CONNACK 5')
      refused.close()
      const malformed = attempt()
      await expect(malformed.connected).rejects.toThrow(/remaining length/)
      malformed.close()
    } finally {
      server.close()
    }
  })
})
