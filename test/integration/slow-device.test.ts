import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectDevice, connectPacket } from '../helpers/mqtt.js'
import { startTestServer, type TestServer } from '../helpers/server.js'

describe('a device that stops reading', () => {
  let s: TestServer
  beforeAll(async () => {
    s = await startTestServer()
  })
  afterAll(() => s.stop())

  it('holds up neither the push API nor other devices', async () => {
    const stuck = await s.register()
    // a raw MQTT connection that reads its CONNACK, then never reads again
    const socket = connect({ host: '127.0.0.1', port: s.mqttPort })
    await new Promise<void>((resolve) => {
      socket.once('data', () => {
        socket.pause()
        resolve()
      })
      socket.write(connectPacket(stuck, 600))
    })
    // enough to fill its socket buffers several times over
    const payload = 'x'.repeat(4000)
    for (let batch = 0; batch < 50; batch++) {
      const pushes = await Promise.all(
        Array.from({ length: 100 }, () =>
          s.push({ target: { regIds: [stuck.regId] }, kind: 'passThrough', payload }),
        ),
      )
      expect(pushes.every((r) => r.status === 200)).toBe(true)
    }

    const healthy = await s.register()
    const d = await connectDevice(s.mqttUrl, healthy)
    const res = await s.push({
      target: { regIds: [healthy.regId] },
      title: 'still',
      description: 'here',
    })
    expect(res.status).toBe(200)
    expect((await d.waitFor(1, 3000))[0]!.json.id).toBe(res.body.messageId)
    await d.end()
    socket.destroy()
  })
})
