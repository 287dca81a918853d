import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../test/helpers/clock.js'
import { MemoryRateLimiter } from '../../api/store/memory/rate-limiter.js'
import type { BrokerDeps } from '../ports.js'
import { sessionOf } from '../session.js'
import { createAuthenticate } from './authenticate.js'

const APP = 'ap00000000000001'
const TOKEN = 'the-token'

/** A client over a socket whose remote address (a getpeername system call) is counted. */
function client(id: string) {
  const reads = { n: 0 }
  const c: any = {
    id,
    clean: false,
    conn: {
      get remoteAddress() {
        reads.n++
        return '10.0.0.7'
      },
    },
  }
  return { c, reads }
}

function setup() {
  const limiter = new MemoryRateLimiter({ ratePerSec: 1 / 60, burst: 2, clock: new ManualClock(0) })
  const lookups: string[] = []
  const deps = {
    authenticateDevice: async (appId: string, regId: string, token: string) => {
      lookups.push(regId)
      return appId === APP && token === TOKEN ? { appId, regId, valid: true } : undefined
    },
    authFailures: {
      isLimited: (a: string) => limiter.isLimited(a),
      record: (a: string) => void limiter.take(a),
      isIdle: () => limiter.isIdle(),
    },
  } as unknown as BrokerDeps
  return { authenticate: createAuthenticate(deps), lookups, limiter }
}

const code = (p: Promise<unknown>) =>
  p.then(
    () => 0,
    (err: { returnCode?: number }) => err.returnCode,
  )

describe('authenticate (MQTT CONNECT)', () => {
  it('reads no address while no address has a failure on record', async () => {
    const { authenticate } = setup()
    const { c, reads } = client('device-1')
    expect(await code(authenticate(c, APP, Buffer.from(TOKEN)))).toBe(0)
    expect(reads.n).toBe(0)
    expect(sessionOf(c)).toMatchObject({ appId: APP, regId: 'device-1' })
  })

  it('records failures by address, and refuses a limited address without a lookup', async () => {
    const { authenticate, lookups } = setup()
    const a = client('device-1')
    expect(await code(authenticate(a.c, APP, Buffer.from('wrong')))).toBe(4)
    expect(await code(authenticate(a.c, APP, undefined))).toBe(4)
    expect(a.reads.n).toBeGreaterThan(0) // the failures are the address's
    // from now on every connect reads its address: this one is over the limit
    const b = client('device-2')
    lookups.length = 0
    expect(await code(authenticate(b.c, APP, Buffer.from(TOKEN)))).toBe(5)
    expect(b.reads.n).toBe(1)
    expect(lookups).toEqual([])
  })
})
