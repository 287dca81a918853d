import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'
import type { Db } from './database.js'

/** How often the checkpointer copies committed pages from the log into the database. */
export const CHECKPOINT_INTERVAL_MS = 100
/**
 * A log this long (pages) is started again: under writes without a pause, passive checkpoints
 * never catch up with the end of the log, and SQLite reuses the log only once one has. The
 * writer pauses for it (its commits queue; the event loop runs on). 16384 pages of 4 KiB:
 * 64 MiB.
 */
export const CHECKPOINT_RESTART_PAGES = 16384
/**
 * The longest the writer stays paused for a restart of the log: a guard against a stuck thread
 * only (its restart waits 200 ms at most for readers; the rest is I/O). Resuming earlier would
 * let the next commit wait on the lock the restart holds, with the event loop stopped.
 */
export const RESTART_PAUSE_MAX_MS = 10_000

/*
 * The worker's code, plain CommonJS (a worker started from a string, so that the same code runs
 * from the TypeScript sources under test and from the build). Its own connection to the database
 * file; SQLite lets a checkpoint run beside a writer on another connection. A RESTART checkpoint
 * needs the write lock and waits for readers: it asks the main thread to pause its writer first,
 * and waits for a reader (a `sqlite3` shell with a transaction open) 200 ms at most; after a
 * restart that gave up it asks again after 1 s, 2 s, 4 s … (at most a minute).
 */
const WORKER_CODE = `
const { parentPort, workerData } = require('node:worker_threads')
const Database = require(workerData.sqlite)
const db = new Database(workerData.file, { timeout: 200 })
let timer
let stopped = false
let asked = false
// the log length a restart last succeeded at: until a write starts the log again, passive
// checkpoints keep reporting it, and asking again would only pause the writer for nothing
let restartedAt = -1
// a reader holding an old snapshot makes the restart give up: wait longer before each retry
let backoffMs = 0
let retryAt = 0
function run() {
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)')
    if (r && r.log >= workerData.restartPages && r.log !== restartedAt && Date.now() >= retryAt) {
      asked = true
      parentPort.postMessage({ pause: true })
      return
    }
  } catch (err) {
    parentPort.postMessage({ error: String((err && err.stack) || err) })
  }
  if (!stopped) timer = setTimeout(run, workerData.intervalMs)
}
parentPort.on('message', (m) => {
  if (m === 'paused' && asked) {
    asked = false
    try {
      const [r] = db.pragma('wal_checkpoint(RESTART)')
      if (r && r.busy === 0) {
        restartedAt = r.log
        backoffMs = 0
      } else {
        backoffMs = Math.min(Math.max(1000, backoffMs * 2), 60000)
        retryAt = Date.now() + backoffMs
      }
    } catch (err) {
      parentPort.postMessage({ error: String((err && err.stack) || err) })
    }
    parentPort.postMessage({ resume: true })
    if (!stopped) timer = setTimeout(run, workerData.intervalMs)
    return
  }
  if (m !== 'stop') return
  stopped = true
  clearTimeout(timer)
  db.close()
  parentPort.close()
})
timer = setTimeout(run, workerData.intervalMs)
`

/** What the checkpointer needs of the writer: hold commits back while the log restarts. */
export interface Pausable {
  pause(): void
  resume(): void
}

/**
 * Checkpoints of the write-ahead log in a thread of their own. A checkpoint syncs the log and the
 * database file to disk: 7–12 ms each here, every ~170 ms at 1000 pushes/s — on the event loop
 * (SQLite's automatic checkpoint runs inside the commit that crosses the threshold) every
 * delivery waiting behind it was late by as much. The main connection turns automatic
 * checkpoints off while this runs, and back on should the thread die.
 */
export class Checkpointer {
  readonly #worker: Worker
  readonly #exited: Promise<void>
  #stopping = false
  #failed = false
  #pauseTimer: NodeJS.Timeout | undefined

  constructor(
    db: Db,
    file: string,
    writer: Pausable,
    onError: (err: unknown) => void,
    options: { restartPages?: number } = {},
  ) {
    this.#worker = new Worker(WORKER_CODE, {
      eval: true,
      workerData: {
        sqlite: createRequire(import.meta.url).resolve('better-sqlite3'),
        file,
        intervalMs: CHECKPOINT_INTERVAL_MS,
        restartPages: options.restartPages ?? CHECKPOINT_RESTART_PAGES,
      },
    })
    db.pragma('wal_autocheckpoint = 0')
    this.#worker.unref()
    const resume = () => {
      if (this.#pauseTimer) clearTimeout(this.#pauseTimer)
      this.#pauseTimer = undefined
      writer.resume()
    }
    const fallBack = (err: unknown) => {
      resume()
      if (this.#failed) return
      this.#failed = true
      if (db.open) db.pragma('wal_autocheckpoint = 1000')
      onError(err)
    }
    this.#worker.on('message', (m: { error?: string; pause?: true; resume?: true }) => {
      if (m.error) onError(new Error(`checkpoint failed: ${m.error}`))
      if (m.pause && !this.#stopping) {
        writer.pause()
        this.#pauseTimer = setTimeout(resume, RESTART_PAUSE_MAX_MS)
        this.#worker.postMessage('paused')
      }
      if (m.resume) resume()
    })
    this.#worker.on('error', fallBack)
    this.#exited = new Promise<void>((resolve) => {
      this.#worker.on('exit', (code) => {
        if (!this.#stopping) fallBack(new Error(`the checkpoint thread exited (code ${code})`))
        else resume()
        resolve()
      })
    })
  }

  /** Stops the thread and waits until its connection is closed. */
  async stop(): Promise<void> {
    if (!this.#stopping) {
      this.#stopping = true
      this.#worker.postMessage('stop')
    }
    await this.#exited
  }
}
