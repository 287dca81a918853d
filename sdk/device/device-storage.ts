/**
 * Where the device SDK keeps what must survive an app restart: the regId and token (so the
 * regId is kept, §4.2.2) and the ids of recently delivered messages (so a redelivery is not
 * shown twice). Values are strings; keys are namespaced by the SDK (`mqpush:<appId>:…`).
 *
 * Implementations: `MemoryStorage` (nothing survives), `LocalStorageStorage` (browsers),
 * `FileStorage` (Node, from `sdk/device/file-storage.js`). Any other backend (IndexedDB,
 * React Native AsyncStorage, a keychain) fits by implementing these three methods; all of them
 * pass the same contract suite, `storage.contract.ts`.
 */
export interface DeviceStorage {
  /** The value under `key`, or undefined when there is none. */
  get(key: string): Promise<string | undefined>
  /** Stores `value` under `key`; resolves once a later `get` (also after a restart) sees it. */
  set(key: string, value: string): Promise<void>
  /** Removes `key`; removing a missing key is not an error. */
  delete(key: string): Promise<void>
}
