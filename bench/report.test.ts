import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  benchEnvironment,
  buildOf,
  describeBuild,
  renderMarkdown,
  type BenchReport,
} from './report.js'

const report = (results: BenchReport['results']): BenchReport => ({
  startedAt: '2026-12-06T00:00:00.000Z',
  machine: { cpus: 2, cpuModel: 'test', memoryGb: 1, node: 'v20' },
  options: {},
  results,
})

const broadcast = (...rates: number[]) => ({
  broadcastAll: {
    deliveriesPerSec: [...rates].sort((a, b) => a - b)[Math.floor(rates.length / 2)],
    rounds: rates.map((deliveriesPerSec) => ({ deliveriesPerSec })),
  },
})

const rowOf = (md: string, figure: string) =>
  md.split('\n').find((l) => l.startsWith(`| ${figure}`))

describe('renderMarkdown', () => {
  it("shows each target's lowest and highest round beside the median", () => {
    const md = renderMarkdown(
      report({ mqpush: broadcast(900, 1000, 1200), aedes: broadcast(2000, 2100, 2200) }),
    )
    expect(rowOf(md, 'broadcast to all: deliveries per second')).toContain(
      '| 1,000 /s (900–1,200) | 2,100 /s (2,000–2,200) |',
    )
  })

  it('says when a verdict against a baseline falls within the overlap of their rounds', () => {
    const overlapping = renderMarkdown(
      report({ mqpush: broadcast(900, 1000, 1200), aedes: broadcast(1100, 1150, 1300) }),
    )
    expect(rowOf(overlapping, 'broadcast to all: deliveries per second')).toContain(
      '≥ plain Aedes ❌ (rounds overlap) |',
    )
    const apart = renderMarkdown(
      report({ mqpush: broadcast(900, 1000, 1050), aedes: broadcast(1100, 1150, 1300) }),
    )
    const row = rowOf(apart, 'broadcast to all: deliveries per second')
    expect(row).toContain('≥ plain Aedes ❌ |')
    expect(row).not.toContain('overlap')
  })

  it('gives no range for a figure measured once', () => {
    const md = renderMarkdown(report({ mqpush: broadcast(1000) }))
    expect(rowOf(md, 'broadcast to all: deliveries per second')).toContain('| 1,000 /s |')
  })

  it("ranges the fixed rate's percentiles over its slices", () => {
    const md = renderMarkdown(
      report({
        mqpush: {
          unicast: {
            p998Ms: 30.7,
            slices: [{ p998Ms: 15.42 }, { p998Ms: 31.3 }, { p998Ms: 20 }],
          },
        },
      }),
    )
    expect(rowOf(md, 'unicast at fixed rate: p99.8')).toContain('| 30.7 ms (15.42–31.3) |')
  })

  it("reports the warm-up's tail in a row of its own, not in the budgeted p99.8, and split at its first second", () => {
    const md = renderMarkdown(
      report({
        mqpush: {
          unicast: {
            p998Ms: 8.5,
            warmUp: {
              seconds: 8,
              p998Ms: 41.25,
              firstSecondP998Ms: 350.5,
              afterFirstSecondP998Ms: 12.75,
            },
          },
        },
        aedes: {
          unicast: {
            p998Ms: 5,
            warmUp: { seconds: 8, p998Ms: 6, firstSecondP998Ms: 7, afterFirstSecondP998Ms: 5.5 },
          },
        },
      }),
    )
    const warm = rowOf(md, 'unicast at fixed rate: p99.8 of the unmeasured warm-up')
    expect(warm).toContain('| 41.25 ms | 6 ms |')
    expect(rowOf(md, 'unicast at fixed rate: p99.8 (')).toContain('| 8.5 ms | 5 ms |')
    expect(
      rowOf(md, "unicast at fixed rate: p99.8 of the warm-up's messages sent in its first second"),
    ).toContain('| 351 ms | 7 ms |')
    expect(
      rowOf(
        md,
        "unicast at fixed rate: p99.8 of the warm-up's messages sent after its first second",
      ),
    ).toContain('| 12.75 ms | 5.5 ms |')
  })

  it("reports the broker's memory after the push load beside the hold's", () => {
    const md = renderMarkdown(
      report({
        mqpush: { unicast: { rssAfterMb: 180.4 } },
        aedes: { unicast: { rssAfterMb: 90 } },
      }),
    )
    expect(rowOf(md, "unicast at fixed rate: the broker's resident memory after it")).toContain(
      '| 180 MB | 90 MB | — | 2.00× |',
    )
  })

  it("reports the sender's own lateness per target, its slices' range, and no ratio", () => {
    const md = renderMarkdown(
      report({
        mqpush: {
          unicast: {
            maxSendLateMs: 23.5,
            slices: [{ maxSendLateMs: 3.25 }, { maxSendLateMs: 23.5 }],
          },
        },
        aedes: { unicast: { maxSendLateMs: 4 } },
      }),
    )
    expect(rowOf(md, "unicast at fixed rate: the sender's latest send after its time")).toContain(
      '| 23.5 ms (3.25–23.5) | 4 ms | — | — |',
    )
  })

  it('compares a lower-is-better row against its baseline the same way (the drain)', () => {
    const drain = (...ms: number[]) => ({
      offline: {
        expected: 1,
        delivered: 1,
        drainMs: [...ms].sort((a, b) => a - b)[Math.floor(ms.length / 2)],
        rounds: ms.map((drainMs) => ({ drainMs })),
      },
    })
    const row = (m: number[], b: number[]) =>
      rowOf(
        renderMarkdown(report({ mqpush: drain(...m), mosquitto: drain(...b) })),
        'offline: time to drain every queue',
      )
    expect(row([900, 1000, 1100], [1200, 1300, 1400])).toContain('≤ Mosquitto ✅ |')
    expect(row([900, 1250, 1300], [1000, 1200, 1400])).toContain(
      '≤ Mosquitto ❌ (rounds overlap) |',
    )
  })

  it("says when the drain's verdict rests on Mosquitto's accept-queue drops", () => {
    const drain = (drainMs: number, listenOverflows: number | null) => ({
      offline: { expected: 1, delivered: 1, drainMs, listenOverflows, rounds: [{ drainMs }] },
    })
    const row = (m: number | null, b: number | null) =>
      rowOf(
        renderMarkdown(report({ mqpush: drain(1000, m), mosquitto: drain(1200, b) })),
        'offline: time to drain every queue',
      )
    expect(row(0, 1411)).toContain(
      '≤ Mosquitto ✅ (Mosquitto had 1,411 accept-queue drops, a second each) |',
    )
    expect(row(0, 0)).toContain('≤ Mosquitto ✅ |')
    expect(row(null, null)).toContain('≤ Mosquitto ✅ |') // not counted: nothing said
  })

  it('shows the accept-queue drops, without ratios, and a dash where they could not be read', () => {
    const md = renderMarkdown(
      report({
        mqpush: { hold: { listenOverflows: 0 }, offline: { listenOverflows: 0 } },
        mosquitto: { hold: { listenOverflows: 12 }, offline: { listenOverflows: 150 } },
        aedes: { hold: { listenOverflows: null } },
      }),
    )
    expect(rowOf(md, 'offline: accept-queue drops')).toMatch(
      /^\| offline: accept-queue drops while reconnecting \(a dropped SYN is sent again after 1 s\) \(↓ better\) \| 0 \| — \| 150 \| — \| — \|/,
    )
    expect(rowOf(md, 'hold: accept-queue drops')).toMatch(/\(↓ better\) \| 0 \| — \| 12 \|/)
  })

  it("adds the aedes-http floor's columns only when it ran, and says if it met the tail", () => {
    const tail = (p998Ms: number) => ({ unicast: { p998Ms } })
    const without = renderMarkdown(report({ mqpush: tail(30), aedes: tail(12) }))
    expect(without).not.toContain('node:http')
    expect(rowOf(without, 'unicast at fixed rate: p99.8')).toBe(
      '| unicast at fixed rate: p99.8 (↓ better) | 30 ms | 12 ms | — | 2.50× | — | ≤ 10 ms ❌ (Aedes ❌) |',
    )
    const md = renderMarkdown(
      report({
        mqpush: { ...tail(30), ...broadcast(900, 1000) },
        aedes: { ...tail(12), ...broadcast(1100, 1200) },
        'aedes-http': {
          unicast: { p998Ms: 7.5, slices: [{ p998Ms: 6 }, { p998Ms: 9.25 }] },
        },
      }),
    )
    expect(md).toContain('| Mosquitto | Aedes + node:http | mqpush ÷ Aedes |')
    expect(md).toContain('| mqpush ÷ Mosquitto | mqpush ÷ Aedes + node:http | budget |')
    expect(rowOf(md, 'unicast at fixed rate: p99.8')).toBe(
      '| unicast at fixed rate: p99.8 (↓ better) | 30 ms | 12 ms | — | 7.5 ms (6–9.25) | 2.50× | — | 4.00× | ≤ 10 ms ❌ (Aedes ❌, Aedes + node:http ✅) |',
    )
    // a row the floor does not run: a dash in its columns
    expect(rowOf(md, 'broadcast to all: deliveries per second')).toBe(
      '| broadcast to all: deliveries per second (↑ better) | 1,000 /s (900–1,000) | 1,200 /s (1,100–1,200) | — | — | 0.83× | — | — | ≥ plain Aedes ❌ |',
    )
    // every row has as many cells as the header
    const cells = (line: string) => line.split(' | ').length
    const [header, , ...rows] = md.split('\n').filter((l) => l.startsWith('|'))
    for (const row of rows) expect(cells(row)).toBe(cells(header!))
  })
})

