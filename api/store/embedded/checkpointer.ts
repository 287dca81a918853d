import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'
import type { Db } from './database.js'

/** How often the checkpointer copies committed pages from the log into the database. */
export const CHECKPOINT_INTERVAL_MS = 100
/**
 * A log this long (pages) is checkpointed in RESTART mode, which waits for the writer and so
 * briefly holds up commits: under writes without a pause, passive checkpoints never catch up
 * with the end of the log, and SQLite starts the log again only once one has. 16384 pages of
 * 4 KiB: 64 MiB.
 */
export const CHECKPOINT_RESTART_PAGES = 16384

/*
 * The worker's code, plain CommonJS (a worker started from a string, so that the same code runs
 * from the TypeScript sources under test and from the build). Its own connection to the database
 * file; SQLite lets a checkpoint run beside a writer on another connection.
 */
const WORKER_CODE = `
const { parentPort, workerData } = require('node:worker_threads')
const Database = require(workerData.sqlite)
const db = new Database(workerData.file, { timeout: 10000 })
let timer
let stopped = false
function run() {
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)')
    if (r && r.log >= workerData.restartPages) db.pragma('wal_checkpoint(RESTART)')
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.stack || err) })
  }
  if (!stopped) timer = setTimeout(run, workerData.intervalMs)
}
parentPort.on('message', (m) => {
  if (m !== 'stop') return
  stopped = true
  clearTimeout(timer)
  db.close()
  parentPort.close()
})
timer = setTimeout(run, workerData.intervalMs)
`

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

  constructor(db: Db, file: string, onError: (err: unknown) => void) {
    db.pragma('wal_autocheckpoint = 0')
    this.#worker = new Worker(WORKER_CODE, {
      eval: true,
      workerData: {
        sqlite: createRequire(import.meta.url).resolve('better-sqlite3'),
        file,
        intervalMs: CHECKPOINT_INTERVAL_MS,
        restartPages: CHECKPOINT_RESTART_PAGES,
      },
    })
    this.#worker.unref()
    const fallBack = (err: unknown) => {
      if (db.open) db.pragma('wal_autocheckpoint = 1000')
      onError(err)
    }
    this.#worker.on('message', (m: { error?: string }) => {
      if (m.error) onError(new Error(`checkpoint failed: ${m.error}`))
    })
    this.#worker.on('error', fallBack)
    this.#exited = new Promise<void>((resolve) => {
      this.#worker.on('exit', (code) => {
        if (!this.#stopping) fallBack(new Error(`the checkpoint thread exited (code ${code})`))
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
