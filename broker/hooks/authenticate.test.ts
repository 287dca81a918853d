import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../test/helpers/clock.js'
import { MemoryRateLimiter } from '../../api/store/memory/rate-limiter.js'
import type { BrokerDeps } from '../ports.js'
import { sessionOf } from '../session.js'
import { createAuthenticate } from './authenticate.js'

const APP = 'ap00000000000001'
const TOKEN = 'the-token'

/**
 * A client over a socket whose remote address is counted; once `closed`, the address is gone,
 * as Node's `remoteAddress` is for a socket closed before anyone asked for it.
 */
function client(id: string) {
  const state = { reads: 0, closed: false }
  const c: any = {
    id,
    clean: false,
    conn: {
      get remoteAddress() {
        state.reads++
        return state.closed ? undefined : '10.0.0.7'
      },
    },
  }
  return { c, state }
}

function setup() {
  const limiter = new MemoryRateLimiter({ ratePerSec: 1 / 60, burst: 2, clock: new ManualClock(0) })
  const lookups: string[] = []
  /** Runs while the store is asked (an async store answers a turn of the event loop later). */
  let duringLookup = () => {}
  const deps = {
    authenticateDevice: async (appId: string, regId: string, token: string) => {
      lookups.push(regId)
      duringLookup()
      await new Promise((r) => setImmediate(r))
      return appId === APP && token === TOKEN ? { appId, regId, valid: true } : undefined
    },
    authFailures: {
      isLimited: (a: string) => limiter.isLimited(a),
      record: (a: string) => void limiter.take(a),
    },
  } as unknown as BrokerDeps
  return {
    authenticate: createAuthenticate(deps),
    lookups,
    limiter,
    during: (f: () => void) => (duringLookup = f),
  }
}

const code = (p: Promise<unknown>) =>
  p.then(
    () => 0,
    (err: { returnCode?: number }) => err.returnCode,
  )

describe('authenticate (MQTT CONNECT)', () => {
  it('accepts the right token and sets the session', async () => {
    const { authenticate } = setup()
    const { c } = client('device-1')
    expect(await code(authenticate(c, APP, Buffer.from(TOKEN)))).toBe(0)
    expect(sessionOf(c)).toMatchObject({ appId: APP, regId: 'device-1' })
  })

  it('counts a failure against its address even when the socket closed during the lookup', async () => {
    const { authenticate, lookups, during } = setup()
    for (let i = 0; i < 2; i++) {
      const guess = client('device-1')
      during(() => (guess.state.closed = true)) // the guesser hangs up at once
      expect(await code(authenticate(guess.c, APP, Buffer.from('wrong')))).toBe(4)
    }
    // its address is now over the limit: refused without a lookup
    during(() => {})
    const next = client('device-2')
    lookups.length = 0
    expect(await code(authenticate(next.c, APP, Buffer.from(TOKEN)))).toBe(5)
    expect(next.state.reads).toBe(1)
    expect(lookups).toEqual([])
  })
})
