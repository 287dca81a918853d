/**
 * A rate limiter (port): token buckets by key. `take` removes `cost` tokens and answers whether
 * they were there; when not, `retryAfterMs` says when they will be.
 */
export interface RateLimiter {
  take(key: string, cost?: number): { ok: true } | { ok: false; retryAfterMs: number }
  /** Whether the key is over its limit now, without taking anything. */
  isLimited(key: string): boolean
}
