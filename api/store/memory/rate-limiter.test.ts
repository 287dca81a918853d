import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../../test/helpers/clock.js'
import { MemoryRateLimiter } from './rate-limiter.js'

describe('MemoryRateLimiter', () => {
  it('allows a burst, then the rate, per key', () => {
    const clock = new ManualClock(0)
    const l = new MemoryRateLimiter({ ratePerSec: 2, burst: 3, clock })
    expect([l.take('a'), l.take('a'), l.take('a')].every((r) => r.ok)).toBe(true)
    const refused = l.take('a')
    expect(refused).toEqual({ ok: false, retryAfterMs: 500 })
    expect(l.take('b').ok).toBe(true) // other keys are independent
    clock.advance(500)
    expect(l.take('a').ok).toBe(true)
    expect(l.take('a').ok).toBe(false)
  })

  it('reports whether a key is limited without spending', () => {
    const clock = new ManualClock(0)
    const l = new MemoryRateLimiter({ ratePerSec: 1, burst: 1, clock })
    expect(l.isLimited('x')).toBe(false)
    l.take('x')
    expect(l.isLimited('x')).toBe(true)
    clock.advance(1000)
    expect(l.isLimited('x')).toBe(false)
  })

  it('refuses a nonsensical configuration', () => {
    expect(
      () => new MemoryRateLimiter({ ratePerSec: 0, burst: 1, clock: new ManualClock() }),
    ).toThrow()
  })
})
