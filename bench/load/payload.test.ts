import { describe, expect, it } from 'vitest'
import { encodeEnvelope } from '../../sdk/protocol/envelope.js'
import type { MessageId } from '../../sdk/protocol/ids.js'
import { envelopeLike } from '../targets/baselines.js'
import { isExpiredMark, messageIdOf, sendTimeOf } from './payload.js'

// What the worker read with regular expressions over the decoded payload until the
// twenty-fourth session: the byte readers must read the same.
const ID_RE = /"id":"([^"]+)"/
const T_RE = /t=(\d+(?:\.\d+)?)/
const byRegex = (payload: Buffer) => {
  const text = payload.toString()
  const t = T_RE.exec(text)
  return {
    id: ID_RE.exec(text)?.[1] ?? text.slice(0, 64),
    sentAt: t ? Number(t[1]) : undefined,
    expired: text.includes('expired=1'),
  }
}
const byBytes = (payload: Buffer) => ({
  id: messageIdOf(payload),
  sentAt: sendTimeOf(payload),
  expired: isExpiredMark(payload),
})

const envelope = (payload: string, id = 'm0123456789abcdefghi') =>
  Buffer.from(
    encodeEnvelope({
      id: id as MessageId,
      kind: 'passThrough',
      sentAt: 1_765_000_000_000,
      expiresAt: 1_800_000_000_000,
      target: { type: 'regId' },
      payload,
    }),
  )

describe('a load worker’s payload readers', () => {
  it('read what the regular expressions read, from mqpush’s envelopes and bare payloads', () => {
    const payloads = [
      envelope('t=123456789.123456'),
      envelope('t=42'),
      envelope('id=q17'),
      envelope('expired=1'),
      envelope('closed loop'),
      Buffer.from(envelopeLike('t=98765.4321')),
      Buffer.from('t=98765.4321'),
      Buffer.from('id=q3'),
      Buffer.from('expired=1'),
      Buffer.from('x'.repeat(100)),
      Buffer.from(''),
    ]
    for (const p of payloads) expect(byBytes(p), p.toString()).toEqual(byRegex(p))
    expect(messageIdOf(envelope('t=1', 'mzyxwvutsrqponmlkjih'))).toBe('mzyxwvutsrqponmlkjih')
    expect(sendTimeOf(envelope('t=123456789.123456'))).toBe(123456789.123456)
  })

  it('read the first match as the expressions do, past near misses', () => {
    const cases = [
      'at=x t=5', // a "t=" without digits first
      't=12. t=3', // no digits after the dot: the integer part (Number reads "12." so too)
      't=1.5.6',
      '"id":"" "id":"second"', // an empty id is no match
      '"id":"id":"x"', // an id that reads like the opening
      '"id":"unclosed',
      'é"id":"ü"t=7', // multibyte text around
      'expired=0 expired=1',
      'expired=0',
      'expired=',
      't=',
      'é'.repeat(40), // a bare id of 64 characters, not 64 bytes
      'x'.repeat(63) + 'é' + 'y',
      'x'.repeat(63) + '😀', // a surrogate pair cut as slice cuts it
      'ü'.repeat(100),
    ]
    for (const c of cases) {
      const p = Buffer.from(c)
      expect(byBytes(p), c).toEqual(byRegex(p))
    }
  })

  it('read the same from random text made of the patterns’ pieces', () => {
    const pieces = ['t=', '"id":"', '"', '1', '9', '.', 'expired=1', 'expired=', '0', 'x', ' ', 'é']
    let seed = 7
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31)
    for (let n = 0; n < 2000; n++) {
      const len = next() % 12
      const text = Array.from({ length: len }, () => pieces[next() % pieces.length]).join('')
      const p = Buffer.from(text)
      expect(byBytes(p), text).toEqual(byRegex(p))
    }
  })
})
