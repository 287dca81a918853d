import { describe, expect, it } from 'vitest'
import type { WorkerPool } from './load/pool.js'
import { emptyWorkerStats, stampClock } from './load/protocol.js'
import type { Target } from './targets/target.js'
import {
  alternate,
  broadcastSummary,
  CONNECTS_IN_FLIGHT,
  hold,
  offline,
  offlineSummary,
  sliceOf,
  unicastSlice,
  unicastSummary,
  unicastWarmUp,
  warmUpTail,
  type BroadcastRound,
  type OfflineResult,
  type UnicastSlice,
} from './scenarios.js'

// What `npm run bench` reports from rounds and slices measured in turns with other targets.

describe('alternate', () => {
  it('gives the targets in order on even turns and reversed on odd ones', () => {
    const list = ['mqpush', 'aedes', 'mosquitto']
    expect([0, 1, 2, 3].map((k) => alternate(list, k).join(' '))).toEqual([
      'mqpush aedes mosquitto',
      'mosquitto aedes mqpush',
      'mqpush aedes mosquitto',
      'mosquitto aedes mqpush',
    ])
    expect(list).toEqual(['mqpush', 'aedes', 'mosquitto']) // not reversed in place
  })
})

describe('unicastSummary', () => {
  const slice = (
    accepted: number,
    delivered: number,
    latencies: number[],
    cpuMs: number,
    maxSendLateMs = 0,
  ) => ({ seconds: 2, accepted, delivered, latencies, cpuMs, maxSendLateMs }) satisfies UnicastSlice

  it('merges the slices: percentiles over every latency, counts and CPU added', () => {
    // 1000 latencies: 1..500 ms in one slice, 501..1000 in the other
    const a = Array.from({ length: 500 }, (_, i) => i + 1)
    const b = Array.from({ length: 500 }, (_, i) => 501 + i)
    const r = unicastSummary(250, [slice(500, 500, b, 40, 3.5), slice(502, 500, a, 60, 1.25)])
    expect(r).toMatchObject({
      ratePerSec: 250,
      seconds: 4,
      accepted: 1002,
      delivered: 1000,
      lost: 2,
      p50Ms: 501,
      p99Ms: 991,
      p998Ms: 999,
      maxMs: 1000,
      // 100 ms of CPU for 1002 messages
      cpuUsPerMessageAtRate: 100,
      // the sender's lateness: the latest of any slice
      maxSendLateMs: 3.5,
    })
  })

  it("keeps each slice's own figures, and none for a single slice", () => {
    const r = unicastSummary(250, [slice(4, 4, [1, 2, 3, 4], 1, 7), slice(3, 2, [10, 20], 1, 2)])
    expect(r.slices?.map((s) => [s.accepted, s.lost, s.maxMs, s.maxSendLateMs])).toEqual([
      [4, 0, 4, 7],
      [3, 1, 20, 2],
    ])
    expect(unicastSummary(250, [slice(2, 2, [1, 2], 1)]).slices).toBeUndefined()
  })
})

describe('broadcastSummary', () => {
  const round = (received: number, lastMs: number, cpu: number): BroadcastRound => ({
    received,
    lastMs,
    deliveriesPerSec: Math.round((received / lastMs) * 1000),
    cpuUsPerDelivery: cpu,
    userCpuUsPerDelivery: cpu / 2,
  })

  it('gives the medians of the rounds and the fewest deliveries a round counted', () => {
    const r = broadcastSummary(100, [round(100, 50, 40), round(99, 200, 90), round(100, 100, 50)])
    expect(r).toMatchObject({
      devices: 100,
      received: 99,
      lastMs: 100,
      deliveriesPerSec: 1000,
      cpuUsPerDelivery: 50,
      userCpuUsPerDelivery: 25,
    })
    expect(r.rounds).toHaveLength(3)
  })
})

describe('offlineSummary', () => {
  const round = (o: Partial<OfflineResult>): OfflineResult => ({
    devices: 10,
    perDevice: 2,
    expected: 20,
    delivered: 20,
    duplicates: 0,
    drainMs: 100,
    cpuUsPerDelivery: 50,
    expiredDelivered: 0,
    listenOverflows: 0,
    connectsInFlight: 96,
    ...o,
  })

  it('gives the medians of the times and the sums of the counts, so a loss in any round shows', () => {
    const r = offlineSummary([
      round({ drainMs: 300, cpuUsPerDelivery: 70, listenOverflows: 40 }),
      round({ drainMs: 100, delivered: 19, duplicates: 1 }),
      round({ drainMs: 200, cpuUsPerDelivery: 60, expiredDelivered: 1, listenOverflows: 2 }),
    ])
    expect(r).toMatchObject({
      devices: 10,
      perDevice: 2,
      expected: 60,
      delivered: 59,
      duplicates: 1,
      drainMs: 200,
      cpuUsPerDelivery: 60,
      expiredDelivered: 1,
      listenOverflows: 42,
    })
    expect(r.rounds).toHaveLength(3)
  })

  it('has no expired count when a target cannot tell (a bare broker)', () => {
    expect(offlineSummary([round({ expiredDelivered: null })]).expiredDelivered).toBeNull()
  })

  it('has no count of accept-queue drops when a round could not read it', () => {
    const r = offlineSummary([round({ listenOverflows: 3 }), round({ listenOverflows: null })])
    expect(r.listenOverflows).toBeNull()
  })

  it('refuses no rounds', () => {
    expect(() => offlineSummary([])).toThrow(/no offline rounds/)
  })
})

