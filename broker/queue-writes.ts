import { Socket } from 'node:net'
import type { BrokerPersistence } from './ports.js'

/** While a queue drains, buffered bytes go out once this many have gathered (or at its end). */
export const QUEUE_FLUSH_BYTES = 8192

interface Conn {
  cork: (this: Conn) => void
  uncork: (this: Conn) => void
  readonly writableCorked: number
  readonly writableLength: number
  readonly writableNeedDrain: boolean
  readonly destroyed: boolean
}

/**
 * Coalesces the writes of a reconnecting device's queue. aedes sends a stored queue one packet
 * per turn of the event loop, each in a write of its own (one `writev` system call per packet:
 * a fifth of the service's time in a drain). While the queue streams, the device's TCP socket
 * stays corked and its buffer goes out whenever QUEUE_FLUSH_BYTES have gathered, and when the
 * stream ends. A flush that the kernel does not take at once (a device reading slowly) ends the
 * coalescing for this drain: a socket corked again with a write outstanding would never finish
 * it, and aedes, waiting for 'drain', would drop the device. WebSocket connections are left
 * alone (their stream completes every write later; nothing to gain, the same risk). TLS
 * sockets complete writes later too: for them the coalescing ends after the first flush.
 */
export function coalesceQueueWrites(persistence: BrokerPersistence): void {
  const open = persistence.outgoingStream.bind(persistence)
  persistence.outgoingStream = (client: { id: string; conn?: unknown }) => {
    const stream = open(client)
    const conn = client.conn as Conn | undefined
    if (!(conn instanceof Socket) || conn.destroyed) return stream
    const events = stream as unknown as NodeJS.EventEmitter
    if (typeof events.once !== 'function') return stream

    const uncork = (conn as Conn).uncork
    const own = Object.prototype.hasOwnProperty.call(conn, 'uncork')
    let done = false
    const finish = () => {
      if (done) return
      done = true
      if (own) conn.uncork = uncork
      else delete (conn as { uncork?: unknown }).uncork
      uncork.call(conn)
    }
    conn.cork()
    // mqtt-packet corks around every packet and uncorks on the next tick: the moment to look
    conn.uncork = function coalescingUncork(this: Conn) {
      uncork.call(this)
      if (this.writableCorked !== 1 || this.writableLength < QUEUE_FLUSH_BYTES) return
      uncork.call(this)
      // taken by the kernel at once: gather again; otherwise stay uncorked until the end
      if (this.writableLength === 0 && !this.writableNeedDrain) this.cork()
      else finish()
    }
    events.once('end', finish)
    events.once('close', finish)
    events.once('error', finish)
    return stream
  }
}
