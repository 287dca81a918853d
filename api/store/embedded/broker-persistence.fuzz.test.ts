import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { EventEmitter } from 'node:events'
import type { Readable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { encodeEnvelope } from '../../../sdk/protocol/envelope.js'
import type { MessageId } from '../../../sdk/protocol/ids.js'
import { EmbeddedBrokerPersistence, FANOUT_MIN_CLIENTS } from './broker-persistence.js'
import { type Db, openDatabase } from './database.js'
import { SqliteWriter } from './writer.js'

const dirs: string[] = []
const unexpected: unknown[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function rng(seed: number) {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const list = async (stream: Readable) => {
  const out: any[] = []
  for await (const x of stream) out.push(x)
  return out
}

const SOON = 1_800_000_000_000
const LATE = 1_900_000_000_000
const payloadOf = (counter: number, expiring: boolean) =>
  Buffer.from(
    encodeEnvelope({
      id: `m${String(counter).padStart(19, '0')}` as MessageId,
      expiresAt: expiring ? SOON : LATE,
      kind: 'passThrough',
      sentAt: 1_700_000_000_000,
      target: { type: 'all' },
      payload: 'p',
    }),
  )
const counterOf = (payload: Buffer) => Number(payload.subarray(8, 27).toString())

/** The packet aedes hands the persistence when it sends the model entry with this id. */
const sentAs = (e: ME, messageId: number) => ({
  cmd: 'publish',
  topic: 't',
  qos: 1,
  brokerId: e.brokerId,
  brokerCounter: e.counter,
  payload: Buffer.from('x'),
  messageId,
})

interface ME {
  origin: number // enqueue counter
  kind: 'publish' | 'pubrel' | 'other'
  counter: number // brokerCounter of current packet
  brokerId: string
  expiring: boolean
  messageId: number | undefined
  /** Enqueued with enqueueRecoverable and not yet through a full flush: a crash may lose it. */
  recoverable: boolean
}

async function openAt(dir: string, state: { crashed: boolean }) {
  const db = openDatabase({ dataDir: dir })
  const writer = new SqliteWriter(db, (e: any) => {
    if (state.crashed) return
    if (String(e?.message).includes('broker_retained.topic')) return
    unexpected.push(e)
  })
  const clients: Record<string, unknown> = {}
  const aedes = Object.assign(new EventEmitter(), { id: 'broker-1', clients })
  const p = new EmbeddedBrokerPersistence(db, writer)
  await p.setup(aedes)
  return { db, writer, p, aedes, clients }
}

const count = (db: Db, table: string) =>
  (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n

/**
 * After a full flush the database holds exactly what memory queues: no row for an entry that
 * left (a "ghost" the restore's clean-up would hide when its packet is gone too), no packet
 * nobody refers to, no row without its packet.
 */
function dbMatchesMemory(db: Db, p: EmbeddedBrokerPersistence, ctx: string) {
  const scalar = (sql: string) => (db.prepare(sql).get() as { n: number }).n
  expect(
    scalar(`SELECT count(*) AS n FROM broker_outgoing o WHERE o.cmd IS NULL AND o.meta IS NULL
      AND NOT EXISTS (SELECT 1 FROM broker_packets k WHERE k.id = o.packet_id)`),
    `rows without their packet: ${ctx}`,
  ).toBe(0)
  expect(
    scalar(`SELECT count(*) AS n FROM broker_outgoing o WHERE o.meta IS NOT NULL
      AND (o.cmd IS NOT NULL OR EXISTS (SELECT 1 FROM broker_packets k WHERE k.id = o.packet_id))`),
    `rows holding a packet they do not queue, or one stored twice: ${ctx}`,
  ).toBe(0)
  expect(
    scalar(`SELECT count(*) AS n FROM broker_packets k
      WHERE NOT EXISTS (SELECT 1 FROM broker_outgoing o WHERE o.packet_id = k.id AND o.cmd IS NULL)
        AND NOT EXISTS (SELECT 1 FROM broker_fanouts f WHERE f.packet_id = k.id)`),
    `packets nobody refers to: ${ctx}`,
  ).toBe(0)
  let fanoutEntries = 0
  const fanouts = db.prepare('SELECT packet_id, clients FROM broker_fanouts').all() as Array<{
    packet_id: number
    clients: string
  }>
  for (const f of fanouts) {
    const n = (JSON.parse(f.clients) as string[]).length
    let done = 0
    for (const d of db
      .prepare('SELECT bits FROM broker_fanout_done WHERE packet_id = ?')
      .all(f.packet_id) as Array<{ bits: Buffer }>) {
      for (const byte of d.bits) for (let b = byte; b; b &= b - 1) done++
    }
    fanoutEntries += n - done
  }
  expect(count(db, 'broker_outgoing') + fanoutEntries, `rows against memory: ${ctx}`).toBe(
    p.queuedCount(),
  )
}

async function runFuzz(seed: number, steps: number, opts: { dup: boolean; concurrent?: boolean }) {
  const r = rng(seed)
  const pick = <T>(a: T[]): T => a[Math.floor(r() * a.length)] as T
  const dir = mkdtempSync(join(tmpdir(), 'review-fuzz-'))
  dirs.push(dir)
  let state = { crashed: false }
  let s = await openAt(dir, state)
  const NC = 70
  const clientIds = Array.from({ length: NC }, (_, i) => `c${i}`)
  const model = new Map<string, ME[]>(clientIds.map((c) => [c, []]))
  const enqueuedFor = new Map<string, Set<number>>(clientIds.map((c) => [c, new Set()]))
  let counter = 1
  let otherCounter = 1_000_000
  const nextMid = new Map<string, number>()
  const log: string[] = []
  const pending: Promise<void>[] = []
  const pendingSet = new Set<number>()

  const snapshot = async () => {
    const out = new Map<string, any[]>()
    for (const c of clientIds) out.set(c, await list(s.p.outgoingStream({ id: c })))
    return out
  }
  const describeRestored = (c: string, x: any, pubrelOrigins: Map<string, number>) => {
    if (x.cmd === 'pubrel')
      return { origin: pubrelOrigins.get(`${c}:${x.messageId}`), kind: 'pubrel' }
    if (x.brokerId === 'broker-2')
      return { origin: otherOrigin.get(x.brokerCounter), kind: 'other' }
    return { origin: counterOf(x.payload), kind: 'publish' }
  }
  const otherOrigin = new Map<number, number>()
  const pubrelHistory = new Map<string, number>()

  const restart = async (settled: boolean) => {
    await Promise.all(pending.splice(0))
    log.push(`restart settled=${settled}`)
    if (settled) s.writer.flush() // the deferred lane too
    // kill -9: whatever is committed stays
    state.crashed = true
    s.db.close()
    state = { crashed: false }
    s = await openAt(dir, state)
    const restored = await snapshot()
    for (const c of clientIds) {
      const pubrelOrigins = new Map<string, number>(pubrelHistory)
      for (const e of model.get(c) as ME[]) {
        if (e.kind === 'pubrel') pubrelOrigins.set(`${c}:${e.messageId}`, e.origin)
      }
      const got = (restored.get(c) as any[]).map((x) => describeRestored(c, x, pubrelOrigins))
      const want = (model.get(c) as ME[]).map((e) => ({
        origin: e.origin,
        kind: e.kind,
        recoverable: e.recoverable,
      }))
      const ctx = `seed ${seed} client ${c}\n${log.slice(-30).join('\n')}`
      if (settled) {
        expect(got, ctx).toEqual(want.map(({ origin, kind }) => ({ origin, kind })))
      } else {
        // nothing lost: every entry still queued in memory comes back, in order (a recoverable
        // one only once a full flush committed it: before, its publisher recovers it)
        const must = want.filter((w) => !w.recoverable)
        let j = 0
        for (const g of got) if (j < must.length && g.origin === must[j]!.origin) j++
        expect(
          j,
          `lost entries: ${ctx}\ngot ${JSON.stringify(got)}\nwant ${JSON.stringify(want)}`,
        ).toBe(must.length)
        // nothing of another client, ordered, no duplicates (unless enqueued twice)
        for (const g of got)
          expect(
            enqueuedFor.get(c)!.has(g.origin as number),
            `${ctx}\ngot ${JSON.stringify(got)} enq ${[...enqueuedFor.get(c)!].join(',')} want ${JSON.stringify(want)}`,
          ).toBe(true)
        const origins = got.map((g) => g.origin as number)
        expect(
          [...origins].sort((a, b) => a - b),
          ctx,
        ).toEqual(origins)
        if (!opts.dup) expect(new Set(origins).size, ctx).toBe(origins.length)
      }
      // the model becomes what was restored (redeliveries are legitimate)
      const next: ME[] = []
      for (const x of restored.get(c) as any[]) {
        const d = describeRestored(c, x, pubrelOrigins)
        next.push({
          origin: d.origin as number,
          kind: d.kind as ME['kind'],
          counter: x.cmd === 'pubrel' ? -1 : x.brokerCounter,
          brokerId: x.cmd === 'pubrel' ? '' : x.brokerId,
          expiring:
            x.cmd === 'pubrel' || x.brokerId === 'broker-2'
              ? false
              : x.payload.toString().includes(String(SOON)),
          messageId: x.cmd === 'pubrel' ? x.messageId : undefined,
          recoverable: false,
        })
      }
      model.set(c, next)
    }
    // memory vs counts
    let total = 0
    for (const c of clientIds) total += (model.get(c) as ME[]).length
    expect(s.p.queuedCount()).toBe(total)
  }

  for (let step = 0; step < steps; step++) {
    const x = r()
    if (x < 0.12) {
      // enqueue
      const big = r() < 0.45
      // one client alone half the time: a push by regId, stored in its queue row
      const n = big ? 32 + Math.floor(r() * 38) : r() < 0.5 ? 1 : 2 + Math.floor(r() * 4)
      const chosen: string[] = []
      const pool = [...clientIds]
      for (let i = 0; i < n && pool.length > 0; i++) {
        const k = Math.floor(r() * pool.length)
        chosen.push(pool[k] as string)
        pool.splice(k, 1)
      }
      if (opts.dup && r() < 0.3) chosen.push(chosen[0] as string)
      while (chosen.length < 32 && big && opts.dup) chosen.push(pick(chosen))
      const c = counter++
      const expiring = r() < 0.3
      // the message pipeline's enqueues (a fan-out is durable all the same)
      const recoverable = r() < 0.4
      log.push(
        `enqueue ${c} -> ${chosen.length} clients (${chosen.slice(0, 3).join(',')}...) exp=${expiring} rec=${recoverable}`,
      )
      for (const id of chosen) {
        ;(model.get(id) as ME[]).push({
          origin: c,
          kind: 'publish',
          counter: c,
          brokerId: 'broker-1',
          expiring,
          messageId: undefined,
          recoverable: recoverable && chosen.length < FANOUT_MIN_CLIENTS,
        })
        enqueuedFor.get(id)!.add(c)
      }
      const pr = s.p[recoverable ? 'enqueueRecoverable' : 'outgoingEnqueueCombi'](
        chosen.map((clientId) => ({ clientId })),
        {
          cmd: 'publish',
          topic: 't',
          payload: payloadOf(c, expiring),
          qos: 1,
          retain: false,
          dup: false,
          brokerId: 'broker-1',
          brokerCounter: c,
        },
      )
      if (opts.concurrent && r() < 0.5) {
        pendingSet.add(c)
        pending.push(
          pr.then(() => {
            pendingSet.delete(c)
          }),
        )
      } else await pr
      if (recoverable && !pendingSet.has(c) && r() < 0.5) {
        // online devices: some acknowledge it at once (before the deferred lane commits)
        for (const id of new Set(chosen)) {
          const q = model.get(id) as ME[]
          const e = q.find((x) => x.origin === c)
          if (!e || e.messageId !== undefined || r() < 0.3) continue
          if (q.filter((o) => o.counter === e.counter && o.brokerId === e.brokerId).length > 1)
            continue
          const mid = ((nextMid.get(id) ?? 0) % 60000) + 1
          nextMid.set(id, mid)
          log.push(`online ack ${id} ${c} mid=${mid}`)
          await s.p.outgoingUpdate({ id }, sentAs(e, mid))
          q.splice(q.indexOf(e), 1)
          expect(await s.p.outgoingClearMessageId({ id }, { messageId: mid })).toBeDefined()
        }
      }
    } else if (x < 0.45) {
      // deliver (assign packet id) to an entry without one
      const c = pick(clientIds)
      const q = model.get(c) as ME[]
      const e = q.find(
        (e) => e.messageId === undefined && e.kind !== 'pubrel' && !pendingSet.has(e.origin),
      )
      if (!e) continue
      if (
        opts.dup &&
        q.filter((o) => o.counter === e.counter && o.brokerId === e.brokerId).length > 1
      )
        continue
      const mid = ((nextMid.get(c) ?? 0) % 60000) + 1
      nextMid.set(c, mid)
      e.messageId = mid
      log.push(`deliver ${c} ${e.origin} mid=${mid}`)
      await s.p.outgoingUpdate({ id: c }, sentAs(e, mid))
    } else if (x < 0.72) {
      // ack
      const c = pick(clientIds)
      const q = model.get(c) as ME[]
      const i = q.findIndex((e) => e.messageId !== undefined)
      if (i < 0) continue
      const e = q[i] as ME
      q.splice(i, 1)
      log.push(`ack ${c} ${e.origin} mid=${e.messageId}`)
      const got = await s.p.outgoingClearMessageId({ id: c }, { messageId: e.messageId })
      expect(got, `ack ${c} ${e.origin}`).toBeDefined()
    } else if (x < 0.77) {
      const c = pick(clientIds)
      const q = model.get(c) as ME[]
      const e = q.find(
        (e) => e.messageId !== undefined && e.kind !== 'pubrel' && e.brokerId === 'broker-1',
      )
      if (!e) continue
      e.kind = 'pubrel'
      pubrelHistory.set(`${c}:${e.messageId}`, e.origin)
      log.push(`pubrel ${c} ${e.origin} mid=${e.messageId}`)
      await s.p.outgoingUpdate({ id: c }, { cmd: 'pubrel', messageId: e.messageId })
    } else if (x < 0.8) {
      const c = pick(clientIds)
      const q = model.get(c) as ME[]
      const e = q.find((e) => e.messageId !== undefined && e.kind === 'publish')
      if (!e) continue
      const oc = otherCounter++
      otherOrigin.set(oc, e.origin)
      e.kind = 'other'
      e.brokerId = 'broker-2'
      e.counter = oc
      e.expiring = false
      log.push(`other ${c} ${e.origin} mid=${e.messageId}`)
      await s.p.outgoingUpdate(
        { id: c },
        {
          cmd: 'publish',
          topic: 't',
          qos: 1,
          brokerId: 'broker-2',
          brokerCounter: oc,
          payload: Buffer.from('other'),
          messageId: e.messageId,
        },
      )
    } else if (x < 0.82) {
      const c = pick(clientIds)
      log.push(`drop ${c}`)
      model.set(c, [])
      await s.p.dropClient(c)
    } else if (x < 0.84) {
      log.push('sweep')
      for (const c of clientIds) {
        model.set(
          c,
          (model.get(c) as ME[]).filter(
            (e) => !(e.expiring && e.kind !== 'pubrel' && e.messageId === undefined),
          ),
        )
      }
      await s.p.sweepExpired(SOON + 1)
    } else if (x < 0.9) {
      log.push('flush')
      s.writer.flush()
      for (const q of model.values()) for (const e of q) e.recoverable = false
      dbMatchesMemory(s.db, s.p, `seed ${seed}\n${log.slice(-30).join('\n')}`)
    } else if (x < 0.92) {
      // a batch whose one op breaks a constraint: the rest is run again op by op
      log.push('constraint')
      s.writer.later(() => {
        s.db.prepare(`INSERT INTO broker_retained (topic, meta) VALUES ('dup', '{}')`).run()
        s.db.prepare(`INSERT INTO broker_retained (topic, meta) VALUES ('dup', '{}')`).run()
      })
    } else if (x < 0.94) {
      const c = pick(clientIds)
      if (r() < 0.5) {
        s.clients[c] = {}
        log.push(`connect ${c}`)
      } else {
        delete s.clients[c]
        log.push(`disconnect ${c}`)
        s.aedes.emit('clientDisconnect', { id: c })
      }
    } else if (x < 0.97) {
      await restart(false)
    } else {
      await restart(true)
    }
  }
  await restart(true)
  // drain everything: nothing left behind
  for (const c of clientIds) {
    let mid = 1
    for (const e of model.get(c) as ME[]) {
      if (e.kind === 'pubrel') {
        await s.p.outgoingClearMessageId({ id: c }, { messageId: e.messageId })
        continue
      }
      await s.p.outgoingUpdate({ id: c }, sentAs(e, 60000 + mid))
      const got = await s.p.outgoingClearMessageId({ id: c }, { messageId: 60000 + mid })
      expect(got).toBeDefined()
      mid++
    }
    model.set(c, [])
  }
  await s.writer.commit(() => {})
  expect(s.p.queuedCount()).toBe(0)
  expect([...s.p.queuedPayloads()].length).toBe(0)
  expect(count(s.db, 'broker_outgoing')).toBe(0)
  expect(count(s.db, 'broker_packets')).toBe(0)
  expect(count(s.db, 'broker_fanouts')).toBe(0)
  expect(count(s.db, 'broker_fanout_done')).toBe(0)
  state.crashed = true
  s.db.close()
  expect(unexpected).toEqual([])
}

/**
 * A model-based fuzz of the broker persistence (written in review of the fan-out rows): random
 * fan-out and row enqueues (durable or recoverable; some not awaited, overlapping drops and
 * sweeps), deliveries,
 * acknowledgements, QoS 2 releases, another broker's packet taking an entry over, drops,
 * sweeps, flushes, batches broken by a constraint, connects and disconnects, and kill -9 with
 * and without settling. After each restart: settled, the queues equal the model; unsettled,
 * nothing lost, nothing of another client, in order. At the end every table is empty.
 * FUZZ_SEEDS=30 runs the review's full set (~40 s); the suite runs a few seeds of each kind.
 */
const SEEDS = Number(process.env.FUZZ_SEEDS ?? 4)

describe('EmbeddedBrokerPersistence crash fuzz', () => {
  for (let seed = 1; seed <= SEEDS; seed++) {
    it(`seed ${seed}`, async () => {
      await runFuzz(seed, 600, { dup: false })
    }, 60000)
  }
  for (let seed = 2001; seed <= 2000 + SEEDS; seed++) {
    it(`concurrent seed ${seed}`, async () => {
      await runFuzz(seed, 600, { dup: false, concurrent: true })
    }, 60000)
  }
  for (let seed = 1001; seed <= 1000 + Math.max(1, SEEDS / 3); seed++) {
    it(`dup seed ${seed}`, async () => {
      await runFuzz(seed, 600, { dup: true })
    }, 60000)
  }
})
