/** Messages between the bench runner and its load-generator worker processes (IPC). */
export interface DeviceCreds {
  clientId: string
  username?: string
  password?: string
}

export type WorkerRequest =
  | {
      type: 'connect'
      host: string
      port: number
      localAddress: string
      devices: DeviceCreds[]
      clean: boolean
      /** Topics each device subscribes to after CONNACK; `{id}` is replaced by its client id. */
      subscribe: string[]
      /** Connections opened at once. */
      concurrency: number
    }
  | { type: 'reset' }
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
  /** Ids of messages whose payload says they should have expired (`expired=1`). */
  expiredReceived: number
}

export type WorkerReply =
  | { type: 'connected'; ok: number; failed: number; ms: number; firstError?: string }
  | { type: 'stats'; stats: WorkerStats }
  | { type: 'done' }
