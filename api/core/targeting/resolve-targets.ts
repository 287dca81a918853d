import type { SendStep } from '../messages/send-context.js'
import type { Delivery, RegId } from '../model.js'

/**
 * Resolve stage: turns the requested target into devices and counts `planned` and `invalid`.
 * Unicast targets become deliveries (deduplicated by device); topic and all stay one broadcast.
 */
export const resolveTargets: SendStep = async (ctx, deps) => {
  const { target, appId } = ctx
  ctx.deliveries = []
  ctx.broadcast = undefined
  if (target.regIds) {
    const asked = [...new Set(target.regIds)] as RegId[]
    const found = await deps.devices.filterActive(appId, asked)
    ctx.funnel.planned = asked.length
    ctx.funnel.invalid = asked.length - found.length
    ctx.deliveries = found.map((regId) => ({ regId, target: { type: 'regId' } }))
  } else if (target.aliases) {
    const asked = [...new Set(target.aliases)]
    const owners = await deps.aliases.resolveAliases(appId, asked)
    const active = await activeSet(deps, appId, [...owners.values()])
    const seen = new Set<RegId>()
    for (const alias of asked) {
      const regId = owners.get(alias)
      if (regId === undefined || !active.has(regId) || seen.has(regId)) continue
      seen.add(regId)
      ctx.deliveries.push({ regId, target: { type: 'alias', alias } })
    }
    ctx.funnel.planned = asked.length
    ctx.funnel.invalid = asked.filter((a) => !active.has(owners.get(a) as RegId)).length
  } else if (target.userAccounts) {
    const asked = [...new Set(target.userAccounts)]
    const members = await deps.aliases.resolveUserAccounts(appId, asked)
    const active = await activeSet(deps, appId, [...members.values()].flat())
    const seen = new Set<RegId>()
    let invalid = 0
    for (const account of asked) {
      const regIds = (members.get(account) ?? []).filter((r) => active.has(r))
      if (regIds.length === 0) invalid++
      for (const regId of regIds) {
        if (seen.has(regId)) continue
        seen.add(regId)
        const delivery: Delivery = { regId, target: { type: 'userAccount', userAccount: account } }
        ctx.deliveries.push(delivery)
      }
    }
    ctx.funnel.planned = asked.length
    ctx.funnel.invalid = invalid
  } else if (target.topic !== undefined) {
    ctx.broadcast = { type: 'topic', topic: target.topic }
    ctx.funnel.planned = await deps.topics.countTopicMembers(appId, target.topic)
    ctx.funnel.invalid = 0
  } else {
    ctx.broadcast = { type: 'all' }
    ctx.funnel.planned = await deps.devices.countActiveDevices(appId)
    ctx.funnel.invalid = 0
  }
}

async function activeSet(
  deps: Parameters<SendStep>[1],
  appId: Parameters<SendStep>[0]['appId'],
  regIds: RegId[],
): Promise<Set<RegId>> {
  if (regIds.length === 0) return new Set()
  return new Set(await deps.devices.filterActive(appId, [...new Set(regIds)]))
}
