import type { DeviceStorage } from './device-storage.js'

/** The part of the Web Storage API this adapter uses (`localStorage`, `sessionStorage`). */
export interface WebStorage {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
  removeItem(key: string): void
}

/**
 * Browsers: keeps the SDK's data in `localStorage` (or any Web Storage passed in), so a page
 * reload keeps the regId. Throws at construction when no Web Storage is available.
 */
export class LocalStorageStorage implements DeviceStorage {
  readonly #storage: WebStorage

  constructor(storage?: WebStorage) {
    const web = storage ?? (globalThis as { localStorage?: WebStorage }).localStorage
    if (!web) throw new TypeError('LocalStorageStorage: no localStorage in this environment')
    this.#storage = web
  }

  async get(key: string): Promise<string | undefined> {
    return this.#storage.getItem(key) ?? undefined
  }

  async set(key: string, value: string): Promise<void> {
    this.#storage.setItem(key, value)
  }

  async delete(key: string): Promise<void> {
    this.#storage.removeItem(key)
  }
}
