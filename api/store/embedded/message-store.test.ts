import { describe, expect, it } from 'vitest'
import type { MessageId, RegId } from '../../core/model.js'
import { openEmbeddedStore } from './index.js'

/** An in-memory store holding one dispatched message to `planned` devices. */
async function storeWithMessage(planned: number, onWriteError: (err: unknown) => void) {
  const store = openEmbeddedStore({ dataDir: ':memory:', onWriteError })
  const id = 'm000000001aaaaaaaaaa' as MessageId
  await store.messages.insertMessage({
    id,
    appId: 'ap00000000000001' as never,
    targetType: 'regId',
    target: { regIds: [] },
    content: { kind: 'passThrough', payload: 'p' },
    createdAt: 1_800_000_000_000,
    expiresAt: 1_800_000_600_000,
    state: 'dispatched',
    funnel: { planned, invalid: 0, filtered: 0, valid: planned, delivered: 0, clicked: 0 },
  })
  return { store, id }
}

describe('EmbeddedMessageStore receipts', () => {
  it('keeps the receipts of a batch that another op rolled back', async () => {
    const { store, id } = await storeWithMessage(2, () => {})
    store.messages.recordDelivered(id, 'A'.repeat(22) as RegId, 1)
    // an op of the same batch breaks a constraint: the batch is rolled back and run op by op
    const clash = store.messages.insertMessage({ ...(await store.messages.getMessage(id))! })
    store.messages.recordDelivered(id, 'B'.repeat(22) as RegId, 2)
    await expect(clash).rejects.toThrow(/UNIQUE/)
    await store.writer.commit(() => {})
    expect((await store.messages.getMessage(id))?.funnel.delivered).toBe(2)
    await store.close()
  })

  it('writes the receipts that come after a failed batch', async () => {
    // found in review: the failed batch stayed the one later receipts were added to
    const errors: unknown[] = []
    const { store, id } = await storeWithMessage(3, (e) => errors.push(e))
    store.writer.later(() => {
      throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' })
    })
    store.messages.recordDelivered(id, 'A'.repeat(22) as RegId, 1)
    store.writer.flush()
    expect(errors.length).toBeGreaterThan(0)
    store.messages.recordDelivered(id, 'B'.repeat(22) as RegId, 2)
    store.messages.recordDelivered(id, 'C'.repeat(22) as RegId, 3)
    await store.writer.commit(() => {})
    // A went with the failed batch (reported); B and C are counted
    expect((await store.messages.getMessage(id))?.funnel.delivered).toBe(2)
    await store.close()
  })
})
