/** A listener of one event; every event carries one value. */
export type Listener<T> = (value: T) => void

interface Entry {
  listener: Listener<never>
  once: boolean
}

/**
 * A small typed event emitter that runs in Node and in browsers (no `node:events`).
 * `Events` maps each event name to the type of its value.
 *
 * A listener that throws does not stop the others: its error goes to `onListenerError`
 * (the device reports it as an `error` event).
 */
export class TypedEmitter<Events extends object> {
  readonly #entries = new Map<keyof Events, Entry[]>()
  readonly #onListenerError: (err: unknown, event: keyof Events) => void

  constructor(onListenerError?: (err: unknown, event: keyof Events) => void) {
    this.#onListenerError =
      onListenerError ??
      ((err) =>
        queueMicrotask(() => {
          throw err
        }))
  }

  /** Adds a listener; returns a function that removes it. */
  on<E extends keyof Events>(event: E, listener: Listener<Events[E]>): () => void {
    return this.#add(event, listener, false)
  }

  /** Adds a listener for the next event only; returns a function that removes it. */
  once<E extends keyof Events>(event: E, listener: Listener<Events[E]>): () => void {
    return this.#add(event, listener, true)
  }

  /** Removes a listener added with `on` or `once` (the first match). */
  off<E extends keyof Events>(event: E, listener: Listener<Events[E]>): void {
    const entries = this.#entries.get(event)
    const i = entries?.findIndex((e) => e.listener === listener) ?? -1
    if (i >= 0) this.#remove(event, (entries as Entry[])[i] as Entry)
  }

  listenerCount(event: keyof Events): number {
    return this.#entries.get(event)?.length ?? 0
  }

  /** Calls the listeners of `event` in the order they were added; false when there were none. */
  protected emit<E extends keyof Events>(event: E, value: Events[E]): boolean {
    const entries = this.#entries.get(event)
    if (!entries || entries.length === 0) return false
    for (const entry of entries.slice()) {
      if (entry.once) this.#remove(event, entry)
      try {
        ;(entry.listener as Listener<Events[E]>)(value)
      } catch (err) {
        this.#onListenerError(err, event)
      }
    }
    return true
  }

  #add(event: keyof Events, listener: Listener<never>, once: boolean): () => void {
    const entry: Entry = { listener, once }
    const entries = this.#entries.get(event)
    if (entries) entries.push(entry)
    else this.#entries.set(event, [entry])
    return () => this.#remove(event, entry)
  }

  #remove(event: keyof Events, entry: Entry): void {
    const entries = this.#entries.get(event)
    if (!entries) return
    const i = entries.indexOf(entry)
    if (i >= 0) entries.splice(i, 1)
    if (entries.length === 0) this.#entries.delete(event)
  }
}
