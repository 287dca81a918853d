import type { AppId, RegId } from './ids.js'
import { isAppId, isRegId } from './ids.js'
import { isValidName } from './names.js'

/**
 * The MQTT topic scheme of mqpush. Every topic string of the project is built here.
 *
 * | topic                              | direction        | who                                     |
 * |------------------------------------|------------------|-----------------------------------------|
 * | `mqp/{appId}/d/{regId}`            | service → device | the device's inbox (regId, alias, userAccount pushes) |
 * | `mqp/{appId}/all`                  | service → device | every device of the app (§4.2.1: the default topic) |
 * | `mqp/{appId}/t/{topic}`            | service → device | devices subscribed to an app topic      |
 * | `mqp/{appId}/up/{regId}/{report}`  | device → service | the device's upstream reports (`click`) |
 *
 * The inbox and the broadcast topic are subscribed for the device by the service at registration,
 * so a plain MQTT client that connects with `clean=false` receives without subscribing.
 */
export const TOPIC_ROOT = 'mqp'

export const UPSTREAM_REPORTS = ['click'] as const
export type UpstreamReport = (typeof UPSTREAM_REPORTS)[number]

export function inboxTopic(appId: AppId, regId: RegId): string {
  return `${TOPIC_ROOT}/${appId}/d/${regId}`
}

export function broadcastTopic(appId: AppId): string {
  return `${TOPIC_ROOT}/${appId}/all`
}

export function appTopic(appId: AppId, topic: string): string {
  return `${TOPIC_ROOT}/${appId}/t/${topic}`
}

export function upstreamTopic(appId: AppId, regId: RegId, report: UpstreamReport): string {
  return `${TOPIC_ROOT}/${appId}/up/${regId}/${report}`
}

export type ParsedTopic =
  | { type: 'inbox'; appId: AppId; regId: RegId }
  | { type: 'all'; appId: AppId }
  | { type: 'topic'; appId: AppId; topic: string }
  | { type: 'upstream'; appId: AppId; regId: RegId; report: UpstreamReport }

/**
 * Parses a concrete topic (no wildcards) of the scheme above; anything else is `undefined`.
 * Used by the broker's ACL, so it is strict: a malformed id or name does not parse.
 */
export function parseTopic(topic: string): ParsedTopic | undefined {
  const parts = topic.split('/')
  if (parts[0] !== TOPIC_ROOT || parts.length < 3) return undefined
  const appId = parts[1]
  if (!isAppId(appId)) return undefined
  switch (parts[2]) {
    case 'd':
      return parts.length === 4 && isRegId(parts[3])
        ? { type: 'inbox', appId, regId: parts[3] }
        : undefined
    case 'all':
      return parts.length === 3 ? { type: 'all', appId } : undefined
    case 't': {
      // topic names cannot contain '/', so exactly four levels
      return parts.length === 4 && isValidName(parts[3])
        ? { type: 'topic', appId, topic: parts[3] }
        : undefined
    }
    case 'up': {
      const report = parts[4]
      return parts.length === 5 &&
        isRegId(parts[3]) &&
        (UPSTREAM_REPORTS as readonly string[]).includes(report ?? '')
        ? { type: 'upstream', appId, regId: parts[3], report: report as UpstreamReport }
        : undefined
    }
    default:
      return undefined
  }
}
