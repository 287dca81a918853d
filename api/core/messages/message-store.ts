import type { MessageFunnel } from '../../../sdk/protocol/responses.js'
import type { AppId, MessageId, MessageRecord, RegId } from '../model.js'

/** Storage of messages and their receipts (port). */
export interface MessageStore {
  /** Durable once the promise resolves: the message is accepted. */
  insertMessage(message: MessageRecord): Promise<void>
  getMessage(id: MessageId): Promise<MessageRecord | undefined>
  /**
   * The broker has the message; the funnel counts are final up to `valid`. Write-behind:
   * visible to `getMessage` at once, durable within milliseconds. A crash in between makes the
   * restart dispatch the message again (at least once, as MQTT QoS 1: same message id, which
   * devices drop as a duplicate).
   */
  markDispatched(id: MessageId, funnel?: Omit<MessageFunnel, 'delivered' | 'clicked'>): void
  /** Messages still `accepted` (not handed to the broker), oldest first. */
  listAccepted(limit: number): Promise<MessageRecord[]>
  /** Write-behind, idempotent per (message, device): counts each device once. */
  recordDelivered(messageId: MessageId, regId: RegId, at: number): void
  /**
   * Durable, idempotent: counts a click once per (message, device), and only for a device the
   * message was delivered to. Resolves true if the click was new.
   */
  recordClicked(messageId: MessageId, regId: RegId, at: number): Promise<boolean>
  /** Whether the message exists and belongs to the app. */
  messageBelongsTo(id: MessageId, appId: AppId): Promise<boolean>
  /** Deletes messages created before `before`, with their receipts; returns how many. */
  deleteMessagesBefore(before: number, limit: number): Promise<number>
}
