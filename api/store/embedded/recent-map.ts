/**
 * A map that keeps the entries set or read most recently — the latest `generation` of them at
 * least, `2 × generation` at most — at a constant cost per call: two generations, the current
 * one taking every `set`, the previous one read when the current lacks the key (and the entry
 * then copied into the current). When the current holds `generation` keys it becomes the
 * previous, and the previous is dropped whole.
 *
 * What it replaces: a `Map` trimmed by deleting its first key (`keys().next()`) once over its
 * bound. V8's ordered hash table leaves a hole for every deleted entry and only compacts when
 * it grows, so that first key sits behind up to as many holes as the map has room for: each
 * trim of a full 20,000-entry map cost ~10 µs, of a 200,000-entry one ~27 µs
 * (docs/benchmarks-log.md, twenty-first session).
 *
 * `undefined` is not a storable value (it means absent); `null` is.
 */
export class RecentMap<K, V> {
  #current = new Map<K, V>()
  #previous = new Map<K, V>()

  constructor(readonly generation: number) {
    if (!(generation >= 1)) throw new RangeError('a generation holds at least one entry')
  }

  get(key: K): V | undefined {
    const value = this.#current.get(key)
    if (value !== undefined) return value
    const old = this.#previous.get(key)
    if (old !== undefined) this.set(key, old)
    return old
  }

  set(key: K, value: V): void {
    this.#current.set(key, value)
    if (this.#current.size >= this.generation) {
      this.#previous = this.#current
      this.#current = new Map()
    }
  }

  delete(key: K): void {
    this.#current.delete(key)
    this.#previous.delete(key)
  }

  /** Entries held, a key in both generations counted twice (at most `2 × generation`). */
  get held(): number {
    return this.#current.size + this.#previous.size
  }
}
