import { describe, expect, it } from 'vitest'
import { binomialHalfCdf, comparePaired, describePaired } from './paired.js'

describe('binomialHalfCdf', () => {
  it('sums the binomial terms of a fair coin', () => {
    expect(binomialHalfCdf(10, 0)).toBeCloseTo(1 / 1024, 12)
    expect(binomialHalfCdf(10, 1)).toBeCloseTo(11 / 1024, 12)
    expect(binomialHalfCdf(10, 2)).toBeCloseTo(56 / 1024, 12)
    expect(binomialHalfCdf(10, 5)).toBeCloseTo(638 / 1024, 12)
    expect(binomialHalfCdf(10, 10)).toBe(1)
    expect(binomialHalfCdf(10, -1)).toBe(0)
    // large n stays finite and symmetric
    expect(binomialHalfCdf(1000, 499) + binomialHalfCdf(1000, 500)).toBeCloseTo(1, 9)
  })
})

describe('comparePaired', () => {
  it('finds a build lower in every pair apart, with the sign test and an interval below 1', () => {
    const baseline = [40, 42, 38, 45, 41, 39, 44, 40, 43, 42]
    const current = baseline.map((b, i) => b * (0.8 + i * 0.012))
    const c = comparePaired(baseline, current)
    expect(c).toBeDefined()
    expect(c?.pairs).toBe(10)
    expect(c?.lower).toBe(10)
    expect(c?.higher).toBe(0)
    expect(c?.p).toBeCloseTo(2 / 1024, 9)
    // ratios 0.800 … 0.908: median 0.854; ten pairs: the 2nd and 9th ratios, 97.85 %
    expect(c?.medianRatio).toBeCloseTo(0.854, 9)
    expect(c?.low).toBeCloseTo(0.812, 9)
    expect(c?.high).toBeCloseTo(0.896, 9)
    expect(c?.confidence).toBeCloseTo(1 - 22 / 1024, 9)
    expect(describePaired('CPU per message', c)).toBe(
      'CPU per message: 0.85× (0.81×–0.90×, 97 % interval), lower in 10 of 10 pairs, higher in 0; ' +
        'sign test p = 0.002: these rounds tell the builds apart',
    )
  })

  it('does not tell apart builds whose pairs split both ways', () => {
    const baseline = [30, 36, 35, 40, 33, 38, 31, 37, 34, 39]
    const current = [34, 33, 37, 36, 35, 34, 33, 38, 32, 41]
    const c = comparePaired(baseline, current)
    expect(c?.lower).toBe(4)
    expect(c?.higher).toBe(6)
    expect(c?.low).toBeLessThan(1)
    expect(c?.high).toBeGreaterThan(1)
    expect(c?.p).toBeCloseTo(2 * (386 / 1024), 9)
    expect(describePaired('drain time', c)).toMatch(/these rounds do not tell the builds apart$/)
  })

  it('pairs rounds by their index, not by their order of size', () => {
    // sorted, the two would look alike; pair by pair, the second is always 10 % higher
    const baseline = [10, 50, 20, 40, 30, 60]
    const current = [11, 55, 22, 44, 33, 66]
    const c = comparePaired(baseline, current)
    expect(c?.higher).toBe(6)
    expect(c?.low).toBeCloseTo(1.1, 9)
    expect(c?.high).toBeCloseTo(1.1, 9)
  })

  it('leaves out pairs without both figures, or with a baseline of 0, and counts ties neither way', () => {
    const c = comparePaired([10, NaN, 0, 20, 30, 40], [10, 5, 7, 18, Number.NaN, 44])
    expect(c?.pairs).toBe(3)
    expect(c?.lower).toBe(1)
    expect(c?.higher).toBe(1)
    expect(c?.medianRatio).toBe(1)
    expect(comparePaired([NaN], [1])).toBeUndefined()
    expect(describePaired('p99.8', undefined)).toBe('p99.8: no pairs to compare')
    const same = comparePaired([5, 5, 5], [5, 5, 5])
    expect(same?.p).toBe(1)
  })

  it('widens the interval to the extremes when there are too few pairs for 95 %', () => {
    const c = comparePaired([10, 10, 10, 10, 10], [8, 9, 7, 9.5, 8.5])
    expect(c?.low).toBe(0.7)
    expect(c?.high).toBe(0.95)
    expect(c?.confidence).toBeCloseTo(1 - 2 / 32, 9)
    // the interval leaves out 1×, but at 93 %: not enough to say
    expect(describePaired('CPU', c)).toBe(
      'CPU: 0.85× (0.70×–0.95×, 93 % interval), lower in 5 of 5 pairs, higher in 0; ' +
        'sign test p = 0.063: too few pairs to tell the builds apart',
    )
    // one or two pairs: no interval worth the name
    expect(describePaired('CPU', comparePaired([10, 10], [12, 13]))).toMatch(
      /\(1\.20×–1\.30×, 50 % interval\).*too few pairs to tell the builds apart$/,
    )
  })

  it('prints a bound that rounds to 1.00× with three decimals, not as 1', () => {
    const baseline = [100, 100, 100, 100, 100, 100, 100, 100, 100, 100]
    const current = [90, 91, 92, 93, 94, 95, 96, 97, 99.8, 99.9]
    const c = comparePaired(baseline, current)
    expect(c?.high).toBeCloseTo(0.998, 9)
    expect(describePaired('CPU', c)).toContain('(0.91×–0.998×, 97 % interval)')
    expect(describePaired('CPU', c)).toMatch(/these rounds tell the builds apart$/)
  })
})
