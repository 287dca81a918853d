import type { DeviceStorage } from './device-storage.js'

/** Keeps everything in memory: a restart of the app starts from nothing (a new regId). */
export class MemoryStorage implements DeviceStorage {
  readonly #data = new Map<string, string>()

  async get(key: string): Promise<string | undefined> {
    return this.#data.get(key)
  }

  async set(key: string, value: string): Promise<void> {
    this.#data.set(key, value)
  }

  async delete(key: string): Promise<void> {
    this.#data.delete(key)
  }
}
