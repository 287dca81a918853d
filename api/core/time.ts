/** ISO 8601 for API answers; `null` for a time that never happened. */
export function isoTime(t: number): string
export function isoTime(t: number | undefined): string | null
export function isoTime(t: number | undefined): string | null {
  return t === undefined ? null : new Date(t).toISOString()
}
