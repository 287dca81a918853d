import { afterEach, describe, expect, it } from 'vitest'
import type { AppId, RegId } from '../../core/model.js'
import { openEmbeddedStore } from './index.js'

const APP = 'A0000000000000000001' as AppId
const regId = (i: number) => `R${String(i).padStart(21, '0')}` as RegId

describe('EmbeddedTopicStore member counts', () => {
  const store = () =>
    openEmbeddedStore({
      dataDir: ':memory:',
      onWriteError: (err) => {
        throw err
      },
    })
  let s: ReturnType<typeof store>
  afterEach(() => s.close())

  it('answers a counted topic from memory, kept by every change of membership', async () => {
    s = store()
    for (let i = 1; i <= 3; i++) await s.topics.addTopics(APP, regId(i), ['news'], 1)
    expect(await s.topics.countTopicMembers(APP, 'news')).toBe(3)
    // a row gone behind the store's back: the count is not read again from the table
    s.db.prepare('DELETE FROM topic_members WHERE reg_id = ?').run(regId(3))
    expect(await s.topics.countTopicMembers(APP, 'news')).toBe(3)
    s.db.prepare('INSERT INTO topic_members VALUES (?, ?, ?, ?)').run(APP, 'news', regId(3), 1)

    await s.topics.addTopics(APP, regId(4), ['news', 'sports'], 2)
    await s.topics.addTopics(APP, regId(4), ['news'], 3) // already a member: no change
    expect(await s.topics.countTopicMembers(APP, 'news')).toBe(4)
    await s.topics.removeTopics(APP, regId(1), ['news', 'weather']) // not in weather
    expect(await s.topics.countTopicMembers(APP, 'news')).toBe(3)
    expect(await s.topics.countTopicMembers(APP, 'sports')).toBe(1)
    await s.topics.removeAllOf(regId(4))
    expect(await s.topics.countTopicMembers(APP, 'news')).toBe(2)
    expect(await s.topics.countTopicMembers(APP, 'sports')).toBe(0)
    // what the table says
    const counted = s.db
      .prepare('SELECT count(*) AS n FROM topic_members WHERE app_id = ? AND topic = ?')
      .get(APP, 'news') as { n: number }
    expect(counted.n).toBe(2)
  })

  /** A store with `news` counted at one member, whose writes for regId(2) fail (a trigger). */
  const countedOneThenRefuseTwo = async () => {
    s = store()
    await s.topics.addTopics(APP, regId(1), ['news'], 1)
    expect(await s.topics.countTopicMembers(APP, 'news')).toBe(1)
    s.db.exec(`CREATE TRIGGER refuse BEFORE INSERT ON topic_members
      WHEN NEW.reg_id = '${regId(2)}' BEGIN SELECT RAISE(ABORT, 'refused'); END`)
  }

  it('counts again after a change that failed', async () => {
    await countedOneThenRefuseTwo()
    // a failing write: the member is not added, and the kept count is not trusted any more
    await expect(s.topics.addTopics(APP, regId(2), ['news'], 2)).rejects.toThrow('refused')
    s.db.prepare('DELETE FROM topic_members WHERE reg_id = ?').run(regId(1))
    expect(await s.topics.countTopicMembers(APP, 'news')).toBe(0)
  })

  it('counts a change once when the writer runs it again after another op broke a constraint', async () => {
    await countedOneThenRefuseTwo()
    // one batch: the second op rolls it back, and the writer runs the first one again
    const added = s.topics.addTopics(APP, regId(3), ['news'], 2)
    const refused = s.topics.addTopics(APP, regId(2), ['sports'], 2)
    await expect(refused).rejects.toThrow('refused')
    await added
    expect(await s.topics.countTopicMembers(APP, 'news')).toBe(2)
  })
})
