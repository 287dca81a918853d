import type { Clock } from '../../core/clock.js'
import type { RateLimiter } from '../../core/limits/rate-limiter.js'

interface Bucket {
  tokens: number
  updatedAt: number
}

/**
 * Token buckets in this process's memory: `ratePerSec` tokens a second up to `burst`. Buckets
 * that refilled completely are forgotten, so idle keys (addresses, apps) cost nothing. In a
 * cluster the Redis limiter replaces it.
 */
export class MemoryRateLimiter implements RateLimiter {
  readonly #rate: number
  readonly #burst: number
  readonly #clock: Clock
  readonly #buckets = new Map<string, Bucket>()
  #lastSweep = 0

  constructor(options: { ratePerSec: number; burst: number; clock: Clock }) {
    if (options.ratePerSec <= 0 || options.burst <= 0) throw new Error('rate and burst must be > 0')
    this.#rate = options.ratePerSec
    this.#burst = options.burst
    this.#clock = options.clock
  }

  take(key: string, cost = 1): { ok: true } | { ok: false; retryAfterMs: number } {
    const now = this.#clock.now()
    this.#sweep(now)
    const b = this.#refill(key, now)
    if (b.tokens >= cost) {
      b.tokens -= cost
      return { ok: true }
    }
    return { ok: false, retryAfterMs: Math.ceil(((cost - b.tokens) / this.#rate) * 1000) }
  }

  isLimited(key: string): boolean {
    const b = this.#buckets.get(key)
    return b !== undefined && this.#refill(key, this.#clock.now()).tokens < 1
  }

  #refill(key: string, now: number): Bucket {
    let b = this.#buckets.get(key)
    if (!b) {
      b = { tokens: this.#burst, updatedAt: now }
      this.#buckets.set(key, b)
      return b
    }
    const elapsed = Math.max(0, now - b.updatedAt)
    b.tokens = Math.min(this.#burst, b.tokens + (elapsed * this.#rate) / 1000)
    b.updatedAt = now
    return b
  }

  #sweep(now: number): void {
    if (now - this.#lastSweep < 60_000) return
    this.#lastSweep = now
    const full = (this.#burst / this.#rate) * 1000
    for (const [key, b] of this.#buckets) if (now - b.updatedAt > full) this.#buckets.delete(key)
  }
}
