import { type ChildProcess, fork } from 'node:child_process'
import { collectGarbage } from './gc.js'
import type { DeviceCreds, WorkerReply, WorkerRequest, WorkerStats } from './protocol.js'

/**
 * Node flags for every process of the load generator: its workers (`WorkerPool`) and the bench's
 * own process, which sends the HTTP pushes (the npm scripts start it with them). V8 collects
 * garbage on helper threads besides the main one; on this 2-core machine two harness processes
 * collecting at once held both cores for tens of milliseconds while the broker under test waited
 * to run, and every target's latency tail grew with it. With its collections on its main thread
 * alone, a harness process takes at most one core, as its other work does. The measurements are
 * in docs/benchmarks-log.md ("The load generator's garbage collections"). The brokers under test
 * run as users run them: mqpush with its own flags (api/runtime-flags.ts), the baselines with
 * Node's defaults.
 */
export const HARNESS_NODE_FLAGS: readonly string[] = ['--single-threaded-gc']

/** The HARNESS_NODE_FLAGS this process (the bench's own) was started with. */
export function harnessFlagsOfThisProcess(): string[] {
  return HARNESS_NODE_FLAGS.filter((f) => process.execArgv.includes(f))
}

/** Says on stderr when this process (the bench's own) runs without HARNESS_NODE_FLAGS. */
export function warnWithoutHarnessFlags(): void {
  const present = harnessFlagsOfThisProcess()
  const missing = HARNESS_NODE_FLAGS.filter((f) => !present.includes(f))
  if (missing.length === 0) return
  console.error(
    `note: the bench runs without ${missing.join(' ')}: its garbage collections may take both ` +
      `cores from the target under test (\`npm run bench\` and \`npm run bench:ab\` pass it)`,
  )
}

/** The node flags in an environment variable (MQPUSH_BENCH_*_ARGS), split on spaces. */
export function nodeArgsFrom(variable: string): string[] {
  return (process.env[variable] ?? '').split(' ').filter(Boolean)
}

/**
 * The node flags each load worker starts with: HARNESS_NODE_FLAGS, then MQPUSH_BENCH_WORKER_ARGS
 * (e.g. --cpu-prof; a later flag wins: --no-single-threaded-gc undoes the harness's).
 */
export function workerNodeFlags(): string[] {
  return [...HARNESS_NODE_FLAGS, ...nodeArgsFrom('MQPUSH_BENCH_WORKER_ARGS')]
}

/** The highest second byte of a worker's net (127.255.255.255 is a broadcast address). */
const MAX_NET = 254

/**
 * The load generator: W worker processes, so that the per-process limit of open files does not
 * bound the number of devices. Every worker of every pool in this process gets a net of its own,
 * 127.{2, 3, …}.0.0/16, and each device it connects gets an address of its own there
 * (`sourceAddress`), the same every time: neither the ephemeral ports of one address nor the
 * closed connections waiting on them (TIME_WAIT) limit or slow the connects.
 */
export class WorkerPool {
  /** The next worker's net (127.{net}.0.0/16); 127.0.0.0/16 holds the services under test. */
  static #nextNet = 2
  readonly #workers: ChildProcess[]
  readonly #firstNet: number

  private constructor(workers: ChildProcess[], firstNet: number) {
    this.#workers = workers
    this.#firstNet = firstNet
  }

