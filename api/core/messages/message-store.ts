import type { MessageFunnel } from '../../../sdk/protocol/responses.js'
import type { AppId, MessageId, MessageRecord, RegId } from '../model.js'

/** Storage of messages and their receipts (port). */
export interface MessageStore {
  /** Durable once the promise resolves: the message is accepted. */
  insertMessage(message: MessageRecord): Promise<void>
  getMessage(id: MessageId): Promise<MessageRecord | undefined>
  /**
   * The broker has the message; `funnel`, when given, replaces the stored counts up to `valid`.
   * Write-behind: visible to `getMessage` at once, durable within milliseconds, never before
   * the broker's queue of the message (see Dispatcher). A crash in between leaves the message
   * accepted, and MessageService.recover dispatches it again, or only marks it when the
   * broker's packets of it survived.
   */
  markDispatched(id: MessageId, funnel?: Omit<MessageFunnel, 'delivered' | 'clicked'>): void
  /**
   * Recovery's reading: the messages still `accepted` (not handed to the broker, and not
   * marked dispatched since), in the order they were accepted, at most `limit` a page; `after`:
   * the `next` of the page before. A listing (its first page, without `after`) covers the
   * messages accepted before it began. Each one listed is to be dispatched or marked
   * dispatched (an adapter may keep track of it until it is).
   */
  listAccepted(limit: number, after?: number): Promise<AcceptedPage>
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

/** A page of `MessageStore.listAccepted`. */
export interface AcceptedPage {
  messages: MessageRecord[]
  /** Where the next page starts; absent after the last page. */
  next?: number
}
