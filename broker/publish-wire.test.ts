import mqttPacket from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import {
  type PublishLike,
  publishRemainingLength,
  publishWireLength,
  writePublish,
} from './publish-wire.js'

/** The packet as this module encodes it, alone in a buffer of exactly its size. */
function encoded(packet: PublishLike): Buffer {
  const remaining = publishRemainingLength(packet)
  expect(remaining).toBeGreaterThanOrEqual(0)
  const out = Buffer.alloc(publishWireLength(remaining))
  expect(writePublish(out, 0, packet, remaining)).toBe(out.length)
  return out
}

const generated = (packet: PublishLike) => mqttPacket.generate(packet as mqttPacket.Packet)

describe('publish-wire', () => {
  it("encodes every kind of PUBLISH byte for byte as mqtt-packet's generate", () => {
    const topics = ['a', 'app/123/d/abc', 'é/主题/✓', Buffer.from('raw/topic')]
    // payload sizes around each boundary of the remaining length's bytes
    const sizes = [0, 1, 100, 120, 125, 126, 127, 128, 16_370, 16_380, 16_383, 16_384, 70_000]
    let checked = 0
    for (const topic of topics) {
      for (const size of sizes) {
        for (const qos of [0, 1, 2]) {
          for (const flags of [{}, { dup: true }, { retain: true }, { dup: true, retain: true }]) {
            const packet: PublishLike = {
              cmd: 'publish',
              topic,
              payload: Buffer.alloc(size, size % 251),
              qos,
              ...flags,
              ...(qos > 0 ? { messageId: 1 + ((size * 7 + qos) % 65535) } : {}),
            }
            expect(encoded(packet).equals(generated(packet))).toBe(true)
            checked++
          }
        }
      }
    }
    expect(checked).toBe(topics.length * sizes.length * 3 * 4)
  })

  it('encodes string payloads, missing payloads and the highest packet identifier', () => {
    const cases: PublishLike[] = [
      { cmd: 'publish', topic: 't', payload: 'héllo ✓', qos: 1, messageId: 65535 },
      { cmd: 'publish', topic: 't', qos: 0 },
      { cmd: 'publish', topic: 't', payload: null, qos: 1, messageId: 1 },
      { cmd: 'publish', topic: 't', payload: Buffer.alloc(3, 9) },
    ]
    for (const packet of cases) expect(encoded(packet).equals(generated(packet))).toBe(true)
  })

  it('writes packets one after another into a shared buffer, from any offset', () => {
    const packets: PublishLike[] = [1, 2, 3].map((i) => ({
      cmd: 'publish',
      topic: `d/${i}`,
      payload: Buffer.alloc(i * 50, i),
      qos: 1,
      messageId: i,
    }))
    const remainings = packets.map(publishRemainingLength)
    const total = remainings.reduce((sum, r) => sum + publishWireLength(r), 0)
    const out = Buffer.alloc(total + 5, 0xee)
    let offset = 5
    packets.forEach((p, k) => (offset = writePublish(out, offset, p, remainings[k] as number)))
    expect(offset).toBe(out.length)
    expect(out.subarray(0, 5).equals(Buffer.alloc(5, 0xee))).toBe(true)
    expect(out.subarray(5).equals(Buffer.concat(packets.map(generated)))).toBe(true)
  })

  it('leaves to mqtt-packet what it does not encode', () => {
    const bad: PublishLike[] = [
      { cmd: 'pubrel', messageId: 1 },
      { cmd: 'publish', topic: '', payload: Buffer.alloc(1) },
      { cmd: 'publish', payload: Buffer.alloc(1) },
      { cmd: 'publish', topic: 't', payload: { not: 'bytes' } },
      { cmd: 'publish', topic: 't', qos: 3 },
      { cmd: 'publish', topic: 't', qos: 1 },
      { cmd: 'publish', topic: 't', qos: 1, messageId: 0 },
      { cmd: 'publish', topic: 't', qos: 2, messageId: 65536 },
      { cmd: 'publish', topic: 't', qos: 1, messageId: 1.5 },
      // a topic's length is two bytes
      { cmd: 'publish', topic: 'x'.repeat(65536), payload: Buffer.alloc(1) },
    ]
    for (const packet of bad) expect(publishRemainingLength(packet)).toBe(-1)
    // more than a remaining length can say (2 + 1 + 268,435,453 bytes; pages never touched)
    const huge = { cmd: 'publish', topic: 't', payload: Buffer.allocUnsafe(268_435_453) }
    expect(publishRemainingLength(huge)).toBe(-1)
  })
})
