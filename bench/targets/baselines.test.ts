import { describe, expect, it } from 'vitest'
import { encodeEnvelope } from '../../sdk/protocol/envelope.js'
import type { MessageId } from '../../sdk/protocol/ids.js'
import { envelopeLike } from './baselines.js'

describe('envelopeLike (MQPUSH_BENCH_ENVELOPE=1)', () => {
  const payloads = Array.from({ length: 100 }, (_, j) => `id=q${j}`)

  it('is as long as the envelope mqpush delivers for the same payload', () => {
    for (const payload of payloads) {
      const real = encodeEnvelope({
        id: 'm0mxd8v60ydjtlbfbgv1' as MessageId,
        expiresAt: 1_796_732_778_562,
        kind: 'passThrough',
        sentAt: 1_796_646_378_562,
        target: { type: 'regId' },
        payload,
      })
      expect(envelopeLike(payload).length).toBe(real.length)
    }
  })

  it('gives every payload an id of its own, where the load workers read it', () => {
    const ids = payloads.map((p) => /"id":"([^"]+)"/.exec(envelopeLike(p))?.[1])
    expect(new Set(ids).size).toBe(payloads.length)
  })

  it('refuses a payload it cannot match in length', () => {
    expect(() => envelopeLike('x'.repeat(20))).toThrow(/short plain payload/)
    expect(() => envelopeLike('a"b')).toThrow(/short plain payload/)
  })
})
