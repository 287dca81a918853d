import type { SendStep } from '../messages/send-context.js'

/**
 * Filter stage: drops devices that do not meet the message's conditions and counts them as
 * `filtered` (§5.2.4). Conditions (app version, model, locale, network, quiet hours) arrive with
 * their issues; until then every resolved device passes, and `valid` is what resolve found.
 */
export const filterTargets: SendStep = async (ctx) => {
  ctx.funnel.filtered = 0
  ctx.funnel.valid = ctx.broadcast ? ctx.funnel.planned : ctx.deliveries.length
}
