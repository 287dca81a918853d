import type { Db } from './database.js'

type Op = () => void

interface Pending {
  op: Op
  resolve?: () => void
  reject?: (err: unknown) => void
  /** A write-behind op's own failure hook (its error also goes to the error handler). */
  failed?: () => void
  /** Queued in the deferred lane. */
  deferred?: boolean
}

/**
 * How long write-behind operations may wait for company before they are committed. Fewer,
 * larger transactions write each hot page once: the broker's CPU per delivered message in the
 * offline drain: 100–106 µs at 10 ms, 91–96 at 30, 83–89 at 60 (alternating runs); 50 is
 * between the two measured.
 */
export const WRITE_BEHIND_DELAY_MS = 50
/** …unless this many are queued. */
export const WRITE_BEHIND_MAX_OPS = 5000
/** How many more flushes `close()` makes for what the callbacks of the last one queued. */
const CLOSE_ROUNDS = 3

/**
 * One writer for the whole embedded store: every mutation is queued and committed in group
 * commits, one transaction for many ops. Four kinds of writes:
 * - `commit(op)`: the promise resolves once the op is durable; its transaction runs on the next
 *   turn of the event loop. Used where acceptance depends on durability (a message, a device, a
 *   durably queued packet, a subscription).
 * - `later(op)`: write-behind, nobody waits; committed with the next commit, or after
 *   WRITE_BEHIND_DELAY_MS. Used where losing the last few dozen milliseconds in a crash is
 *   harmless (receipts whose packet stays queued — it is delivered again, and devices drop a
 *   message id they have seen —, last-seen times, queue bookkeeping).
 * - `deferred(op)`: write-behind in a lane of its own, which a commit does not take along
 *   (unless asked to): it waits for the write-behind delay even while commits go on. Deferred
 *   ops commit in their order, each with or after every op queued before it, never without
 *   the deferred ops before it; ops queued after them may commit first. What it is for: the
 *   queue rows of the message pipeline's publishes, and the messages' dispatched marks after
 *   them, so that an entry an online device acknowledges within the delay is never written
 *   (EmbeddedBrokerPersistence.enqueueRecoverable).
 * - `withNext(op)`: write-behind that never makes a transaction of its own: it waits in the
 *   main queue for whatever commits next. Used for bookkeeping that may lag as long as nothing
 *   else is written (the message store's dispatched-through mark).
 * Main-queue ops run in the order they were queued, so a commit also covers every earlier
 * `commit`, `later` and `withNext` op.
 */
export class SqliteWriter {
  readonly #db: Db
  readonly #onError: (err: unknown) => void
  /** One transaction that runs a batch's ops, built once (a flush may come with every push). */
  readonly #runBatch: { immediate(batch: readonly Pending[]): void }
  #queue: Pending[] = []
  /** The deferred lane: committed only by a full flush (the timer, flush(), pause, close). */
  #deferred: Pending[] = []
  #immediate: NodeJS.Immediate | undefined
  #timer: NodeJS.Timeout | undefined
  #closed = false
  #paused = false
  /** The scheduled immediate flush is to take the deferred lane too. */
  #fullSoon = false

