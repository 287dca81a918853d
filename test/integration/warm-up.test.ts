import { existsSync, readdirSync } from 'node:fs'
import { createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../api/config/load.js'
import type { Config } from '../../api/config/schema.js'
import { start, type Running, type StartOptions } from '../../api/main.js'
import { warmUp, warmUpBeforeServing } from '../../api/warm-up.js'

/** The service's own configuration: ports and a data directory the copy must not touch. */
const realDataDir = join(tmpdir(), `mqpush-not-created-${process.pid}`)
const config = loadConfig({
  MQPUSH_DATA_DIR: realDataDir,
  MQPUSH_HTTP_PORT: '18080',
  MQPUSH_MQTT_PORT: '11883',
  MQPUSH_ADMIN_TOKEN: 'the-real-admin-token-0123456789',
  MQPUSH_LOG_LEVEL: 'silent',
})

const copies: Config[] = []
const running: Running[] = []
/** `start`, noting the copy's config and keeping the copy to check it is closed. */
const recordingStart = async (c: Config, o: StartOptions) => {
  copies.push(c)
  const r = await start(c, o)
  running.push(r)
  return r
}

/** Log lines as the service's logger would write them. */
function recordingLog() {
  const lines: Array<{ level: string; obj: object; msg: string | undefined }> = []
  const at = (level: string) => (obj: object, msg?: string) => lines.push({ level, obj, msg })
  return {
    lines,
    log: { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') },
  }
}

async function refusesConnections(port: number): Promise<boolean> {
  const { connect } = await import('node:net')
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port })
    s.once('connect', () => {
      s.destroy()
      resolve(false)
    })
    s.once('error', () => resolve(true))
  })
}

describe('the warm-up before serving', () => {
  const held: Socket[] = []
  let silent: Server | undefined
  afterAll(async () => {
    for (const s of held) s.destroy()
    silent?.close()
    await Promise.all(running.map((r) => r.close()))
  })

  it('drives every push to a device of a throwaway copy, then closes and removes the copy', async () => {
    const result = await warmUp(config, recordingStart, 300)
    expect(result.pushes).toBe(300)
    expect(result.delivered).toBe(300)
    expect(result.ms).toBeGreaterThan(0)

    const copy = copies.at(-1) as Config
    // its own store in a new temporary directory, removed afterwards
    expect(copy.dataDir).not.toBe(config.dataDir)
    expect(copy.dataDir.startsWith(join(tmpdir(), 'mqpush-warm-up-'))).toBe(true)
    expect(existsSync(copy.dataDir)).toBe(false)
    expect(existsSync(realDataDir)).toBe(false)
    // loopback only, ports the system picks, its own admin token, no TLS, no jobs
    expect(copy).toMatchObject({
      httpHost: '127.0.0.1',
      httpPort: 0,
      mqttHost: '127.0.0.1',
      mqttPort: 0,
      jobsEnabled: false,
      mqttTlsCertFile: undefined,
      mqttTlsKeyFile: undefined,
    })
    expect(copy.adminToken).not.toBe(config.adminToken)
    // the service's own settings otherwise
    expect(copy.httpBodyLimitBytes).toBe(config.httpBodyLimitBytes)
    // closed: its listeners are gone
    const r = running.at(-1) as Running
    expect(await refusesConnections(r.httpPort)).toBe(true)
    expect(await refusesConnections(r.mqttPort)).toBe(true)
  })

  it('gives up after its time limit, and still closes and removes the copy', async () => {
    // the pushes go to a listener that takes connections and never answers
    silent = createServer((s) => held.push(s))
    await new Promise<void>((resolve) => silent?.listen(0, '127.0.0.1', resolve))
    const silentPort = (silent.address() as { port: number }).port
    const before = copies.length
    await expect(
      warmUp(
        config,
        async (c, o) => ({ ...(await recordingStart(c, o)), httpPort: silentPort }),
        50,
        { timeoutMs: 300 },
      ),
    ).rejects.toThrow('the warm-up took over 300 ms')
    expect(copies).toHaveLength(before + 1)
    expect(existsSync((copies.at(-1) as Config).dataDir)).toBe(false)
    expect(await refusesConnections((running.at(-1) as Running).mqttPort)).toBe(true)
  })

  it('fails on a push the copy refuses, naming the answer', async () => {
    await expect(
      warmUp(
        config,
        async (c, o) => {
          const r = await recordingStart(c, o)
          return { ...r, defaultApp: { ...r.defaultApp, secret: 'not-the-secret' } }
        },
        20,
      ),
    ).rejects.toThrow(/a warm-up push was answered 401/)
    expect(existsSync((copies.at(-1) as Config).dataDir)).toBe(false)
  })

  it('as npm start runs it: logs the result, or a warning and starts anyway; 0 turns it off', async () => {
    const ok = recordingLog()
    const result = await warmUpBeforeServing(
      { ...config, warmUpPushes: 40 },
      recordingStart,
      ok.log,
    )
    expect(result?.delivered).toBe(40)
    expect(ok.lines).toEqual([{ level: 'info', obj: result, msg: 'warmed up the push path' }])

    const failing = recordingLog()
    const broken = async (): Promise<Running> => {
      throw new Error('no room for a store')
    }
    const before = new Set(readdirSync(tmpdir()).filter((f) => f.startsWith('mqpush-warm-up-')))
    expect(await warmUpBeforeServing(config, broken, failing.log)).toBeUndefined()
    expect(failing.lines).toHaveLength(1)
    expect(failing.lines[0]).toMatchObject({
      level: 'warn',
      msg: 'the warm-up failed; starting without it',
    })
    expect(String((failing.lines[0]?.obj as { err: Error }).err)).toContain('no room for a store')
    // the directory made for it is removed
    const after = readdirSync(tmpdir()).filter((f) => f.startsWith('mqpush-warm-up-'))
    expect(after.filter((f) => !before.has(f))).toEqual([])

    const off = recordingLog()
    const count = copies.length
    expect(await warmUpBeforeServing({ ...config, warmUpPushes: 0 }, recordingStart, off.log)).toBe(
      undefined,
    )
    expect(copies).toHaveLength(count)
    expect(off.lines).toEqual([])
  })

  it('is on by default with 2000 pushes, and takes 0–100000', () => {
    expect(config.warmUpPushes).toBe(2000)
    expect(loadConfig({ MQPUSH_WARM_UP_PUSHES: '0' }).warmUpPushes).toBe(0)
    expect(() => loadConfig({ MQPUSH_WARM_UP_PUSHES: '100001' })).toThrow('MQPUSH_WARM_UP_PUSHES')
    expect(() => loadConfig({ MQPUSH_WARM_UP_PUSHES: '-1' })).toThrow('MQPUSH_WARM_UP_PUSHES')
  })
})
