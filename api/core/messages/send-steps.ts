import { encodeEnvelope, type EnvelopeTarget } from '../../../sdk/protocol/envelope.js'
import { filterTargets } from '../targeting/filter-targets.js'
import { resolveTargets } from '../targeting/resolve-targets.js'
import type { RegId } from '../model.js'
import { type SendContext, type SendDeps, type SendStep, toRecord } from './send-context.js'

/**
 * Persist stage: the message is accepted once this commit is durable. The commit is queued
 * here and awaited by the dispatch step, before the message goes to the broker: a device
 * never gets a message that was not accepted, and recovery finds every message the broker
 * may have lost in a crash still marked accepted.
 */
export const persistMessage: SendStep = async (ctx, deps) => {
  if (!ctx.isNew) return
  const persisted = deps.messages.insertMessage(toRecord(ctx))
  // handled where it is awaited; this keeps a failure from counting as unhandled meanwhile
  persisted.catch(() => {})
  ctx.persisted = persisted
}

/**
 * Pace stage: decides when the message leaves. Today everything leaves now; scheduled pushes
 * (§4.3.5) and smooth pushes (§4.3.9) will hand the message to a job here instead.
 */
export const paceMessage: SendStep = async (ctx) => {
  ctx.sendNow = true
}

/** Dispatch stage: hands the message to the broker, then records it as dispatched. */
export const dispatchMessage: SendStep = async (ctx, deps) => {
  if (!ctx.sendNow) {
    await ctx.persisted
    return
  }
  await ctx.persisted
  await handToBroker(ctx, deps)
  // a new message's row was written after the filter step, with these very counts; a recovered
  // one was resolved again, so its counts are written anew. Queued after the broker's enqueue:
  // the store makes the mark durable with or after the broker's queue (see Dispatcher)
  deps.messages.markDispatched(ctx.id, ctx.isNew ? undefined : ctx.funnel)
}

async function handToBroker(ctx: SendContext, deps: SendDeps): Promise<void> {
  if (ctx.broadcast?.type === 'topic') {
    await deps.dispatcher.toTopic(ctx.appId, ctx.broadcast.topic, payloadFor(ctx, ctx.broadcast))
  } else if (ctx.broadcast?.type === 'all') {
    await deps.dispatcher.toAll(ctx.appId, payloadFor(ctx, ctx.broadcast))
  } else if (ctx.deliveries.length > 0) {
    // one encoding per distinct envelope target: all regId pushes share one buffer
    const byTarget = new Map<string, Buffer>()
    const packets: Array<{ regId: RegId; payload: Buffer }> = []
    for (const d of ctx.deliveries) {
      const key = JSON.stringify(d.target)
      let payload = byTarget.get(key)
      if (!payload) {
        payload = payloadFor(ctx, d.target)
        byTarget.set(key, payload)
      }
      packets.push({ regId: d.regId, payload })
    }
    await deps.dispatcher.toDevices(ctx.appId, packets)
  }
}

function payloadFor(ctx: SendContext, target: EnvelopeTarget): Buffer {
  return Buffer.from(
    encodeEnvelope({
      id: ctx.id,
      expiresAt: ctx.expiresAt,
      kind: ctx.content.kind,
      sentAt: ctx.createdAt,
      target,
      ...withoutKind(ctx.content),
    }),
  )
}

function withoutKind(content: SendContext['content']) {
  const { kind: _kind, ...rest } = content
  return rest
}

/** The pipeline of a new message, in order (STYLE rule 5: steps as data). */
export const SEND_STEPS: readonly SendStep[] = [
  resolveTargets,
  filterTargets,
  persistMessage,
  paceMessage,
  dispatchMessage,
]