describe('the offline and hold scenarios: connects in flight', () => {
  // a scripted pool and bare-broker target: what the round asks of them
  const scripted = (size: number) => {
    const connects: Array<{ clean: boolean; concurrency?: number }> = []
    const pool = {
      size,
      connect: async (_h: string, _p: number, _d: unknown, o: { clean: boolean }) => {
        connects.push(o)
        return { ok: 2, failed: 0, ms: 1 }
      },
      disconnect: async () => {},
      reset: async () => {},
      waitFor: async () => ({ ...emptyWorkerStats(), distinct: 6 }),
    }
    const target = {
      name: 'aedes',
      host: '127.0.0.1',
      port: 1,
      pid: process.pid,
      subscriptions: ['bench/d/{id}'],
      makeDevices: async () => [{ clientId: 'd0' }, { clientId: 'd1' }],
      unicast: async () => {},
    } as unknown as Target
    return { connects, pool, target }
  }

  it("brings the devices back at most CONNECTS_IN_FLIGHT at a time over all workers, below Mosquitto's backlog", async () => {
    expect(CONNECTS_IN_FLIGHT).toBeLessThan(100)
    const { connects, pool, target } = scripted(4)
    const r = await offline(pool, target, 2, 3)
    // the sessions made, the measured reconnect, the sessions ended (a bare broker)
    expect(connects.map((c) => c.clean)).toEqual([false, false, true])
    // every connect of the round, the unmeasured ones too, keeps below the backlog
    expect(connects.map((c) => c.concurrency)).toEqual(Array(3).fill(CONNECTS_IN_FLIGHT / 4))
    expect(r).toMatchObject({
      expected: 6,
      delivered: 6,
      connectsInFlight: CONNECTS_IN_FLIGHT,
    })
  })

  it('takes another bound, spread evenly (rounded down, and recorded so), and refuses one below a connect a worker', async () => {
    const two = scripted(2)
    expect(await offline(two.pool, two.target, 2, 3, 128)).toMatchObject({ connectsInFlight: 128 })
    expect(two.connects[1]!.concurrency).toBe(64)
    // 96 over 5 workers: 19 each, 95 in all (not 20: 100 would reach Mosquitto's backlog)
    const five = scripted(5)
    expect(await offline(five.pool, five.target, 2, 3)).toMatchObject({ connectsInFlight: 95 })
    expect(five.connects[1]!.concurrency).toBe(19)
    const many = scripted(8)
    await expect(offline(many.pool, many.target, 2, 3, 7)).rejects.toThrow(/over 8 load workers/)
    expect(many.connects).toEqual([])
  })

  it('connects the hold scenario’s devices under the same bound, and refuses one below a connect a worker', async () => {
    const five = scripted(5)
    const { result } = await hold(five.pool, five.target, 2)
    // the warm-up devices (none of 2) and the measured ones: 19 a worker, 95 recorded
    expect(five.connects.map((c) => c.concurrency)).toEqual([19, 19])
    expect(result.connectsInFlight).toBe(95)
    const many = scripted(8)
    await expect(hold(many.pool, many.target, 2, 7)).rejects.toThrow(/over 8 load workers/)
    expect(many.connects).toEqual([])
  }, 10_000)
})

describe('sliceOf', () => {
  it('cuts the fixed rate into slices that follow each other and add up to rate × seconds', () => {
    for (const [rate, seconds, slices] of [
      [2000, 10, 5],
      [1, 5, 2],
      [3, 7, 3],
      [100, 2, 1],
    ] as const) {
      let next = 0
      for (let i = 0; i < slices; i++) {
        const { first, count } = sliceOf(rate, seconds, slices, i)
        expect(first).toBe(next)
        next = first + count
      }
      expect(next).toBe(Math.round(rate * seconds))
    }
  })
})

