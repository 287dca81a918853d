import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { FileStorage } from './file-storage.js'
import { LocalStorageStorage, type WebStorage } from './local-storage-storage.js'
import { MemoryStorage } from './memory-storage.js'
import { describeDeviceStorage } from './storage.contract.js'

const dir = mkdtempSync(join(tmpdir(), 'mqpush-storage-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
let files = 0
const newFile = () => join(dir, `nested-${++files}`, 'device.json')

/** A Web Storage as browsers have it: strings only, null for a missing key. */
class FakeWebStorage implements WebStorage {
  readonly data = new Map<string, string>()
  getItem(key: string): string | null {
    return this.data.get(key) ?? null
  }
  setItem(key: string, value: string): void {
    this.data.set(key, String(value))
  }
  removeItem(key: string): void {
    this.data.delete(key)
  }
}

describeDeviceStorage('MemoryStorage', () => new MemoryStorage())

const webStorages = new WeakMap<LocalStorageStorage, FakeWebStorage>()
describeDeviceStorage(
  'LocalStorageStorage',
  () => {
    const web = new FakeWebStorage()
    const s = new LocalStorageStorage(web)
    webStorages.set(s, web)
    return s
  },
  (s) => new LocalStorageStorage(webStorages.get(s as LocalStorageStorage)),
)

describeDeviceStorage(
  'FileStorage',
  () => new FileStorage(newFile()),
  (s) => new FileStorage((s as FileStorage).path),
)

describe('LocalStorageStorage', () => {
  it('refuses to be built where there is no localStorage (Node 20)', () => {
    expect(() => new LocalStorageStorage()).toThrow(/no localStorage/)
  })
})

describe('FileStorage', () => {
  it('writes a file only its owner can read (it holds the device token)', async () => {
    const s = new FileStorage(newFile())
    await s.set('mqpush:registration', 'secret')
    expect(statSync(s.path).mode & 0o077).toBe(0)
    expect(JSON.parse(readFileSync(s.path, 'utf8'))).toEqual({ 'mqpush:registration': 'secret' })
  })

  it('treats a damaged file as empty, and replaces it on the next write', async () => {
    const path = join(dir, 'damaged.json')
    writeFileSync(path, '{"mqpush:a": "x", trunc')
    const s = new FileStorage(path)
    expect(await s.get('mqpush:a')).toBeUndefined()
    await s.set('mqpush:a', 'y')
    expect(await new FileStorage(path).get('mqpush:a')).toBe('y')
  })
})