  constructor(db: Db, onError: (err: unknown) => void) {
    this.#db = db
    this.#onError = onError
    this.#runBatch = db.transaction((batch: readonly Pending[]) => {
      for (const p of batch) p.op()
    })
  }

  /**
   * `withDeferred`: the deferred lane is committed in the same transaction, before this op
   * (what was deferred before it is then never durable after it: queue entries in order).
   */
  commit(op: Op, withDeferred = false): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#closed) return reject(new Error('store is closed'))
      if (withDeferred && this.#deferred.length > 0) {
        for (const p of this.#deferred) this.#queue.push(p)
        this.#deferred = []
      }
      this.#queue.push({ op, resolve, reject })
      this.#scheduleNow()
    })
  }

  /**
   * `committed` runs once the op is durable; a failure goes to the writer's error handler, and
   * to `failed` (the op did not commit: an op that gathers work for later must stop gathering
   * into it, or what comes later is lost with it).
   */
  later(op: Op, committed?: () => void, failed?: () => void): void {
    const p = this.#behind(op, committed, failed, false)
    if (!p) return
    this.#queue.push(p)
    this.#scheduleSoon()
  }

  /**
   * Write-behind that never makes a transaction of its own: committed with the next commit or
   * flush, whenever that comes (a timer's, `close()`'s included); `committed` and `failed` as
   * for `later`. For bookkeeping that may lag as long as nothing else is written.
   */
  withNext(op: Op, committed?: () => void, failed?: () => void): void {
    const p = this.#behind(op, committed, failed, false)
    if (p) this.#queue.push(p)
  }

  /**
   * Write-behind in the deferred lane (see the class comment): committed within the
   * write-behind delay, with or after everything queued before it; `committed` and `failed`
   * as for `later`.
   */
  deferred(op: Op, committed?: () => void, failed?: () => void): void {
    const p = this.#behind(op, committed, failed, true)
    if (!p) return
    this.#deferred.push(p)
    if (this.#deferred.length >= WRITE_BEHIND_MAX_OPS) this.#scheduleNow(true)
    else this.#scheduleTimer()
  }

  /** A write-behind op to queue; undefined (its failure reported) once the store is closed. */
  #behind(
    op: Op,
    committed: (() => void) | undefined,
    failed: (() => void) | undefined,
    deferred: boolean,
  ): Pending | undefined {
    if (this.#closed) {
      this.#onError(new Error('write after the store was closed'))
      failed?.()
      return undefined
    }
    const p: Pending = { op }
    if (committed) p.resolve = committed
    if (failed) p.failed = failed
    if (deferred) p.deferred = true
    return p
  }

  /** Commits everything queued, the deferred lane included, on the next turn of the event loop. */
  soon(): void {
    this.#scheduleNow(true)
  }

  /**
   * Commits what is queued, then holds further commits back (they queue) until `resume()`:
   * the checkpoint thread restarts the log while nothing writes, without the event loop
   * waiting on a lock.
   */
  pause(): void {
    this.flush()
    this.#paused = true
  }

  resume(): void {
    if (!this.#paused) return
    this.#paused = false
    if (this.#queue.length > 0 || this.#deferred.length > 0) this.#scheduleNow(true)
  }

  /** Commits everything queued now, the deferred lane included, synchronously (not while paused). */
  flush(): void {
    this.#flush(true)
  }

  /** `full`: the deferred lane too (after the rest); otherwise only the main queue. */
  #flush(full: boolean): void {
    if (this.#paused || this.#closed) return
    if (this.#immediate) clearImmediate(this.#immediate)
    this.#immediate = undefined
    this.#fullSoon = false
    if (full && this.#timer) {
      clearTimeout(this.#timer)
      this.#timer = undefined
    }
    const batch = this.#queue
    this.#queue = []
    if (full && this.#deferred.length > 0) {
      for (const p of this.#deferred) batch.push(p)
      this.#deferred = []
    }
    // deferred ops left behind keep their timer
    if (batch.length === 0) return
    try {
      // IMMEDIATE: the write lock is taken (and waited for) at BEGIN; a deferred transaction
      // whose first op reads would fail at once, unwaited, on meeting another connection's lock
      this.#runBatch.immediate(batch)
    } catch (err) {
      if (!isConstraintError(err)) {
        // not the fault of one op (disk full, I/O): everything of the batch failed
        for (const p of batch) this.#fail(p, err)
        return
      }
      // one op broke a constraint and rolled the batch back: run the batch again as one
      // transaction with each op in a savepoint of its own, so only the culprit is undone and
      // the rest still commits together (a crash meanwhile commits none of it, as before).
      // Ops take their inputs when queued, so running one again is safe.
      const failed = new Map<Pending, unknown>()
      // the deferred lane is a chain: none of its ops commits without those before it
      let laneBroken: unknown
      try {
        this.#db
          .transaction(() => {
            for (const p of batch) {
              if (p.deferred && laneBroken !== undefined) {
                failed.set(p, laneBroken)
                continue
              }
              try {
                this.#db.transaction(p.op)()
              } catch (err) {
                if (!isConstraintError(err)) throw err
                failed.set(p, err)
                if (p.deferred) laneBroken = err
              }
            }
          })
          .immediate()
      } catch (err) {
        for (const p of batch) this.#fail(p, err)
        return
      }
      for (const p of batch) {
        if (!failed.has(p)) p.resolve?.()
        else this.#fail(p, failed.get(p))
      }
      return
    }
    for (const p of batch) p.resolve?.()
  }

  #fail(p: Pending, err: unknown): void {
    if (p.reject) return p.reject(err)
    p.failed?.()
    this.#onError(err)
  }

  /**
   * Flushes and refuses further writes. What the commits' callbacks queue meanwhile (a write
   * behind what just became durable) is committed too, a few rounds of it at most; no timer is
   * left to run on a closed database.
   */
  close(): void {
    this.#paused = false
    this.flush()
    for (let round = 0; round < CLOSE_ROUNDS && this.pending > 0; round++) this.flush()
    this.#closed = true
    if (this.#immediate) clearImmediate(this.#immediate)
    if (this.#timer) clearTimeout(this.#timer)
    this.#immediate = undefined
    this.#timer = undefined
  }

  get pending(): number {
    return this.#queue.length + this.#deferred.length
  }

  /**
   * Somebody waits for durability: commit the main queue on the next turn of the event loop
   * (`full`: the deferred lane too).
   */
  #scheduleNow(full = false): void {
    if (full) this.#fullSoon = true
    if (this.#immediate || this.#paused) return
    this.#immediate = setImmediate(() => this.#flush(this.#fullSoon))
  }

  /**
   * Only write-behind work is queued: let it gather for a few milliseconds. A transaction
   * writes every page it touched to the log, so one transaction of many receipts costs far
   * less than many of a few (an offline device draining its queue acknowledges in bursts).
   */
  #scheduleSoon(): void {
    if (this.#immediate || this.#paused) return
    if (this.#queue.length >= WRITE_BEHIND_MAX_OPS) return this.#scheduleNow()
    this.#scheduleTimer()
  }

  /** The write-behind timer: a full flush (main queue and deferred lane) once it fires. */
  #scheduleTimer(): void {
    if (this.#timer || this.#paused) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#flush(true)
    }, WRITE_BEHIND_DELAY_MS)
  }
}

function isConstraintError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && code.startsWith('SQLITE_CONSTRAINT')
}

/**
 * Items gathered into one write-behind op (`later`, or `deferred` in the deferred lane): `open()`
 * gives the batch to add to — the open one, or a new one whose op is queued now, where it stands
 * in the writer's order. The op owns its batch (run again after a rollback, it writes the same
 * items); once it ran, or its transaction failed (reported; those items are not written, and
 * `failed` gets the batch), or after `close()`, the next `open()` starts a new batch with an op
 * of its own, queued after everything before it. `committed` gets a batch once it is durable.
 */
export class LaterBatch<B> {
  readonly #writer: SqliteWriter
  readonly #make: () => B
  readonly #run: (batch: B) => void
  readonly #o: {
    lane?: 'later' | 'deferred'
    committed?: (batch: B) => void
    failed?: (batch: B) => void
  }
  #open: B | undefined

  constructor(
    writer: SqliteWriter,
    make: () => B,
    run: (batch: B) => void,
    o: {
      lane?: 'later' | 'deferred'
      committed?: (batch: B) => void
      failed?: (batch: B) => void
    } = {},
  ) {
    this.#writer = writer
    this.#make = make
    this.#run = run
    this.#o = o
  }

  /** The open batch, if any (to decide whether it is full). */
  get current(): B | undefined {
    return this.#open
  }

  open(): B {
    const current = this.#open
    if (current) return current
    const owned = this.#make()
    this.#open = owned
    const detach = () => {
      if (this.#open === owned) this.#open = undefined
    }
    const { lane, committed, failed } = this.#o
    const op = () => {
      detach()
      this.#run(owned)
    }
    const onCommitted = committed && (() => committed(owned))
    const onFailed = () => {
      detach()
      failed?.(owned)
    }
    if (lane === 'deferred') this.#writer.deferred(op, onCommitted, onFailed)
    else this.#writer.later(op, onCommitted, onFailed)
    return owned
  }

  /** Items added from now on go in a new op, after whatever is queued meanwhile. */
  close(): void {
    this.#open = undefined
  }
}
