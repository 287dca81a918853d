import { setTimeout } from 'node:timers/promises'
import { ErrorCode } from '../../../sdk/protocol/error-codes.js'
import { isoTime } from '../time.js'
import { isMessageId } from '../../../sdk/protocol/ids.js'
import { DEFAULT_TTL_MS } from '../../../sdk/protocol/limits.js'
import type { MessageStatus, PushResponse } from '../../../sdk/protocol/responses.js'
import type { ParsedPushRequest } from '../../../sdk/protocol/schemas.js'
import { ApiError } from '../errors.js'
import { newMessageId } from '../ids.js'
import type { AppId, MessageContent, MessageRecord } from '../model.js'
import { type SendContext, type SendDeps, targetTypeOf, withReceiptCounts } from './send-context.js'
import { SEND_STEPS } from './send-steps.js'

/** Messages: send through the pipeline, report status and funnel, recover after a crash. */
export class MessageService {
  readonly #deps: SendDeps

  constructor(deps: SendDeps) {
    this.#deps = deps
  }

  async send(appId: AppId, request: ParsedPushRequest): Promise<PushResponse> {
    const now = this.#deps.clock.now()
    const ttlMs = request.ttlSeconds !== undefined ? request.ttlSeconds * 1000 : DEFAULT_TTL_MS
    const ctx: SendContext = {
      id: newMessageId(now),
      appId,
      target: request.target,
      targetType: targetTypeOf(request.target),
      content: contentOf(request),
      createdAt: now,
      expiresAt: now + ttlMs,
      funnel: { planned: 0, invalid: 0, filtered: 0, valid: 0 },
      deliveries: [],
      broadcast: undefined,
      isNew: true,
      sendNow: false,
    }
    for (const step of SEND_STEPS) await step(ctx, this.#deps)
    return {
      messageId: ctx.id,
      state: ctx.sendNow ? 'dispatched' : 'accepted',
      expiresAt: isoTime(ctx.expiresAt),
      funnel: withReceiptCounts(ctx.funnel),
    }
  }

  async status(appId: AppId, id: string): Promise<MessageStatus> {
    const m = isMessageId(id) ? await this.#deps.messages.getMessage(id) : undefined
    if (!m || m.appId !== appId) throw new ApiError(ErrorCode.MESSAGE_NOT_FOUND)
    return {
      messageId: m.id,
      appId: m.appId,
      kind: m.content.kind,
      targetType: m.targetType,
      ...(m.target.topic !== undefined && { topic: m.target.topic }),
      state: m.state,
      createdAt: isoTime(m.createdAt),
      expiresAt: isoTime(m.expiresAt),
      expired: m.expiresAt <= this.#deps.clock.now(),
      funnel: m.funnel,
    }
  }

  /**
   * Hands to the broker the messages that were accepted but not dispatched when the process
   * stopped (a crash between the two: the broker's queue of a message is never durable later
   * than its dispatched mark, see Dispatcher). Expired ones are only marked, and so are those
   * whose packets the broker still holds: their mark was lost, not their dispatch. A message
   * some device had already received is delivered to it again with the same id (devices drop
   * ids they have seen; its receipt counts once). Returns how many were sent.
   */
  async recover(): Promise<number> {
    let sent = 0
    const now = this.#deps.clock.now()
    const queued = this.#deps.dispatcher.queuedMessageIds()
    let after: number | undefined
    for (;;) {
      const page = await this.#deps.messages.listAccepted(100, after)
      for (const m of page.messages) {
        if (m.expiresAt <= now || queued.has(m.id)) {
          this.#deps.messages.markDispatched(m.id)
          continue
        }
        const ctx = contextOf(m)
        // resolve again (the store may have changed), then dispatch; the record exists already
        for (const step of SEND_STEPS) await step(ctx, this.#deps)
        sent++
      }
      if (page.next === undefined) return sent
      after = page.next
      // a turn of the event loop between pages (the service listens only once this is done)
      await setTimeout(1)
    }
  }
}

function contentOf(r: ParsedPushRequest): MessageContent {
  const c: MessageContent = { kind: r.kind }
  if (r.title !== undefined) c.title = r.title
  if (r.description !== undefined) c.description = r.description
  if (r.payload !== undefined) c.payload = r.payload
  if (r.extra !== undefined) c.extra = r.extra
  if (r.notifyId !== undefined) c.notifyId = r.notifyId
  if (r.notifyType !== undefined) c.notifyType = r.notifyType
  return c
}

function contextOf(m: MessageRecord): SendContext {
  return {
    id: m.id,
    appId: m.appId,
    target: m.target,
    targetType: m.targetType,
    content: m.content,
    createdAt: m.createdAt,
    expiresAt: m.expiresAt,
    funnel: { planned: 0, invalid: 0, filtered: 0, valid: 0 },
    deliveries: [],
    broadcast: undefined,
    isNew: false,
    sendNow: false,
  }
}
