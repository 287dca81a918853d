import { isMessageId } from '../../../sdk/protocol/ids.js'
import type { Clock } from '../clock.js'
import type { MessageStore } from '../messages/message-store.js'
import type { AppId, MessageId, RegId } from '../model.js'

export interface ReceiptServiceDeps {
  messages: MessageStore
  clock: Clock
}

/** Receipts: a device acknowledged (delivered) or opened (clicked) a message. */
export class ReceiptService {
  readonly #d: ReceiptServiceDeps

  constructor(deps: ReceiptServiceDeps) {
    this.#d = deps
  }

  /** The device PUBACKed the message; write-behind, counted once per device. */
  delivered(messageId: MessageId, regId: RegId): void {
    this.#d.messages.recordDelivered(messageId, regId, this.#d.clock.now())
  }

  /**
   * The user opened the notification. Counted once per device and only for a message of the
   * device's app that was delivered to it; anything else is ignored. Resolves when durable.
   */
  async clicked(appId: AppId, regId: RegId, messageId: string): Promise<boolean> {
    if (!isMessageId(messageId)) return false
    if (!(await this.#d.messages.messageBelongsTo(messageId, appId))) return false
    return this.#d.messages.recordClicked(messageId, regId, this.#d.clock.now())
  }
}
