import { describe, expect, it } from 'vitest'
import type { AppId, RegId } from './ids.js'
import { isValidName, utf8Bytes, charCount } from './names.js'
import { appTopic, broadcastTopic, inboxTopic, parseTopic, upstreamTopic } from './topics.js'

const app = 'ap0123456789abcd' as AppId
const reg = 'A1b2C3d4E5f6G7h8I9j0Kl' as RegId

describe('topics', () => {
  it('builds and parses every topic of the scheme', () => {
    expect(parseTopic(inboxTopic(app, reg))).toEqual({ type: 'inbox', appId: app, regId: reg })
    expect(parseTopic(broadcastTopic(app))).toEqual({ type: 'all', appId: app })
    expect(parseTopic(appTopic(app, '新闻'))).toEqual({ type: 'topic', appId: app, topic: '新闻' })
    expect(parseTopic(upstreamTopic(app, reg, 'click'))).toEqual({
      type: 'upstream',
      appId: app,
      regId: reg,
      report: 'click',
    })
  })

  it('parses nothing else', () => {
    for (const t of [
      'mqp',
      'mqp/ap0123456789abcd',
      `mqp/${app}/d/short`,
      `mqp/${app}/d/${reg}/x`,
      `mqp/${app}/all/x`,
      `mqp/${app}/t/+`,
      `mqp/${app}/t/#`,
      `mqp/${app}/t/a/b`,
      `mqp/${app}/up/${reg}/other`,
      `mqp/${app}/x`,
      `other/${app}/all`,
      'mqp/APP/all',
      '$SYS/x',
    ]) {
      expect(parseTopic(t)).toBeUndefined()
    }
  })
})

describe('names', () => {
  it('accepts 1–128 characters without separators, wildcards, control characters or a leading $', () => {
    expect(isValidName('news')).toBe(true)
    expect(isValidName('user@example.com')).toBe(true)
    expect(isValidName('字'.repeat(128))).toBe(true)
    for (const bad of ['', 'a/b', 'a+b', 'a#', '$sys', 'tab\there', '字'.repeat(129), 5]) {
      expect(isValidName(bad)).toBe(false)
    }
  })

  it('counts characters as the spec does and bytes as UTF-8 does', () => {
    expect(charCount('a字😀')).toBe(3)
    expect(utf8Bytes('a字😀é')).toBe(Buffer.byteLength('a字😀é'))
    expect(utf8Bytes('\ud800x')).toBe(Buffer.byteLength('\ud800x'))
  })
})
