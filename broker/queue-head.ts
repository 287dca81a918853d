import { syncBuiltinESMExports } from 'node:module'
import { Socket } from 'node:net'
import stream, { Readable } from 'node:stream'
import { promisify } from 'node:util'
import { publishRemainingLength, publishWireLength, writePublish } from './publish-wire.js'

/** The most bytes of a stored queue written at the connect itself; aedes sends the rest. */
export const QUEUE_HEAD_BYTES = 16384
/** The most packets taken at the connect (sent or cleared: expired ones count too). */
export const QUEUE_HEAD_PACKETS = 512

/** A packet of a stored queue, as the persistence hands it out (a copy of its own). */
export interface QueuedPacket {
  cmd: string
  topic?: string
  payload?: Buffer
  qos?: number
  messageId?: number
  brokerId?: string
  brokerCounter?: number
}

/** What this needs of aedes' client (its fields as of aedes 1.2). */
interface ClientLike {
  id: string
  conn?: unknown
  connecting?: boolean
  clean?: boolean
  connackSent?: boolean
  /** the packet identifier aedes gives the next packet sent without one */
  _nextId: number
  emit(event: 'error', err: unknown): unknown
}

/**
 * Marks the (empty) stream of the rest of a queue whose head was the whole queue. A symbol of
 * the process's registry, not a module's own set: `stream.pipeline` is the process's, and so
 * must be what its shortcut recognizes (a second copy of this module, as tests load, included).
 */
const WHOLE_QUEUE = Symbol.for('mqpush.queue-head.whole-queue')

/**
 * Whether `rest` is the rest of a queue that went out whole at the connect: an empty stream,
 * nothing left for aedes to write (nor for `coalesceQueueWrites` to gather).
 */
export function wroteWholeQueue(rest: unknown): boolean {
  return (
    typeof rest === 'object' &&
    rest !== null &&
    (rest as { [WHOLE_QUEUE]?: boolean })[WHOLE_QUEUE] === true
  )
}

/** Marks Node's `stream.pipeline` once it has the shortcut (one per process). */
const SHORTCUT = Symbol.for('mqpush.queue-head.pipeline-shortcut')

/**
 * aedes ends every connect of a persistent session by piping the queue's stream through a
 * transform (its `emptyQueue`: `pipeline(outgoing, through(clearQueue), done)`). When the head
 * was the whole queue there is nothing to pipe, yet Node's `pipeline` costs every such connect
 * an `AbortController`, the `DOMException` (and its stack trace) that aborting it at the end
 * makes, end-of-stream listeners on both streams, and the transform's turns: 7–20 % of the
 * service's CPU per delivered message in a drain (docs/benchmarks-log.md, nineteenth session).
 *
 * This replaces `stream.pipeline`, once per process, by a function that calls Node's own for
 * everything but those calls — three arguments, the first a stream `wroteWholeQueue` knows
 * (only aedes ever gets one), the last a callback —, for which it calls the callback on the
 * next tick, without an error, and returns the transform, as `pipeline` returns its last
 * stream: what Node's `pipeline` would do for an empty stream, a few ticks sooner. The
 * transform and the empty stream are left to the collector, never read. aedes imports
 * `pipeline` as an ES module from 'stream': its binding follows the CommonJS export once
 * `syncBuiltinESMExports` runs. The promise form (`stream/promises`, `util.promisify`) is
 * Node's own, unchanged.
 */
export function skipPipelinesOfWholeQueues(): void {
  const current = stream.pipeline as typeof stream.pipeline & { [SHORTCUT]?: true }
  if (current[SHORTCUT]) return
  const original = current as unknown as (...args: unknown[]) => unknown
  const pipeline = function pipeline(this: unknown, ...args: unknown[]): unknown {
    if (args.length === 3 && typeof args[2] === 'function' && wroteWholeQueue(args[0])) {
      process.nextTick(args[2])
      return args[1]
    }
    return original.apply(this, args)
  }
  Object.defineProperty(pipeline, SHORTCUT, { value: true })
  // util.promisify(stream.pipeline) stays Node's promise form
  const custom = (current as unknown as Record<symbol, unknown>)[promisify.custom]
  if (custom !== undefined) Object.defineProperty(pipeline, promisify.custom, { value: custom })
  ;(stream as { pipeline: unknown }).pipeline = pipeline
  syncBuiltinESMExports()
}

/**
 * The persistence: with `outgoingSnapshot`, its `outgoingUpdate` and `outgoingClearMessageId`
 * must take effect when called (their promises only report), as the embedded one's do: the
 * head is written before they settle, and the device's acknowledgements may come back at once.
 */
export interface QueueHeadPersistence {
  outgoingStream(client: { id: string }): unknown
  outgoingUpdate(client: { id: string }, packet: unknown): Promise<unknown>
  outgoingClearMessageId(client: { id: string }, packet: unknown): Promise<unknown>
  /** Extension: the stored queue's packets in order, each a copy of its own (not a stream). */
  outgoingSnapshot?(client: { id: string }): unknown[]
}