describe('the fixed rate', () => {
  // Its slices reset the load workers without a forced collection: collected together, the
  // measured target's workers then scavenged together a second into the phase and every
  // target's deliveries of that moment were late; the warm-up collects, so that what the devices
  // are made of is old before the slices (see `WorkerPool.reset`).
  it('resets the load workers collecting before the warm-up, and without collecting before every slice; the warm-up reports its tail', async () => {
    const resets: unknown[] = []
    let sent = 0
    const stats = emptyWorkerStats()
    // the warm-up's latencies: 1..1000 ms, so its p99.8 is the 999th
    const latencies = Array.from({ length: 1000 }, (_, i) => 1000 - i)
    const pool = {
      reset: async (options?: unknown) => void resets.push(options),
      waitFor: async () => ({ ...stats, latencies, distinct: sent }),
    } as unknown as WorkerPool
    const stamps: number[] = []
    const target = {
      pid: process.pid,
      sendOne: async (_device: unknown, payload: string) => {
        stamps.push(Number(/t=([\d.]+)/.exec(payload)?.[1]))
        sent++
        return true
      },
    } as unknown as Target
    const devices = [{ clientId: 'd0' }, { clientId: 'd1' }]
    // (this pool gives no send times: the tail is not split)
    expect(await unicastWarmUp(pool, target, devices, 1000, 2)).toEqual({ seconds: 2, p998Ms: 999 })
    await unicastSlice(pool, target, devices, 1000, 5, 0)
    expect(resets).toEqual([{ collectInWorkers: true }, { collectInWorkers: false }])
    // bench:ab's warm-up before each round does not collect
    await unicastWarmUp(pool, target, devices, 1000, 1, { collect: false })
    expect(resets.at(-1)).toEqual({ collectInWorkers: false })
    expect(sent).toBe(3005)
    // stamped with the clock the load workers read latencies off (not a wall clock)
    expect(Math.abs((stamps.at(-1) as number) - stampClock())).toBeLessThan(1000)
  })

  it("reports how late the sender sent: a stall shows in the slice's figures, not in its latencies", async () => {
    let sent = 0
    const pool = {
      reset: async () => {},
      waitFor: async () => ({ ...emptyWorkerStats(), distinct: sent }),
    } as unknown as WorkerPool
    const target = {
      pid: process.pid,
      sendOne: async () => {
        // the sender's process stalls 60 ms after its first message (a collection, say)
        if (sent++ === 0) {
          const until = performance.now() + 60
          while (performance.now() < until);
        }
        return true
      },
    } as unknown as Target
    // 20 messages at 200/s: one every 5 ms; those due during the stall leave late
    const slice = await unicastSlice(pool, target, [{ clientId: 'd0' }], 200, 20, 0)
    expect(slice.maxSendLateMs).toBeGreaterThanOrEqual(50)
    expect(slice.accepted).toBe(20)
    const calm = await unicastSlice(
      pool,
      { ...target, sendOne: async () => true },
      [{ clientId: 'd0' }],
      200,
      20,
      0,
    )
    expect(calm.maxSendLateMs).toBeLessThan(50)
  })

  it("splits the warm-up's tail at its first second by when each message was sent", async () => {
    const stamps: number[] = []
    const target = {
      pid: process.pid,
      sendOne: async (_device: unknown, payload: string) => {
        stamps.push(Number(/t=([\d.]+)/.exec(payload)?.[1]))
        return true
      },
    } as unknown as Target
    // 2000 messages at 1000/s: those sent in the first 0.9 s came back 500 ms late (a target
    // behind at the start), the rest 5 ms (those of 0.9–1 s too, whichever side of the second a
    // late sender puts them); the workers' order is not the send order
    const pool = {
      reset: async () => {},
      waitFor: async () => ({
        ...emptyWorkerStats(),
        distinct: stamps.length,
        latencies: stamps.map((t) => (t < (stamps[0] as number) + 900 ? 500 : 5)).reverse(),
        sentAts: [...stamps].reverse(),
      }),
    } as unknown as WorkerPool
    expect(await unicastWarmUp(pool, target, [{ clientId: 'd0' }], 1000, 2)).toEqual({
      seconds: 2,
      p998Ms: 500,
      firstSecondP998Ms: 500,
      afterFirstSecondP998Ms: 5,
    })
  })

  it('splits at exactly one second after the start, and not at all without a send time for each latency', () => {
    const startedAt = 50_000
    expect(
      warmUpTail(
        [7, 300, 8, 400],
        [startedAt + 2500, startedAt, startedAt + 1000, startedAt + 999.9],
        startedAt,
      ),
    ).toEqual({ p998Ms: 400, firstSecondP998Ms: 400, afterFirstSecondP998Ms: 8 })
    // a part none of whose messages came back has no figure
    expect(warmUpTail([3], [startedAt + 1500], startedAt)).toEqual({
      p998Ms: 3,
      afterFirstSecondP998Ms: 3,
    })
    expect(warmUpTail([3, 4], [startedAt], startedAt)).toEqual({ p998Ms: 4 })
    expect(warmUpTail([], [], startedAt)).toEqual({})
  })

  it('reports no tail for a warm-up none of whose messages came back', async () => {
    const pool = {
      reset: async () => {},
      waitFor: async () => ({ ...emptyWorkerStats(), distinct: 0 }),
    } as unknown as WorkerPool
    const target = { pid: process.pid, sendOne: async () => true } as unknown as Target
    expect(await unicastWarmUp(pool, target, [{ clientId: 'd0' }], 1000, 1)).toEqual({
      seconds: 1,
    })
  })
})
