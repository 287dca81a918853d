import { describe, expect, it } from 'vitest'
import { RecentMap } from './recent-map.js'

describe('RecentMap', () => {
  it('keeps what was set or read lately, at most two generations, null included', () => {
    const m = new RecentMap<string, number | null>(3)
    m.set('a', 1)
    m.set('b', null)
    expect(m.get('a')).toBe(1)
    expect(m.get('b')).toBeNull()
    m.set('c', 3) // the generation is full: a, b, c become the previous one
    m.set('d', 4)
    expect(m.held).toBe(4)
    // read from the previous generation: copied into the current one
    expect(m.get('a')).toBe(1)
    m.set('e', 5) // current (d, a, e) full: the previous (with b and c) is dropped
    expect(m.get('b')).toBeUndefined()
    expect(m.get('c')).toBeUndefined()
    expect([m.get('a'), m.get('d'), m.get('e')]).toEqual([1, 4, 5])
    expect(m.held).toBeLessThanOrEqual(6)
  })

  it('answers the newest value of a key, and forgets a deleted key in both generations', () => {
    const m = new RecentMap<string, number>(2)
    m.set('k', 1)
    m.set('x', 0) // k is now in the previous generation
    m.set('k', 2) // and the new value in the current one
    expect(m.get('k')).toBe(2)
    m.set('y', 0) // rotation: the previous (k=1) dropped, k=2 kept
    expect(m.get('k')).toBe(2)
    m.delete('k')
    expect(m.get('k')).toBeUndefined()
  })

  it('never holds more than two generations, whatever is set', () => {
    const m = new RecentMap<number, number>(100)
    for (let i = 0; i < 10_000; i++) {
      m.set(i, i)
      expect(m.held).toBeLessThanOrEqual(200)
    }
    expect(m.get(9_999)).toBe(9_999)
    expect(m.get(0)).toBeUndefined()
  })

  it('refuses a generation of no entries', () => {
    expect(() => new RecentMap(0)).toThrow(RangeError)
  })
})
