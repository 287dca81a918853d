import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { dirname, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { WorkerPool } from './load/pool.js'
import { renderMarkdown, type BenchReport } from './report.js'
import * as scenario from './scenarios.js'
import { ensureMosquitto, startMosquitto, startPlainAedes } from './targets/baselines.js'
import { startMqpush } from './targets/mqpush.js'
import type { Target } from './targets/target.js'

/**
 * `npm run bench`: drives mqpush (full pipeline, embedded store) and, as baselines measured in
 * the same run with the same load generator, plain Aedes (in-memory) and Mosquitto.
 * Every figure of mqpush is also given as a ratio to the baselines, which holds on a noisy
 * machine. Nothing here asserts a speed.
 */
const { values: a } = parseArgs({
  options: {
    scenarios: { type: 'string', default: 'hold,broadcast,unicast,offline,restart' },
    targets: { type: 'string', default: 'mqpush,aedes,mosquitto' },
    devices: { type: 'string', default: '10000' },
    rate: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '64' },
    'offline-devices': { type: 'string', default: '1000' },
    'offline-messages': { type: 'string', default: '20' },
    'restart-messages': { type: 'string', default: '100000' },
    'broadcast-rounds': { type: 'string', default: '5' },
    workers: { type: 'string', default: '4' },
    out: { type: 'string', default: 'bench-results/latest.json' },
    help: { type: 'boolean', default: false },
  },
})

if (a.help) {
  console.log(`npm run bench -- [options]
  --scenarios hold,broadcast,unicast,offline,restart
  --targets mqpush,aedes,mosquitto     baselines run the scenarios a bare broker can run
  --devices N            devices held online (hold, broadcast, unicast)      [10000]
  --rate R               unicast push requests per second                   [2000]
  --seconds S            length of each unicast phase                       [10]
  --concurrency C        requests in flight for the highest unicast rate    [64]
  --offline-devices K    offline scenario devices                           [1000]
  --offline-messages Q   messages queued per offline device                 [20]
  --restart-messages M   messages queued before kill -9                     [100000]
  --broadcast-rounds B   measured broadcasts of each kind; figures are medians [5]
  --workers W            load-generator processes (one loopback address each) [4]
  --out FILE             JSON results                                       [bench-results/latest.json]`)
  process.exit(0)
}

const int = (name: string, v: string | undefined) => {
  const n = Number(v)
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer`)
  return n
}
const opts = {
  scenarios: new Set(a.scenarios.split(',')),
  targets: a.targets.split(','),
  devices: int('devices', a.devices),
  rate: int('rate', a.rate),
  seconds: int('seconds', a.seconds),
  concurrency: int('concurrency', a.concurrency),
  offlineDevices: int('offline-devices', a['offline-devices']),
  offlineMessages: int('offline-messages', a['offline-messages']),
  restartMessages: int('restart-messages', a['restart-messages']),
  broadcastRounds: int('broadcast-rounds', a['broadcast-rounds']),
  workers: int('workers', a.workers),
  out: a.out,
}
if (opts.devices > 18_000) {
  throw new Error('--devices above 18000 exceeds the 20000 open files a process may hold here')
}

const report: BenchReport = {
  startedAt: new Date().toISOString(),
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
  },
  options: { ...opts, scenarios: [...opts.scenarios] },
  results: {},
}

const pool = await WorkerPool.start(opts.workers)
let current: Target | undefined
// stopped by a signal (Ctrl-C, timeout): take the service and the load workers down too
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping the target and the load workers`)
    const stopped = current?.stop().catch(() => {}) ?? Promise.resolve()
    void stopped.finally(() => {
      pool.close()
      process.exit(130)
    })
  })
}
try {
  for (const name of opts.targets) {
    if (name === 'mosquitto' && !ensureMosquitto()) continue
    const isMqpush = name === 'mqpush'
    const wants = (s: string) =>
      opts.scenarios.has(s) && (isMqpush || ['hold', 'broadcast', 'unicast', 'offline'].includes(s))
    if (!['hold', 'broadcast', 'unicast', 'offline', 'restart'].some(wants)) continue
    console.error(`\n== ${name}`)
    const target: Target =
      name === 'mqpush'
        ? await startMqpush()
        : name === 'aedes'
          ? await startPlainAedes()
          : name === 'mosquitto'
            ? await startMosquitto()
            : (() => {
                throw new Error(`unknown target ${name}`)
              })()
    current = target
    const r: Record<string, unknown> = {}
    report.results[name] = r
    try {
      if (wants('hold') || wants('broadcast') || wants('unicast')) {
        console.error(`  hold: ${opts.devices} devices`)
        const h = await scenario.hold(pool, target, opts.devices)
        r.hold = h.result
        if (wants('broadcast')) {
          console.error('  broadcast: all')
          r.broadcastAll = await scenario.broadcast(
            pool,
            target,
            h.devices,
            'all',
            opts.broadcastRounds,
          )
          console.error('  broadcast: topic')
          r.broadcastTopic = await scenario.broadcast(
            pool,
            target,
            h.devices,
            'topic',
            opts.broadcastRounds,
          )
        }
        if (wants('unicast')) {
          const then = isMqpush ? ', then closed loop' : ''
          console.error(`  unicast: ${opts.rate}/s for ${opts.seconds} s${then}`)
          r.unicast = await scenario.unicast(pool, target, h.devices, opts)
        }
        await pool.disconnect()
      }
      if (wants('offline')) {
        console.error(`  offline: ${opts.offlineDevices} devices × ${opts.offlineMessages}`)
        r.offline = await scenario.offline(pool, target, opts.offlineDevices, opts.offlineMessages)
      }
      if (wants('restart') && isMqpush) {
        console.error(`  restart: ${opts.restartMessages} messages queued, kill -9`)
        r.restart = await scenario.restart(pool, target as never, opts.restartMessages)
      }
    } finally {
      await pool.disconnect().catch(() => {})
      current = undefined
      await target.stop()
    }
  }
} finally {
  pool.close()
}

report.finishedAt = new Date().toISOString()
mkdirSync(dirname(resolve(opts.out)), { recursive: true })
writeFileSync(opts.out, JSON.stringify(report, null, 2))
console.log(renderMarkdown(report))
console.error(`\nresults: ${opts.out}`)
