/**
 * The node flags the service runs with: `npm start`, the Docker image's command and the bench
 * all pass them (a test keeps `package.json` and `docker/Dockerfile` in step with this list).
 *
 * `--v8-pool-size=1`: V8's background work, mostly the garbage collector's parallel and
 * concurrent phases, on one helper thread instead of Node's default four, whatever the number
 * of cores. On a 2-core machine, four helper threads marking or scavenging at once took both
 * cores from the service's own thread and from whatever else runs there, and the latency tail
 * grew with it. Measured in alternating rounds against the same build without the flag
 * (docs/benchmarks.md): the p99.8 of a unicast at 2000/s 10.4 against 27.1 and 10.3 against
 * 24.3 ms; accepted pushes, broadcasts and the offline drain unchanged or better. On a machine
 * with many cores and a large heap, a larger pool may collect faster: see docs/operations.md.
 */
export const SERVICE_NODE_FLAGS: readonly string[] = ['--v8-pool-size=1']
