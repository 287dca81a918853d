/** Time is injected (STYLE rule 8): services read the clock, tests fix it. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number
}

export const systemClock: Clock = { now: () => Date.now() }