  static async start(count: number): Promise<WorkerPool> {
    const firstNet = WorkerPool.#nextNet
    if (firstNet + count - 1 > MAX_NET) {
      throw new Error(
        `${count} more load workers would need nets past 127.${MAX_NET}: ` +
          `at most ${MAX_NET - 1} workers in all, across the targets`,
      )
    }
    WorkerPool.#nextNet += count
    // built: dist/bench/load/worker.js; from the sources (tsx, the tests): worker.ts through tsx
    const fromSources = import.meta.url.endsWith('.ts')
    const script = new URL(fromSources ? './worker.ts' : './worker.js', import.meta.url)
    const execArgv = [...(fromSources ? ['--import', 'tsx'] : []), ...workerNodeFlags()]
    const workers = Array.from({ length: count }, () =>
      fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv }),
    )
    return new WorkerPool(workers, firstNet)
  }

  /** How many load workers the pool has. */
  get size(): number {
    return this.#workers.length
  }

  /** The workers' process ids. */
  get pids(): number[] {
    return this.#workers.map((w, i) => {
      if (w.pid === undefined) throw new Error(`load worker ${i} did not start`)
      return w.pid
    })
  }

  #ask(i: number, req: WorkerRequest): Promise<WorkerReply> {
    const w = this.#workers[i] as ChildProcess
    return new Promise((resolve, reject) => {
      const onExit = () => reject(new Error(`load worker ${i} exited`))
      w.once('exit', onExit)
      w.once('message', (m: WorkerReply) => {
        w.off('exit', onExit)
        resolve(m)
      })
      w.send(req)
    })
  }

  #all(make: (i: number) => WorkerRequest): Promise<WorkerReply[]> {
    return Promise.all(this.#workers.map((_, i) => this.#ask(i, make(i))))
  }

  /** Connects the devices, spread over the workers; resolves when all have their CONNACK. */
  async connect(
    host: string,
    port: number,
    devices: DeviceCreds[],
    o: { clean: boolean; subscribe?: string[]; concurrency?: number },
  ): Promise<{ ok: number; failed: number; ms: number; firstError?: string }> {
    const n = this.#workers.length
    const started = performance.now()
    const replies = await this.#all((i) => ({
      type: 'connect',
      host,
      port,
      sourceNet: this.#firstNet + i,
      devices: devices.filter((_, k) => k % n === i),
      clean: o.clean,
      subscribe: o.subscribe ?? [],
      concurrency: o.concurrency ?? 64,
    }))
    const ms = performance.now() - started
    let ok = 0
    let failed = 0
    let firstError: string | undefined
    for (const r of replies) {
      if (r.type !== 'connected') continue
      ok += r.ok
      failed += r.failed
      firstError ??= r.firstError
    }
    return { ok, failed, ms, ...(firstError && { firstError }) }
  }

  /**
   * Clears the counters. This process collects its garbage first, and so do the workers unless
   * `collectInWorkers` is false.
   *
   * The fixed rate's measured slices pass false. The workers' forced collections left their young
   * generations empty at the same moment, and with the same message rate they filled together:
   * about a second into the phase the measured target's workers (four in `npm run bench`)
   * scavenged at once, 7–16 ms each on their main threads under `--single-threaded-gc`; both
   * cores were theirs, and every target's deliveries of that moment were late by up to ~50 ms,
   * the bare brokers' too (fifteenth session, docs/benchmarks-log.md). The fixed rate's warm-up
   * collects (twenty-fourth session): what the workers' devices are made of, created while they
   * connected, is not garbage but lives as long as they do, and left in the young generation it
   * was copied by the first scavenge at the rate and promoted by the second, ~13 s later, inside
   * the measured slices: 2.2–2.65 MB, 26–55 ms of each worker's CPU and 44–100 ms of wall time,
   * the four workers at once. Collected before the warm-up, it is old already, and the scavenges
   * the emptied young generations bring come in the warm-up's eight seconds.
   */
  async reset({ collectInWorkers = true }: { collectInWorkers?: boolean } = {}): Promise<void> {
    await this.#all(() => ({ type: 'reset', collect: collectInWorkers }))
    collectGarbage()
  }

  async stats(): Promise<WorkerStats> {
    const all = (await this.#all(() => ({ type: 'stats' }))).flatMap((r) =>
      r.type === 'stats' ? [r.stats] : [],
    )
    const nonzero = (xs: number[]) => xs.filter((x) => x > 0)
    return {
      received: all.reduce((a, s) => a + s.received, 0),
      distinct: all.reduce((a, s) => a + s.distinct, 0),
      duplicates: all.reduce((a, s) => a + s.duplicates, 0),
      firstAt: Math.min(...nonzero(all.map((s) => s.firstAt)), Infinity),
      lastAt: Math.max(0, ...all.map((s) => s.lastAt)),
      latencies: all.flatMap((s) => s.latencies),
      sentAts: all.flatMap((s) => s.sentAts),
      expiredReceived: all.reduce((a, s) => a + s.expiredReceived, 0),
      fullCollections: all.reduce((a, s) => a + s.fullCollections, 0),
    }
  }

  /** Polls until `predicate(stats)` holds or `timeoutMs` passes; returns the last stats. */
  async waitFor(predicate: (s: WorkerStats) => boolean, timeoutMs: number): Promise<WorkerStats> {
    const until = Date.now() + timeoutMs
    for (;;) {
      const s = await this.stats()
      if (predicate(s) || Date.now() > until) return s
      await new Promise((r) => setTimeout(r, 50))
    }
  }

  async disconnect(): Promise<void> {
    await this.#all(() => ({ type: 'disconnect' }))
  }

  close(): void {
    for (const w of this.#workers) w.kill()
  }
}
