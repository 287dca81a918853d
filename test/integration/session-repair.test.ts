import { Aedes } from 'aedes'
import Database from 'better-sqlite3'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { DATABASE_FILE } from '../../api/store/embedded/database.js'
import { appTopic } from '../../sdk/protocol/topics.js'
import { connectDevice } from '../helpers/mqtt.js'
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

  const topicsRead = (server: TestServer) => {
    const devices = server.services.devices
    const spy = vi.spyOn(devices, 'topicsOf')
    restores.push(() => spy.mockRestore())
    return spy
  }

  it("loads neither the device nor the core's record of its topics when no change of them was left unfinished", async () => {
    s = await startTestServer()
    const reg = await s.register()
    const joined = await s.http('POST', '/v1/topics/news/subscribe', {
      auth: `Bearer ${s.defaultApp.secret}`,
      body: { regIds: [reg.regId] },
    })
    expect(joined.status).toBe(200)
    const reads = topicsRead(s)
    const loads = vi.spyOn(s.services.devices, 'findByToken')
    restores.push(() => loads.mockRestore())
    const d = await connectDevice(s.mqttUrl, reg)
    try {
      await new Promise((r) => setTimeout(r, 100))
      expect(reads).not.toHaveBeenCalled()
      // its credentials came from the store's cache of active devices: no device loaded
      expect(loads).not.toHaveBeenCalled()
      // and its session is whole: a push to its topic arrives
      expect(
        (await s.push({ target: { topic: 'news' }, kind: 'passThrough', payload: 'p' })).status,
      ).toBe(200)
      expect((await d.waitFor(1))[0]!.json.payload).toBe('p')
    } finally {
      await d.end()
    }
  })

  it('gets its session repaired when a crash came between the two writes of a topic change', async () => {
    s = await startTestServer()
    const { dataDir } = s
    const appId = s.defaultApp.id
    const reg = await s.register()
    const joined = await s.http('POST', '/v1/topics/news/subscribe', {
      auth: `Bearer ${s.defaultApp.secret}`,
      body: { regIds: [reg.regId] },
    })
    expect(joined.status).toBe(200)
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

    s = await startTestServer({ dataDir })
    const reads = topicsRead(s)
    const d = await connectDevice(s.mqttUrl, reg)
    try {
      await vi.waitFor(() => expect(reads).toHaveBeenCalledWith(reg.regId))
      await new Promise((r) => setTimeout(r, 100))
      expect(
        (await s.push({ target: { topic: 'news' }, kind: 'passThrough', payload: 'p' })).status,
      ).toBe(200)
      expect((await d.waitFor(1))[0]!.json.payload).toBe('p')
    } finally {
      await d.end()
    }
    // repaired: settled, so that its next connect reads nothing
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
    // eslint-disable-next-line @typescript-eslint/unbound-method -- called with its own this
    const original = Aedes.prototype.publish
    // seen from behind the service's own wrapper, which it installs over aedes' method
    Aedes.prototype.publish = function (this: Aedes, packet: any, ...rest: any[]) {
      topics.push(packet.topic)
      return (original as any).call(this, packet, ...rest)
    } as typeof original
    restores.push(() => {
      Aedes.prototype.publish = original
    })
    s = await startTestServer()
    const reg = await s.register()
    const d = await connectDevice(s.mqttUrl, reg)
    await d.end()
    await new Promise((r) => setTimeout(r, 100))
    expect(topics.filter((t) => t.startsWith('$SYS/'))).toEqual([
      expect.stringMatching(/^\$SYS\/[^/]+\/birth$/), // at the start, as aedes does
    ])
  })
})
