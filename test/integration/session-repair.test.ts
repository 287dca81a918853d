import { Aedes } from 'aedes'
import Database from 'better-sqlite3'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { EmbeddedBrokerPersistence } from '../../api/store/embedded/broker-persistence.js'
import { DATABASE_FILE } from '../../api/store/embedded/database.js'
import { EmbeddedTopicStore } from '../../api/store/embedded/topic-store.js'
import { RECENT_CHANGE_MS } from '../../broker/membership.js'
import { appTopic } from '../../sdk/protocol/topics.js'
import { ManualClock } from '../helpers/clock.js'
import { connectDevice, type TestDevice } from '../helpers/mqtt.js'
import { startTestServer, type TestServer } from '../helpers/server.js'

/**
 * What a device's connect costs beyond aedes' own work, and the repair of a session a crash
 * left behind the core's record of its topics.
 */
describe('a device connecting', () => {
  let s: TestServer | undefined
  const restores: Array<() => void> = []
  afterEach(async () => {
    await s?.stop(true)
    s = undefined
    for (const r of restores.splice(0)) r()
  })

  /**
   * Pushes to the topic until the device has the message (a push the broker gets before the
   * device's session holds the topic reaches nobody, and is not queued for it).
   */
  const pushUntilArrives = async (server: TestServer, d: TestDevice, topic: string) => {
    for (let i = 0; i < 50; i++) {
      const pushed = await server.push({ target: { topic }, kind: 'passThrough', payload: 'p' })
      expect(pushed.status).toBe(200)
      const got = await d.waitFor(1, 100).catch(() => undefined)
      if (got) return got[0]!.json.payload as string
    }
    throw new Error(`no push to ${topic} arrived`)
  }
  const subscribe = (server: TestServer, regId: string, topic: string) =>
    server.http('POST', `/v1/topics/${topic}/subscribe`, {
      auth: `Bearer ${server.defaultApp.secret}`,
      body: { regIds: [regId] },
    })

  /**
   * Replaces a method on a prototype for this test (restored after it): `wrap` gets the method
   * as it was, to call with the instance's own `this`.
   */
  const around = <F extends (...args: any[]) => any>(
    proto: object,
    name: string,
    wrap: (original: F) => F,
  ) => {
    const target = proto as Record<string, F>
    const original = target[name] as F
    target[name] = wrap(original)
    restores.push(() => {
      target[name] = original
    })
  }

  const topicsRead = (server: TestServer) => {
    const devices = server.services.devices
    const spy = vi.spyOn(devices, 'topicsOf')
    restores.push(() => spy.mockRestore())
    return spy
  }

  it("loads neither the device nor the core's record of its topics when no change of them was left unfinished", async () => {
    const clock = new ManualClock()
    s = await startTestServer({ clock })
    const reg = await s.register()
    expect((await subscribe(s, reg.regId, 'news')).status).toBe(200)
    clock.advance(RECENT_CHANGE_MS + 1) // the change is no longer recent
    const reads = topicsRead(s)
    // its row changed behind the service's back: a connect that read it would be refused, one
    // answered from the store's cache of active devices is not
    const db = new Database(join(s.dataDir, DATABASE_FILE))
    db.prepare("UPDATE devices SET token_hash = 'not its token' WHERE reg_id = ?").run(reg.regId)
    db.close()
    const d = await connectDevice(s.mqttUrl, reg)
    try {
      await new Promise((r) => setTimeout(r, 100))
      expect(reads).not.toHaveBeenCalled()
      // and its session is whole from its CONNACK on: one push to its topic arrives
      expect(
        (await s.push({ target: { topic: 'news' }, kind: 'passThrough', payload: 'p' })).status,
      ).toBe(200)
      expect((await d.waitFor(1))[0]!.json.payload).toBe('p')
    } finally {
      await d.end()
    }
  })

  it('loses, live too, a topic a server took from it while it was connecting', async () => {
    s = await startTestServer()
    const server = s
    const reg = await s.register()
    expect((await subscribe(s, reg.regId, 'news')).status).toBe(200)
    // the server's unsubscribe reaches the core's record only once the device is connected
    // and its reconcile has read that record (the topic still there): the session's own write
    // comes after the connect
    let connected = () => {}
    const gate = new Promise<void>((r) => (connected = r))
    around(
      EmbeddedTopicStore.prototype,
      'removeTopics',
      (original) =>
        async function (this: unknown, ...args: unknown[]) {
          await gate
          return original.apply(this, args)
        },
    )
    const left = server.http('POST', '/v1/topics/news/unsubscribe', {
      auth: `Bearer ${server.defaultApp.secret}`,
      body: { regIds: [reg.regId] },
    })
    const reads = topicsRead(s)
    const d = await connectDevice(s.mqttUrl, reg)
    try {
      await vi.waitFor(() => expect(reads).toHaveBeenCalledWith(reg.regId))
      connected()
      expect((await left).status).toBe(200)
      // neither queued nor live: a push to the topic does not reach it
      expect(
        (await s.push({ target: { topic: 'news' }, kind: 'passThrough', payload: 'p' })).status,
      ).toBe(200)
      await d.expectNoMore(0, 500)
    } finally {
      await d.end()
    }
  })

  it('gets a topic a server gave it while it was connecting', async () => {
    const clock = new ManualClock()
    s = await startTestServer({ clock })
    const server = s
    const reg = await s.register()
    clock.advance(RECENT_CHANGE_MS + 1)
    // the subscribe runs whole after aedes took the device's subscriptions from the
    // persistence and before it registers the client: neither the snapshot nor the live
    // client has the topic
    let joined: number | undefined
    around(
      EmbeddedBrokerPersistence.prototype,
      'subscriptionsByClient',
      (original) =>
        async function (this: unknown, client: { id: string }) {
          const snapshot: unknown = await original.call(this, client)
          if (client.id === reg.regId && joined === undefined) {
            joined = (await subscribe(server, reg.regId, 'news')).status
          }
          return snapshot
        },
    )
    const reads = topicsRead(s)
    const d = await connectDevice(s.mqttUrl, reg)
    try {
      expect(joined).toBe(200)
      // the change ended a moment ago: the connect reconciles, and the topic is live
      await vi.waitFor(() => expect(reads).toHaveBeenCalledWith(reg.regId))
      expect(await pushUntilArrives(s, d, 'news')).toBe('p')
    } finally {
      await d.end()
    }
  })

  it('gets its session repaired when a crash came between the two writes of a topic change', async () => {
    s = await startTestServer()
    const { dataDir } = s
    const appId = s.defaultApp.id
    const reg = await s.register()
    expect((await subscribe(s, reg.regId, 'news')).status).toBe(200)
    await s.stop(false)
    restores.push(() => rmSync(dataDir, { recursive: true, force: true }))
    // what a crash leaves after the core's write and before the session's: the core records
    // the topic, the session lacks it, and the device is marked (durably, before the core's write)
    const db = new Database(join(dataDir, DATABASE_FILE))
    const removed = db
      .prepare('DELETE FROM broker_subscriptions WHERE client_id = ? AND topic = ?')
      .run(reg.regId, appTopic(appId, 'news'))
    expect(removed.changes).toBe(1)
    db.prepare('INSERT INTO broker_unsettled (client_id) VALUES (?)').run(reg.regId)
    db.close()

    const clock = new ManualClock()
    s = await startTestServer({ dataDir, clock })
    const reads = topicsRead(s)
    const d = await connectDevice(s.mqttUrl, reg)
    try {
      await vi.waitFor(() => expect(reads).toHaveBeenCalledWith(reg.regId))
      expect(await pushUntilArrives(s, d, 'news')).toBe('p')
    } finally {
      await d.end()
    }
    // repaired: settled, so that its next connect reads nothing (once the repair's own change
    // is no longer recent)
    clock.advance(RECENT_CHANGE_MS + 1)
    reads.mockClear()
    const again = await connectDevice(s.mqttUrl, reg)
    await new Promise((r) => setTimeout(r, 100))
    expect(reads).not.toHaveBeenCalled()
    await again.end()
    await s.stop()
    s = undefined
    const after = new Database(join(dataDir, DATABASE_FILE), { readonly: true })
    expect(after.prepare('SELECT count(*) AS n FROM broker_unsettled').get()).toEqual({ n: 0 })
    after.close()
  })

  it("publishes none of aedes' $SYS notices of its connect and its disconnect", async () => {
    const topics: string[] = []
    // seen from behind the service's own wrapper, which it installs over aedes' method
    around(
      Aedes.prototype,
      'publish',
      (original) =>
        function (this: Aedes, packet: any, ...rest: any[]) {
          topics.push(packet.topic)
          return original.call(this, packet, ...rest)
        },
    )
    s = await startTestServer()
    const reg = await s.register()
    const d = await connectDevice(s.mqttUrl, reg)
    await d.end()
    await new Promise((r) => setTimeout(r, 100))
    expect(topics.filter((t) => t.startsWith('$SYS/'))).toEqual([
      expect.stringMatching(/^\$SYS\/[^/]+\/birth$/), // at the start, as aedes does
    ])
  })

  it("gets a server's topic when another connection takes its id over while it is being subscribed", async () => {
    // the live subscribe's own store write waits until a second connection has taken the
    // device's id over (aedes then drops the subscription of the closed client, and never
    // calls back); patched before the service binds the method
    let holding = false
    let takenOver = () => {}
    const gate = new Promise<void>((r) => (takenOver = r))
    let held = 0
    around(
      EmbeddedBrokerPersistence.prototype,
      'addSubscriptions',
      (original) =>
        async function (this: unknown, ...args: unknown[]) {
          if (holding) {
            held++
            await gate
          }
          return original.apply(this, args)
        },
    )
    s = await startTestServer()
    const server = s
    const reg = await s.register()
    const first = await connectDevice(s.mqttUrl, reg)
    holding = true
    const subscribed = subscribe(server, reg.regId, 'news')
    await vi.waitFor(() => expect(held).toBe(1))
    const second = await connectDevice(s.mqttUrl, reg)
    try {
      takenOver()
      const answer = await Promise.race([
        subscribed,
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 5000)),
      ])
      expect(answer?.status).toBe(200)
      // the connection that took over has the topic, live
      expect(await pushUntilArrives(server, second, 'news')).toBe('p')
    } finally {
      await second.end()
      await first.end()
    }
  })
})
