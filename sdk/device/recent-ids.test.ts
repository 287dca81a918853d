import { describe, expect, it } from 'vitest'
import { RecentIds } from './recent-ids.js'

describe('RecentIds', () => {
  it('tells a new id from a known one', () => {
    const r = new RecentIds(3)
    expect(r.add('a')).toBe(true)
    expect(r.add('a')).toBe(false)
    expect(r.has('a')).toBe(true)
    expect(r.has('b')).toBe(false)
  })

  it('forgets the oldest ids beyond its capacity', () => {
    const r = new RecentIds(2, ['a', 'b'])
    r.add('c')
    expect(r.toArray()).toEqual(['b', 'c'])
    expect(r.has('a')).toBe(false)
    expect(r.add('a')).toBe(true)
  })

  it('keeps the last ids of a longer starting list, without duplicates', () => {
    expect(new RecentIds(3, ['a', 'b', 'a', 'c', 'd']).toArray()).toEqual(['b', 'c', 'd'])
  })

  it('refuses a capacity that is not a positive integer', () => {
    expect(() => new RecentIds(0)).toThrow(RangeError)
    expect(() => new RecentIds(1.5)).toThrow(RangeError)
  })
})
