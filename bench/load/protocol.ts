/** Messages between the bench runner and its load-generator worker processes (IPC). */
export interface DeviceCreds {
  clientId: string
  username?: string
  password?: string
}

/**
 * The loopback address of the n-th distinct device a worker connects: 127.{net}.{1–250}.{1–250}
 * (after 62500 devices they repeat). A device keeps its address, as a phone mostly does. One
 * address per device, not per worker: every connection a client closes leaves its port in
 * TIME_WAIT on that address for a minute, and from an address with thousands of them each new
 * connection took milliseconds to set up here (2000 connects: ~0.2 s with up to ~3,900 ports
 * waiting, 2.6–2.8 s with 7,700–11,700), which made the offline scenario's drain time the
 * kernel's, not the broker's.
 */
export function sourceAddress(net: number, n: number): string {
  const k = n % 62_500
  return `127.${net}.${1 + Math.floor(k / 250)}.${1 + (k % 250)}`
}

export type WorkerRequest =
  | {
      type: 'connect'
      host: string
      port: number
      /** This worker's net: its devices connect from addresses of their own, 127.{sourceNet}.x.y. */
      sourceNet: number
      devices: DeviceCreds[]
      clean: boolean
      /** Topics each device subscribes to after CONNACK; `{id}` is replaced by its client id. */
      subscribe: string[]
      /** Connections opened at once. */
      concurrency: number
    }
  | {
      type: 'reset'
      /** Whether the worker runs a full collection first (see `WorkerPool.reset`). */
      collect: boolean
    }
  | { type: 'stats' }
  | { type: 'disconnect' }

export interface WorkerStats {
  received: number
  /** Distinct message ids (from mqpush envelopes or `id=` payloads). */
  distinct: number
  duplicates: number
  firstAt: number
  lastAt: number
  /** End-to-end latencies in ms of messages whose payload carries `t=<send time>`. */
  latencies: number[]
  /** The send times (`t=`, on `stampClock`) of the messages in `latencies`, in the same order. */
  sentAts: number[]
  /** Ids of messages whose payload says they should have expired (`expired=1`). */
  expiredReceived: number
  /**
   * Full collections of the worker's heap since it started, forced or V8's own (not cleared by
   * a reset; V8 reports them a moment after they end).
   */
  fullCollections: number
}

/**
 * The clock of the `t=` send times in unicast payloads, in ms: the machine's monotonic clock
 * (CLOCK_MONOTONIC), the same in every process, and never stepped. The sender stamps with it,
 * the load workers subtract from it. (Until the seventeenth session each process used its own
 * `performance.timeOrigin + performance.now()`: the wall clock read when that process started,
 * then counted on. A step of the wall clock between two processes' starts then shifted every
 * latency between them; one run here had negative latencies.)
 */
export function stampClock(): number {
  return Number(process.hrtime.bigint()) / 1e6
}

/** Stats before any message: what a worker starts from, and returns to at a reset. */
export function emptyWorkerStats(): WorkerStats {
  return {
    received: 0,
    distinct: 0,
    duplicates: 0,
    firstAt: 0,
    lastAt: 0,
    latencies: [],
    sentAts: [],
    expiredReceived: 0,
    fullCollections: 0,
  }
}

export type WorkerReply =
  | { type: 'connected'; ok: number; failed: number; ms: number; firstError?: string }
  | { type: 'stats'; stats: WorkerStats }
  | { type: 'done' }
