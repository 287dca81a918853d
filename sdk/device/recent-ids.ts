/**
 * The ids of the last `capacity` messages handed to the app, oldest first. The device SDK
 * checks every incoming message against it and keeps it in storage, so a QoS 1 redelivery
 * (after a lost PUBACK, a reconnect or an app restart) is not shown twice.
 */
export class RecentIds {
  readonly capacity: number
  readonly #set = new Set<string>()
  #order: string[] = []

  constructor(capacity: number, ids: Iterable<string> = []) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`RecentIds: capacity must be a positive integer, got ${capacity}`)
    }
    this.capacity = capacity
    for (const id of ids) this.add(id)
  }

  has(id: string): boolean {
    return this.#set.has(id)
  }

  /** Remembers `id`, forgetting the oldest beyond capacity; false when it was already known. */
  add(id: string): boolean {
    if (this.#set.has(id)) return false
    this.#set.add(id)
    this.#order.push(id)
    if (this.#order.length > this.capacity) {
      const dropped = this.#order.splice(0, this.#order.length - this.capacity)
      for (const old of dropped) this.#set.delete(old)
    }
    return true
  }

  toArray(): string[] {
    return this.#order.slice()
  }
}
