import { describe, expect, it } from 'vitest'
import type { DeviceStorage } from './device-storage.js'

/**
 * The behaviour every DeviceStorage must have (STYLE rule 3), run once per adapter.
 * `reopen` gives a second instance over the same data, as after an app restart; adapters that
 * keep nothing across instances (MemoryStorage) pass undefined.
 */
export function describeDeviceStorage(
  name: string,
  create: () => DeviceStorage,
  reopen?: (storage: DeviceStorage) => DeviceStorage,
): void {
  describe(`DeviceStorage contract: ${name}`, () => {
    it('returns undefined for a key never set', async () => {
      expect(await create().get('mqpush:missing')).toBeUndefined()
    })

    it('returns what was set, overwrites, and deletes', async () => {
      const s = create()
      await s.set('mqpush:a', 'one')
      await s.set('mqpush:b', '{"json":["kept as is"]}')
      expect(await s.get('mqpush:a')).toBe('one')
      await s.set('mqpush:a', 'two')
      expect(await s.get('mqpush:a')).toBe('two')
      await s.delete('mqpush:a')
      expect(await s.get('mqpush:a')).toBeUndefined()
      expect(await s.get('mqpush:b')).toBe('{"json":["kept as is"]}')
    })

    it('deleting a missing key is not an error', async () => {
      await expect(create().delete('mqpush:never')).resolves.toBeUndefined()
    })

    it('keeps the empty string apart from a missing key', async () => {
      const s = create()
      await s.set('mqpush:empty', '')
      expect(await s.get('mqpush:empty')).toBe('')
    })

    it('keeps the last of concurrent writes', async () => {
      const s = create()
      await Promise.all(Array.from({ length: 20 }, (_, i) => s.set('mqpush:n', String(i))))
      expect(await s.get('mqpush:n')).toBe('19')
    })

    if (reopen) {
      it('a new instance over the same data sees what was stored', async () => {
        const s = create()
        await s.set('mqpush:kept', 'yes')
        await s.set('mqpush:gone', 'no')
        await s.delete('mqpush:gone')
        const again = reopen(s)
        expect(await again.get('mqpush:kept')).toBe('yes')
        expect(await again.get('mqpush:gone')).toBeUndefined()
      })
    }
  })
}
