import type { EventEmitter } from 'node:events'
import { Socket } from 'node:net'

/** While a queue drains, buffered bytes go out once this many have gathered (or at its end). */
export const QUEUE_FLUSH_BYTES = 8192

interface Conn {
  cork: (this: Conn) => void
  uncork: (this: Conn) => void
  once(event: 'close', listener: () => void): unknown
  removeListener(event: 'close', listener: () => void): unknown
  readonly writableCorked: number
  readonly writableLength: number
  readonly writableNeedDrain: boolean
  readonly destroyed: boolean
}

/**
 * Coalesces the writes of a reconnecting device's stored queue. aedes sends a stored queue one
 * packet per turn of the event loop, each in a write of its own: one `writev` system call, one
 * TCP segment and one wake-up of the device per packet. From the moment aedes opens the queue's
 * stream (after the CONNACK, which goes out at once) until the connect is complete
 * (`clientReady`: every packet of the queue has been written), the device's TCP socket stays
 * corked, and its buffer goes out whenever QUEUE_FLUSH_BYTES have gathered, and at the end: a
 * queue of a few kilobytes reaches the device in one write.
 *
 * It ends with the connect, not with the queue's stream: aedes reads the stream ahead of its
 * writes (its pipeline buffers up to 16 packets), so the stream ends while the last packets are
 * still to be written; ended there, a queue of 20 went out in 5 writes, one of 16 or fewer in
 * one write per packet. Only a stream opened while the client connects is coalesced: no
 * `clientReady` would end any other. `nothingLeft` tells a stream with nothing to write (a
 * queue whose head went out whole at the connect, `wroteWholeQueue`): left alone.
 */
export function coalesceQueueWrites(
  broker: EventEmitter,
  persistence: { outgoingStream(client: { id: string; conn?: unknown }): unknown },
  nothingLeft: (stream: unknown) => boolean = () => false,
): void {
  const gathering = new WeakMap<object, () => void>()
  const open = persistence.outgoingStream.bind(persistence)
  persistence.outgoingStream = (client: { id: string; conn?: unknown; connecting?: boolean }) => {
    const stream = open(client)
    // coalesced once per connect: a second cork would never be undone
    if (client.connecting !== true || gathering.has(client) || nothingLeft(stream)) return stream
    const finish = coalesceWrites(client.conn)
    if (finish) gathering.set(client, finish)
    return stream
  }
  broker.on('clientReady', (client: object) => {
    const finish = gathering.get(client)
    if (!finish) return
    gathering.delete(client)
    finish()
  })
}

/**
 * Corks a TCP socket and returns the function that ends the coalescing (undefined, and nothing
 * done, for anything else). Until then the buffer goes out whenever QUEUE_FLUSH_BYTES have
 * gathered. A flush that the kernel does not take at once (a device reading slowly) ends the
 * coalescing: a socket corked again with a write outstanding would never finish it, and aedes,
 * waiting for 'drain', would drop the device. A write that fills the socket's buffer is always
 * followed by a flush: mqtt-packet uncorks after every packet, on the next tick, and that is
 * where the buffer is looked at. WebSocket connections are left alone (their stream completes
 * every write later; nothing to gain, the same risk). TLS sockets complete writes later too:
 * for them the coalescing ends after the first flush. A socket that closes ends it too.
 */
export function coalesceWrites(socket: unknown): (() => void) | undefined {
  if (!(socket instanceof Socket) || socket.destroyed) return undefined
  const conn = socket as unknown as Conn
  const uncork = conn.uncork
  const own = Object.prototype.hasOwnProperty.call(conn, 'uncork')
  let done = false
  const finish = () => {
    if (done) return
    done = true
    // nothing of the coalescing stays with a connection that outlives it
    conn.removeListener('close', finish)
    if (own) conn.uncork = uncork
    else delete (conn as { uncork?: unknown }).uncork
    uncork.call(conn)
  }
  conn.cork()
  // mqtt-packet corks around every packet and uncorks on the next tick: the moment to look
  conn.uncork = function coalescingUncork(this: Conn) {
    uncork.call(this)
    // a write that filled the buffer (a socket whose high-water mark is below the flush size)
    // flushes too: aedes waits for its 'drain'
    if (
      this.writableCorked !== 1 ||
      (this.writableLength < QUEUE_FLUSH_BYTES && !this.writableNeedDrain)
    )
      return
    uncork.call(this)
    // taken by the kernel at once: gather again; otherwise stay uncorked until the end
    if (this.writableLength === 0 && !this.writableNeedDrain) this.cork()
    else finish()
  }
  conn.once('close', finish)
  return finish
}
