/**
 * The node flags the service runs with: `npm start`, the Docker image's command and the bench
 * all pass them (a test keeps `package.json` and `docker/Dockerfile` in step with this list).
 *
 * `--v8-pool-size=1`: Node gives V8 a pool of four helper threads whatever the number of cores,
 * and V8's collector can run its parallel and concurrent phases on all of them at once (its
 * background compilation uses them too; libuv's threadpool, `UV_THREADPOOL_SIZE`, is another).
 * On a 2-core machine such bursts can take both cores from the service's own thread and from
 * whatever else runs beside it, and the latency of pushes grows with them. One helper thread
 * keeps the collector's work beside the main thread without taking every core. Measured in
 * docs/benchmarks-log.md ("The service's V8 thread pool"); when to change it: docs/operations.md.
 *
 * `--heap-growing-percent=100`: after each full collection V8 lets the old generation grow to
 * twice what survived before the next one. Left to itself, V8 grew it by 10–20 % here (and by
 * 10 % after the collections it makes when a process goes idle), so at 2000 pushes a second a
 * full collection came every 5–10 s, each 76–182 ms of marking beside the service's work, and
 * the bench's slices it fell in had a p99.8 of 8–58 ms. With the flag they come several times
 * less often, for a heap up to twice the live data between them (in every mode of V8's, idle
 * included). Measured in docs/benchmarks-log.md ("The fixed rate's first seconds, and the full
 * collections"); its memory price and how to leave it out: docs/operations.md.
 */
export const SERVICE_NODE_FLAGS: readonly string[] = [
  '--v8-pool-size=1',
  '--heap-growing-percent=100',
]
