import type { Db } from './database.js'

type Op = () => void

interface Pending {
  op: Op
  resolve?: () => void
  reject?: (err: unknown) => void
}

/**
 * One writer for the whole embedded store: every mutation is queued and the queue is committed
 * as one transaction on the next turn of the event loop (group commit). Two kinds of writes:
 * - `commit(op)`: the promise resolves once the op is durable. Used where acceptance depends on
 *   durability (a message, a device, a queued packet, a subscription).
 * - `later(op)`: write-behind, nobody waits. Used where losing the last few milliseconds in a
 *   crash is harmless (receipts whose packet stays queued, last-seen times, queue bookkeeping).
 * Ops run in the order they were queued, so a durable commit also covers every earlier op.
 */
export class SqliteWriter {
  readonly #db: Db
  readonly #onError: (err: unknown) => void
  #queue: Pending[] = []
  #scheduled = false
  #closed = false

  constructor(db: Db, onError: (err: unknown) => void) {
    this.#db = db
    this.#onError = onError
  }

  commit(op: Op): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#closed) return reject(new Error('store is closed'))
      this.#queue.push({ op, resolve, reject })
      this.#schedule()
    })
  }

  later(op: Op): void {
    if (this.#closed) {
      this.#onError(new Error('write after the store was closed'))
      return
    }
    this.#queue.push({ op })
    this.#schedule()
  }

  /** Commits everything queued now, synchronously. */
  flush(): void {
    const batch = this.#queue
    if (batch.length === 0) return
    this.#queue = []
    try {
      this.#db.transaction(() => {
        for (const p of batch) p.op()
      })()
    } catch (err) {
      if (!isConstraintError(err)) {
        // not the fault of one op (disk full, I/O): everything of the batch failed
        for (const p of batch) {
          if (p.reject) p.reject(err)
          else this.#onError(err)
        }
        return
      }
      // one op broke a constraint and rolled the batch back: run each alone so only the
      // culprit fails (ops take their inputs when queued, so running one again is safe)
      for (const p of batch) {
        try {
          this.#db.transaction(p.op)()
        } catch (err) {
          if (p.reject) p.reject(err)
          else this.#onError(err)
          continue
        }
        p.resolve?.()
      }
      return
    }
    for (const p of batch) p.resolve?.()
  }

  /** Flushes and refuses further writes. */
  close(): void {
    this.flush()
    this.#closed = true
  }

  get pending(): number {
    return this.#queue.length
  }

  #schedule(): void {
    if (this.#scheduled) return
    this.#scheduled = true
    setImmediate(() => {
      this.#scheduled = false
      this.flush()
    })
  }
}

function isConstraintError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && code.startsWith('SQLITE_CONSTRAINT')
}
