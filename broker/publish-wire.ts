/**
 * PUBLISH packets encoded straight into one buffer, byte for byte as mqtt-packet's `generate`
 * encodes them without options (MQTT 3.1.1, as aedes writes every packet: its `write` passes
 * none). `generate` builds each packet from six or so small writes into a buffer list and a
 * `Buffer.concat`, with a debug call per packet; a reconnecting device's queue head (many small
 * packets, one write) then paid a buffer per packet and a second copy of all of them
 * (docs/benchmarks-log.md, twenty-first session).
 */

/** The most an MQTT remaining length can say (four bytes of seven bits). */
const MAX_REMAINING = 268_435_455

/** A PUBLISH as aedes' queue hands it out. */
export interface PublishLike {
  cmd: string
  topic?: unknown
  payload?: unknown
  qos?: number
  messageId?: number
  dup?: unknown
  retain?: unknown
}

/**
 * The remaining length (what follows the fixed header) of `packet`, or -1 when this module does
 * not encode it: not a publish, a topic that is neither a non-empty string nor a Buffer, a
 * payload that is neither a string nor a Buffer, a topic over 65,535 bytes, a QoS other than
 * 0, 1 or 2, a QoS 1 or 2 packet without a packet identifier in 1–65535, or more bytes than MQTT
 * can frame. The caller leaves such a packet to mqtt-packet, which encodes it or reports the
 * error as before.
 */
export function publishRemainingLength(packet: PublishLike): number {
  if (packet.cmd !== 'publish') return -1
  const qos = packet.qos ?? 0
  if (qos !== 0 && qos !== 1 && qos !== 2) return -1
  const topic = packet.topic
  let topicBytes: number
  if (typeof topic === 'string' && topic.length > 0) topicBytes = Buffer.byteLength(topic)
  else if (Buffer.isBuffer(topic)) topicBytes = topic.length
  else return -1
  // its length is two bytes
  if (topicBytes > 65535) return -1
  let length = 2 + topicBytes
  const payload = packet.payload
  if (payload === undefined || payload === null) length += 0
  else if (Buffer.isBuffer(payload)) length += payload.length
  else if (typeof payload === 'string') length += Buffer.byteLength(payload)
  else return -1
  if (qos > 0) {
    const id = packet.messageId
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > 65535) return -1
    length += 2
  }
  return length > MAX_REMAINING ? -1 : length
}

/** The whole packet's bytes for a remaining length: the fixed header's two to five, and it. */
export function publishWireLength(remaining: number): number {
  return 1 + varIntBytes(remaining) + remaining
}

/**
 * Writes `packet` at `offset` of `out` (room for `publishWireLength(remaining)` bytes), with
 * `remaining` from `publishRemainingLength` (not -1); returns the offset after it.
 */
export function writePublish(
  out: Buffer,
  offset: number,
  packet: PublishLike,
  remaining: number,
): number {
  const qos = packet.qos ?? 0
  let o = offset
  out[o++] = 0x30 | (packet.dup ? 0x08 : 0) | (qos << 1) | (packet.retain ? 1 : 0)
  let n = remaining
  do {
    let byte = n % 128
    n = Math.floor(n / 128)
    if (n > 0) byte |= 0x80
    out[o++] = byte
  } while (n > 0)
  const topic = packet.topic as string | Buffer
  const topicBytes =
    typeof topic === 'string' ? out.write(topic, o + 2, 'utf8') : topic.copy(out, o + 2)
  out.writeUInt16BE(topicBytes, o)
  o += 2 + topicBytes
  if (qos > 0) {
    out.writeUInt16BE(packet.messageId as number, o)
    o += 2
  }
  const payload = packet.payload as string | Buffer | undefined | null
  if (Buffer.isBuffer(payload)) o += payload.copy(out, o)
  else if (typeof payload === 'string') o += out.write(payload, o, 'utf8')
  return o
}

function varIntBytes(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4
}
