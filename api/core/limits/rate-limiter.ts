/**
 * A rate limiter (port): token buckets by key. `take` removes `cost` tokens and answers whether
 * they were there; when not, `retryAfterMs` says when they will be.
 */
export interface RateLimiter {
  take(key: string, cost?: number): { ok: true } | { ok: false; retryAfterMs: number }
  /** Whether the key is over its limit now, without taking anything. */
  isLimited(key: string): boolean
  /**
   * Optional: true when no key has anything taken on record, so that isLimited is false for
   * every key (a caller may then skip working out its key).
   */
  isIdle?(): boolean
}
