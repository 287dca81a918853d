/**
 * Two builds' rounds compared pair by pair. `npm run bench:ab` runs round i of each build back
 * to back (in alternating order), so the two figures of a pair met the same moment of the
 * machine; their ratio cancels most of what the moment did to both. What this gives, without
 * assuming any distribution: the median of the pairs' ratios, an interval for it from the
 * ratios' order statistics (the sign test's interval for a median), and the sign test itself
 * (how likely a split at least this uneven would be if neither build were lower).
 */
export interface PairedComparison {
  /** Pairs with both figures finite and a baseline above 0 (the others are left out). */
  pairs: number
  /** Pairs where this build's figure is lower than the baseline's, and higher. */
  lower: number
  higher: number
  /** Median over the pairs of this build's figure ÷ the baseline's. */
  medianRatio: number
  /** An interval for that median (order statistics of the ratios)… */
  low: number
  high: number
  /** …and how often such an interval holds the true median: ≥ 0.95 from 6 pairs on. */
  confidence: number
  /** Two-sided sign test over the pairs that differ (1 when none does). */
  p: number
}

/** P(X ≤ k) for X ~ Binomial(n, 1/2). */
export function binomialHalfCdf(n: number, k: number): number {
  if (k < 0) return 0
  if (k >= n) return 1
  // terms C(n, i) / 2^n built up in logs: exact enough for any n a bench runs
  let logTerm = -n * Math.LN2 // i = 0
  let sum = Math.exp(logTerm)
  for (let i = 1; i <= k; i++) {
    logTerm += Math.log((n - i + 1) / i)
    sum += Math.exp(logTerm)
  }
  return Math.min(1, sum)
}

/**
 * `baseline[i]` and `current[i]` are round i of each build. Undefined when no pair has both
 * figures.
 */
export function comparePaired(
  baseline: readonly number[],
  current: readonly number[],
): PairedComparison | undefined {
  const ratios: number[] = []
  let lower = 0
  let higher = 0
  const n = Math.min(baseline.length, current.length)
  for (let i = 0; i < n; i++) {
    const b = baseline[i] as number
    const c = current[i] as number
    if (!Number.isFinite(b) || !Number.isFinite(c) || b <= 0) continue
    ratios.push(c / b)
    if (c < b) lower++
    else if (c > b) higher++
  }
  const m = ratios.length
  if (m === 0) return undefined
  ratios.sort((x, y) => x - y)
  const mid = Math.floor(m / 2)
  const medianRatio =
    m % 2 === 1
      ? (ratios[mid] as number)
      : ((ratios[mid - 1] as number) + (ratios[mid] as number)) / 2
  // the k-th smallest and k-th largest ratios hold the median with probability
  // 1 - 2 P(X ≤ k - 1): the largest k that keeps that at 95 % (k = 1, the extremes, up to 8
  // pairs; under 6 pairs even they hold it with less than 95 %)
  let k = 1
  while (k + 1 <= Math.ceil(m / 2) && 2 * binomialHalfCdf(m, k) <= 0.05) k++
  const differing = lower + higher
  return {
    pairs: m,
    lower,
    higher,
    medianRatio,
    low: ratios[k - 1] as number,
    high: ratios[m - k] as number,
    confidence: 1 - 2 * binomialHalfCdf(m, k - 1),
    p: differing === 0 ? 1 : Math.min(1, 2 * binomialHalfCdf(differing, Math.min(lower, higher))),
  }
}

/** The confidence from which an interval that leaves out 1× tells two builds apart. */
export const PAIRED_CONFIDENCE = 0.95

/**
 * One line for a figure: e.g. `CPU per message: 0.85× (0.81×–0.90×, 97 % interval), lower in 10
 * of 10 pairs, higher in 0; sign test p = 0.002: these rounds tell the builds apart`; when the
 * interval holds 1×, that they do not; under 6 pairs (no interval reaches 95 %), that there
 * are too few pairs to tell.
 */
export function describePaired(figure: string, c: PairedComparison | undefined): string {
  if (!c) return `${figure}: no pairs to compare`
  // two decimals, or three where two would round a bound that is not 1 onto 1.00
  const x = (v: number) => `${v.toFixed(v !== 1 && v.toFixed(2) === '1.00' ? 3 : 2)}×`
  const pct = `${Math.floor(c.confidence * 100)} %`
  const p = c.p < 0.001 ? '< 0.001' : c.p.toFixed(3)
  const verdict =
    c.confidence < PAIRED_CONFIDENCE
      ? 'too few pairs to tell the builds apart'
      : c.low > 1 || c.high < 1
        ? 'these rounds tell the builds apart'
        : 'these rounds do not tell the builds apart'
  return (
    `${figure}: ${x(c.medianRatio)} (${x(c.low)}–${x(c.high)}, ${pct} interval), ` +
    `lower in ${c.lower} of ${c.pairs} pairs, higher in ${c.higher}; sign test p = ${p}: ${verdict}`
  )
}
