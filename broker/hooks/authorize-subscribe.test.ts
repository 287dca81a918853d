import { describe, expect, it } from 'vitest'
import type { AppId, RegId } from '../../sdk/protocol/ids.js'
import { appTopic, broadcastTopic, inboxTopic, parseTopic } from '../../sdk/protocol/topics.js'
import type { DeviceSession } from '../ports.js'
import { maySubscribe } from './authorize-subscribe.js'

/** The rule by parsing alone: what maySubscribe answered before its shortcut. */
function byParsing(session: DeviceSession, topic: string): boolean {
  const t = parseTopic(topic)
  if (!t || t.appId !== session.appId) return false
  if (t.type === 'inbox') return t.regId === session.regId
  return t.type === 'all' || t.type === 'topic'
}

const APP = 'ap0000000000000a' as AppId
const OTHER_APP = 'ap0000000000000b' as AppId
const REG = 'AAAAAAAAAAAAAAAAAAAAAA' as RegId
const OTHER_REG = 'AAAAAAAAAAAAAAAAAAAAAB' as RegId
const session: DeviceSession = { appId: APP, regId: REG, prefix: `mqp/${APP}/` }

describe('maySubscribe', () => {
  it('answers as the topic scheme says, its own inbox and broadcast topic without parsing', () => {
    const prefix = session.prefix
    const topics = [
      inboxTopic(APP, REG),
      broadcastTopic(APP),
      appTopic(APP, 'news'),
      inboxTopic(APP, OTHER_REG),
      inboxTopic(OTHER_APP, REG),
      broadcastTopic(OTHER_APP),
      appTopic(OTHER_APP, 'news'),
      // the shortcut's lengths and ends, with the wrong middle
      `${prefix}xll`,
      `${prefix}all/`,
      `${prefix}al`,
      `${prefix}t/${REG}`,
      `${prefix}x/${REG}`,
      `${prefix}dx${REG}`,
      `${prefix}d/${REG}/x`,
      `${prefix}d/x${REG}`,
      `${prefix}d/${REG.slice(1)}A`,
      `${prefix}d/+`,
      `${prefix}#`,
      `${prefix}d/#`,
      `mqp/${APP}`,
      `mqp/${APP}/up/${REG}/click`,
      `x${prefix}all`,
      '',
    ]
    const answers = topics.map((t) => maySubscribe(session, t))
    expect(answers).toEqual(topics.map((t) => byParsing(session, t)))
    expect(answers.slice(0, 3)).toEqual([true, true, true])
    // another device's inbox, and anything of another app
    expect(answers.slice(3, 7)).toEqual([false, false, false, false])
  })
})
