import type { Clock } from '../../api/core/clock.js'

/** A clock tests move by hand (STYLE rule 8). Starts at the real time unless told otherwise. */
export class ManualClock implements Clock {
  #now: number

  constructor(start = Date.now()) {
    this.#now = start
  }

  now(): number {
    return this.#now
  }

  advance(ms: number): void {
    this.#now += ms
  }
}
