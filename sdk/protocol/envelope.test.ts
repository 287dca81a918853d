import { describe, expect, it } from 'vitest'
import {
  decodeEnvelope,
  encodeEnvelope,
  type PushEnvelope,
  readEnvelopeExpiry,
  readEnvelopeId,
} from './envelope.js'
import type { MessageId } from './ids.js'

const envelope: PushEnvelope = {
  id: 'm0mwzr8tw1i7ugjfnbi7' as MessageId,
  expiresAt: 1_797_040_322_641,
  kind: 'notification',
  sentAt: 1_795_830_722_641,
  target: { type: 'alias', alias: 'a' },
  title: '标题 "quoted"',
  description: 'd',
  extra: { k: 'v' },
}

describe('envelope', () => {
  it('round-trips through JSON with id and expiresAt first', () => {
    const text = encodeEnvelope(envelope)
    expect(text.startsWith('{"id":"m0mwzr8tw1i7ugjfnbi7","expiresAt":1797040322641,')).toBe(true)
    expect(JSON.parse(text)).toEqual(envelope)
    expect(decodeEnvelope(Buffer.from(text))).toEqual(envelope)
  })

  it('reads id and expiry at fixed offsets without parsing', () => {
    const bytes = Buffer.from(encodeEnvelope(envelope))
    expect(readEnvelopeExpiry(bytes)).toBe(envelope.expiresAt)
    expect(readEnvelopeId(bytes)).toBe(envelope.id)
    // a plain Uint8Array (a browser's bytes), and a Buffer that is a view into a larger one
    expect(readEnvelopeId(new TextEncoder().encode(encodeEnvelope(envelope)))).toBe(envelope.id)
    const pool = Buffer.concat([Buffer.from('xxxx'), bytes])
    expect(readEnvelopeId(pool.subarray(4))).toBe(envelope.id)
  })

  it('does not mistake other payloads for envelopes', () => {
    for (const other of [
      '',
      'hello',
      '{"id":"x","expiresAt":1}',
      '{"id":"m0mwzr8tw1i7ugjfnbi7","expiresAt":17970403226x1,"kind":1}',
    ]) {
      expect(readEnvelopeExpiry(Buffer.from(other))).toBeUndefined()
      expect(readEnvelopeId(Buffer.from(other))).toBeUndefined()
    }
    expect(() => decodeEnvelope('{"id":"nope"}')).toThrow(/not an mqpush envelope/)
  })

  it('refuses what it cannot encode at fixed offsets', () => {
    expect(() => encodeEnvelope({ ...envelope, id: 'short' as MessageId })).toThrow(/message id/)
    expect(() => encodeEnvelope({ ...envelope, expiresAt: 5 })).toThrow(/13-digit/)
  })
})