describe("the machine's stolen time", () => {
  it('is given by scenario in the Markdown when it was read, and left out otherwise', () => {
    const r = report({})
    expect(renderMarkdown(r)).not.toContain('stole')
    r.machine.stolen = { hold: 0, 'fixed rate': 0.0345 }
    expect(renderMarkdown(r)).toContain(
      "CPU time the host stole from this machine during each scenario's measured turns (`/proc/stat`, all targets together): hold 0 %, fixed rate 3.5 %.",
    )
  })

  it("gives each target's own in a row per measured scenario, without ratios", () => {
    const md = renderMarkdown(
      report({
        mqpush: { stolen: { 'closed loop': 0.111, 'fixed rate': 0.02 } },
        'aedes-http': { stolen: { 'closed loop': 0.004 } },
        aedes: { stolen: { 'fixed rate': 0 } },
      }),
    )
    const row = (phase: string) =>
      md
        .split('\n')
        .find((l) =>
          l.startsWith(
            `| machine: CPU time the host stole during the target's measured turns, ${phase} `,
          ),
        )
    expect(row('closed loop')).toMatch(/\| 11\.1 % \| — \| — \| 0\.4 % \| — \| — \| — \|/)
    expect(row('fixed rate')).toMatch(/\| 2 % \| 0 % \| — \| — \|/)
    expect(row('offline')).toBeUndefined() // read for no target
  })
})

