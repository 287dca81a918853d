import type { MessageFunnel, TargetType } from '../../../sdk/protocol/responses.js'
import type { Target } from '../../../sdk/protocol/schemas.js'
import type { Clock } from '../clock.js'
import type { AliasStore, DeviceStore, TopicStore } from '../devices/device-store.js'
import type { Logger } from '../logger.js'
import type { AppId, Delivery, MessageContent, MessageId, MessageRecord } from '../model.js'
import type { Dispatcher } from './dispatcher.js'
import type { MessageStore } from './message-store.js'

/** Everything a send step may use. */
export interface SendDeps {
  devices: DeviceStore
  aliases: AliasStore
  topics: TopicStore
  messages: MessageStore
  dispatcher: Dispatcher
  clock: Clock
  log: Logger
}

/** The state of one message travelling through the pipeline; each step fills in its part. */
export interface SendContext {
  id: MessageId
  appId: AppId
  target: Target
  targetType: TargetType
  content: MessageContent
  createdAt: number
  expiresAt: number
  /** Counted by the steps: planned and invalid by resolve, filtered by filter, valid after. */
  funnel: Omit<MessageFunnel, 'delivered' | 'clicked'>
  /** Unicast: one entry per device that will get the message. */
  deliveries: Delivery[]
  /** Topic and all pushes are handed to the broker as one publish. */
  broadcast: { type: 'topic'; topic: string } | { type: 'all' } | undefined
  /** False when recovering a message that is already stored. */
  isNew: boolean
  /** Set by the pace step: the message leaves now. Scheduled and smooth pushes will clear it. */
  sendNow: boolean
  /** The commit of a new message's row, queued by the persist step. */
  persisted?: Promise<void> | undefined
}

/** A stage of the delivery pipeline (ARCHITECTURE: resolve → filter → pace → broker). */
export type SendStep = (ctx: SendContext, deps: SendDeps) => Promise<void>

export function targetTypeOf(target: Target): TargetType {
  if (target.regIds) return 'regId'
  if (target.aliases) return 'alias'
  if (target.userAccounts) return 'userAccount'
  if (target.topic !== undefined) return 'topic'
  return 'all'
}

export function toRecord(ctx: SendContext): MessageRecord {
  return {
    id: ctx.id,
    appId: ctx.appId,
    targetType: ctx.targetType,
    target: ctx.target,
    content: ctx.content,
    createdAt: ctx.createdAt,
    expiresAt: ctx.expiresAt,
    state: 'accepted',
    funnel: withReceiptCounts(ctx.funnel),
  }
}

/**
 * A message's whole funnel: the steps' counts, and the receipts' at zero. Written out key by key
 * (the ESLint rule on spreads explains why): `{ ...funnel, delivered: 0, clicked: 0 }`, here and
 * in the push's answer, gave every push four hidden classes of its own, which V8 allocates in the
 * old generation — with their descriptors 42 % of the service's old-generation garbage under a
 * push load (docs/benchmarks-log.md, sixteenth session).
 */
export function withReceiptCounts(f: SendContext['funnel']): MessageFunnel {
  return {
    planned: f.planned,
    invalid: f.invalid,
    filtered: f.filtered,
    valid: f.valid,
    delivered: 0,
    clicked: 0,
  }
}
