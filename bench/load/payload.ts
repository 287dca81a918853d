/**
 * What a load worker reads off a delivered payload, read from its bytes: the message's id, the
 * send time `t=` it carries, and the expired mark. Until the twenty-fourth session the worker
 * decoded every payload into a string (an mqpush envelope is a few hundred bytes) and ran
 * regular expressions over it, and the id it kept for each message seen was a slice of that
 * string (V8 may keep a slice's whole parent alive). Read off the bytes, a message costs the
 * worker its id's few dozen bytes. With the workers collecting before the fixed rate's warm-up
 * (`WorkerPool.reset`: their devices were promoted inside the slices, 26–55 ms of CPU each), their
 * scavenges in the slices took 1–8 ms (docs/benchmarks-log.md, twenty-fourth session).
 */

const ID_OPEN = Buffer.from('"id":"')
const T_OPEN = Buffer.from('t=')
const EXPIRED = Buffer.from('expired=1')
/** A bare broker's payload is its own id, up to this many characters (as `text.slice(0, 64)`). */
const BARE_ID_CHARS = 64
/** Bytes that hold BARE_ID_CHARS characters whatever they are (at most 3 bytes a UTF-16 unit). */
const BARE_ID_BYTES = 3 * BARE_ID_CHARS
const QUOTE = 0x22
const DOT = 0x2e

const isDigit = (b: number | undefined) => b !== undefined && b >= 0x30 && b <= 0x39

/**
 * The message's id: its envelope's `"id":"…"` (mqpush, or a bare broker's payload with
 * `MQPUSH_BENCH_ENVELOPE`), else the payload's first 64 characters (a bare broker's own
 * payload, which is unique per message). A fresh string of the id alone.
 */
export function messageIdOf(payload: Buffer): string {
  let at = payload.indexOf(ID_OPEN)
  while (at >= 0) {
    const from = at + ID_OPEN.length
    const to = payload.indexOf(QUOTE, from)
    if (to < 0) break
    if (to > from) return payload.toString('utf8', from, to)
    at = payload.indexOf(ID_OPEN, at + 1)
  }
  return payload
    .toString('utf8', 0, Math.min(BARE_ID_BYTES, payload.length))
    .slice(0, BARE_ID_CHARS)
}

/**
 * The send time of the first `t=<digits>[.<digits>]` in the payload, in the clock's ms
 * (`stampClock`); undefined when it carries none.
 */
export function sendTimeOf(payload: Buffer): number | undefined {
  let at = payload.indexOf(T_OPEN)
  while (at >= 0) {
    const from = at + T_OPEN.length
    let end = from
    while (isDigit(payload[end])) end++
    if (end > from) {
      if (payload[end] === DOT && isDigit(payload[end + 1])) {
        end++
        while (isDigit(payload[end])) end++
      }
      return Number(payload.toString('latin1', from, end))
    }
    at = payload.indexOf(T_OPEN, at + 1)
  }
  return undefined
}

/** Whether the payload carries the offline scenario's `expired=1` mark. */
export function isExpiredMark(payload: Buffer): boolean {
  return payload.indexOf(EXPIRED) >= 0
}