describe('the environment a run had', () => {
  it('keeps the MQPUSH_BENCH_* variables, by name, and nothing else', () => {
    expect(
      benchEnvironment({
        PATH: '/usr/bin',
        MQPUSH_BENCH_NODE_ARGS: '--cpu-prof',
        MQPUSH_BENCH_ENVELOPE: '1',
        MQPUSH_DATA_DIR: '/tmp/x',
      }),
    ).toEqual({ MQPUSH_BENCH_ENVELOPE: '1', MQPUSH_BENCH_NODE_ARGS: '--cpu-prof' })
  })

  it('is named in the Markdown when a run had any, and not otherwise', () => {
    const withEnv = renderMarkdown({ ...report({}), environment: { MQPUSH_BENCH_ENVELOPE: '1' } })
    expect(withEnv).toContain('Environment: {"MQPUSH_BENCH_ENVELOPE":"1"}')
    expect(renderMarkdown({ ...report({}), environment: {} })).not.toContain('Environment')
    expect(renderMarkdown(report({}))).not.toContain('Environment')
  })
})

describe('buildOf', () => {
  const git = (dir: string, ...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.org', ...args], {
      cwd: dir,
      stdio: 'ignore',
    })

  it('gives the commit checked out and whether tracked files changed, from any folder in it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mqpush-build-'))
    try {
      git(dir, 'init', '-q')
      mkdirSync(join(dir, 'sub'))
      writeFileSync(join(dir, 'sub', 'a.txt'), 'one')
      git(dir, 'add', '.')
      git(dir, 'commit', '-q', '-m', 'first')
      const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: dir, encoding: 'utf8' })
      expect(buildOf(join(dir, 'sub'))).toEqual({ commit: head.trim(), dirty: false })
      // an untracked file (a bench result, a build) does not count
      writeFileSync(join(dir, 'sub', 'new.txt'), 'x')
      expect(buildOf(dir)?.dirty).toBe(false)
      writeFileSync(join(dir, 'sub', 'a.txt'), 'two')
      expect(buildOf(dir)).toEqual({ commit: head.trim(), dirty: true })
      // and the Markdown says so
      const md = renderMarkdown(Object.assign(report({}), { build: buildOf(dir) }))
      expect(md).toContain(`Build: ${head.trim()} with uncommitted changes. Options:`)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('is undefined outside a checkout', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mqpush-build-'))
    try {
      expect(buildOf(dir)).toBeUndefined()
      expect(renderMarkdown(report({}))).not.toContain('Build:')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('describeBuild', () => {
  it('names the commit, and says when tracked files had changes', () => {
    expect(describeBuild({ commit: 'abc123', dirty: false })).toBe('abc123')
    expect(describeBuild({ commit: 'abc123', dirty: true })).toBe('abc123 with uncommitted changes')
  })
})
