import type { BrokerPersistence } from './ports.js'

/** While a queue drains, buffered bytes go out once this many have gathered (or at its end). */
export const QUEUE_FLUSH_BYTES = 8192

interface Conn {
  cork: (this: Conn) => void
  uncork: (this: Conn) => void
  readonly writableCorked: number
  readonly writableLength: number
  readonly destroyed: boolean
}

/**
 * Coalesces the writes of a reconnecting device's queue. aedes sends a stored queue one packet
 * per turn of the event loop, each in a write of its own (one `writev` system call per packet:
 * a fifth of the service's time in a drain). While the queue streams, the device's socket stays
 * corked and its buffer goes out whenever QUEUE_FLUSH_BYTES have gathered, and when the stream
 * ends. aedes' own check of the socket's buffer still works: a flush happens after every packet
 * that crossed the threshold, so the buffer stays below the socket's high-water mark (16 KiB)
 * unless one packet is larger, and then the flush after it lets 'drain' come.
 */
export function coalesceQueueWrites(persistence: BrokerPersistence): void {
  const open = persistence.outgoingStream.bind(persistence)
  persistence.outgoingStream = (client: { id: string; conn?: unknown }) => {
    const stream = open(client)
    const conn = client.conn as Conn | undefined
    if (!conn || typeof conn.cork !== 'function' || conn.destroyed) return stream
    const events = stream as unknown as NodeJS.EventEmitter
    if (typeof events.once !== 'function') return stream

    const uncork = conn.uncork
    const own = Object.prototype.hasOwnProperty.call(conn, 'uncork')
    conn.cork()
    // mqtt-packet corks around every packet and uncorks on the next tick: the moment to look
    conn.uncork = function coalescingUncork(this: Conn) {
      uncork.call(this)
      if (this.writableCorked === 1 && this.writableLength >= QUEUE_FLUSH_BYTES) {
        uncork.call(this)
        this.cork()
      }
    }
    let done = false
    const finish = () => {
      if (done) return
      done = true
      if (own) conn.uncork = uncork
      else delete (conn as { uncork?: unknown }).uncork
      uncork.call(conn)
    }
    events.once('end', finish)
    events.once('close', finish)
    events.once('error', finish)
    return stream
  }
}