/**
 * Writes the head of a reconnecting device's stored queue at once, in one write. aedes sends
 * a stored queue one packet at a time, each through a stream, a promise and a turn of the event
 * loop (its connect handler's `emptyQueue`): most of a drain's CPU beside the sockets' own. This
 * does for the first QUEUE_HEAD_BYTES what aedes does for each packet, in the same order — the
 * packet identifier (as aedes' `QoSPacket`), `outgoingUpdate`, `authorizeForward` (a packet it
 * refuses, or any for a clean session, is cleared with `outgoingClearMessageId`, not sent) — and
 * hands aedes a stream of the rest, which it sends as before (with its wait for 'drain').
 *
 * Only at the connect (aedes opens the queue's stream there, after the CONNACK is written),
 * once per connect, and only over a TCP or TLS socket; a persistence without
 * `outgoingSnapshot`, a WebSocket, or a packet that is not a publish (a QoS 2 release) leaves
 * the rest to aedes. Unlike aedes, a failed `outgoingUpdate` is reported after its packet was
 * sent (aedes skips the packet); either way the client's 'error' closes the connection and the
 * packet stays queued. A queue that goes out whole (an empty one too) leaves aedes nothing to
 * pipe: its `pipeline` is skipped (`skipPipelinesOfWholeQueues`, installed here).
 */
export function writeQueueHeads(
  broker: {
    authorizeForward(client: unknown, packet: unknown): unknown
    on(event: 'client', listener: (client: unknown) => void): unknown
  },
  persistence: QueueHeadPersistence,
): void {
  const snapshot = persistence.outgoingSnapshot?.bind(persistence)
  if (!snapshot) return
  skipPipelinesOfWholeQueues()
  // sockets corked from the client's registration until its queue's head is written: the
  // CONNACK and the head leave in one write
  const corked = new WeakSet<Socket>()
  // clients whose head was written: a second stream of the same connect is aedes' own
  const written = new WeakSet<object>()
  broker.on('client', (c: unknown) => {
    const client = c as ClientLike
    const conn = client.conn
    // (a client taking over an id is registered once the previous one has closed: perhaps
    // after its CONNACK, or its queue, was written; then it is not corked)
    if (client.connecting !== true || client.connackSent === true) return
    if (!(conn instanceof Socket) || conn.destroyed || corked.has(conn)) return
    // bytes still waiting to go out: a CONNACK written now could wait for a 'drain' that a
    // corked socket never emits
    if (conn.writableLength > 0) return
    conn.cork()
    corked.add(conn)
  })
  const open = persistence.outgoingStream.bind(persistence)
  persistence.outgoingStream = (c: { id: string }) => {
    const client = c as ClientLike
    const conn = client.conn
    if (!(conn instanceof Socket)) return open(client)
    const wasCorked = corked.delete(conn)
    try {
      if (client.connecting !== true || conn.destroyed || written.has(client)) return open(client)
      written.add(client)
      const list = snapshot(client) as QueuedPacket[]
      const sent = writeHead(broker, persistence, client, conn, list)
      if (sent < list.length) return Readable.from(sent === 0 ? list : list.slice(sent))
      const rest = Readable.from([])
      Object.defineProperty(rest, WHOLE_QUEUE, { value: true })
      return rest
    } finally {
      if (wasCorked) conn.uncork()
    }
  }
}

/** Sends the queue's head; returns how many packets it took (sent or cleared). */
function writeHead(
  broker: { authorizeForward(client: unknown, packet: unknown): unknown },
  persistence: QueueHeadPersistence,
  client: ClientLike,
  conn: Socket,
  list: QueuedPacket[],
): number {
  // what is sent, and each one's remaining length: encoded at the end into one buffer
  const send: QueuedPacket[] = []
  const remainings: number[] = []
  let bytes = 0
  let i = 0
  const failed = (err: unknown) => client.emit('error', err)
  const end = Math.min(list.length, QUEUE_HEAD_PACKETS)
  for (; i < end && bytes < QUEUE_HEAD_BYTES; i++) {
    const packet = list[i] as QueuedPacket
    if (packet.cmd !== 'publish') break
    // as aedes' QoSPacket: a packet sent before keeps its identifier
    if (!packet.messageId) {
      packet.messageId = client._nextId
      client._nextId = client._nextId >= 65535 ? 1 : client._nextId + 1
    }
    const remaining = publishRemainingLength(packet)
    // one this does not encode (a malformed packet): aedes writes it, or reports its error
    if (remaining < 0) break
    persistence.outgoingUpdate(client, packet).catch(failed)
    if (client.clean || !broker.authorizeForward(client, packet)) {
      persistence.outgoingClearMessageId(client, packet).catch(failed)
      continue
    }
    send.push(packet)
    remainings.push(remaining)
    bytes += publishWireLength(remaining)
  }
  if (send.length === 0) return i
  const wire = Buffer.allocUnsafe(bytes)
  let offset = 0
  for (let k = 0; k < send.length; k++) {
    offset = writePublish(wire, offset, send[k] as QueuedPacket, remainings[k] as number)
  }
  // never a byte of the uninitialized buffer to a device: should the lengths ever disagree, the
  // connection is closed instead (its packets stay queued, for its next connect)
  if (offset !== bytes) {
    failed(new Error(`queue head: ${offset} bytes encoded of ${bytes}`))
    return i
  }
  conn.write(wire)
  return i
}
