import type { TopicStore } from '../../core/devices/device-store.js'
import type { AppId, RegId } from '../../core/model.js'
import type { Db } from './database.js'
import { RecentMap } from './recent-map.js'
import type { SqliteWriter } from './writer.js'

/** How many (app, topic) member counts the store keeps once counted. */
export const TOPIC_COUNTS_CACHED = 10_000

export class EmbeddedTopicStore implements TopicStore {
  readonly #w: SqliteWriter
  readonly #s
  /**
   * Members per (app, topic), once counted: a push to a topic sets its `planned` without a count
   * over the topic's members (~20 ms at 500000, on the event loop). Kept by the ops that change
   * membership, in the writer's order (an op run again in the writer's retry does not count
   * twice); forgotten when a write fails, so that the next answer counts again. The latest used
   * TOPIC_COUNTS_CACHED at least, twice as many at most (`RecentMap`).
   */
  readonly #counts = new RecentMap<string, number>(TOPIC_COUNTS_CACHED)

  constructor(db: Db, writer: SqliteWriter) {
    this.#w = writer
    this.#s = {
      add: db.prepare(
        `INSERT INTO topic_members (app_id, topic, reg_id, subscribed_at) VALUES (?, ?, ?, ?)
         ON CONFLICT DO NOTHING`,
      ),
      remove: db.prepare('DELETE FROM topic_members WHERE app_id = ? AND topic = ? AND reg_id = ?'),
      of: db.prepare<[string], { topic: string }>(
        'SELECT topic FROM topic_members WHERE reg_id = ?',
      ),
      count: db.prepare<[string, string], { n: number }>(
        'SELECT count(*) AS n FROM topic_members WHERE app_id = ? AND topic = ?',
      ),
      removeAll: db.prepare<[string], { app_id: string; topic: string }>(
        'DELETE FROM topic_members WHERE reg_id = ? RETURNING app_id, topic',
      ),
    }
  }

  addTopics(appId: AppId, regId: RegId, topics: readonly string[], at: number): Promise<void> {
    const keys = topics.map((t) => keyOf(appId, t))
    return this.#changing(keys, (count) => {
      topics.forEach((t, i) =>
        count(keys[i] as string, this.#s.add.run(appId, t, regId, at).changes),
      )
    })
  }

  removeTopics(appId: AppId, regId: RegId, topics: readonly string[]): Promise<void> {
    const keys = topics.map((t) => keyOf(appId, t))
    return this.#changing(keys, (count) => {
      topics.forEach((t, i) =>
        count(keys[i] as string, -this.#s.remove.run(appId, t, regId).changes),
      )
    })
  }

  async topicsOf(regId: RegId): Promise<string[]> {
    return this.#s.of.all(regId).map((r) => r.topic)
  }

  async countTopicMembers(appId: AppId, topic: string): Promise<number> {
    const key = keyOf(appId, topic)
    let n = this.#counts.get(key)
    if (n === undefined) {
      n = this.#s.count.get(appId, topic)?.n ?? 0
      this.#counts.set(key, n)
    }
    return n
  }

  removeAllOf(regId: RegId): Promise<void> {
    return this.#changing([], (count) => {
      for (const row of this.#s.removeAll.all(regId))
        count(keyOf(row.app_id as AppId, row.topic), -1)
    })
  }

  /**
   * Commits `op`, which reports each change of a count. The changes are applied to the kept
   * counts the first time the op runs (the writer may run it again after a rollback); if the
   * commit fails, the counts of `keys` and those the op changed are forgotten.
   */
  async #changing(
    keys: readonly string[],
    op: (count: (key: string, delta: number) => void) => void,
  ): Promise<void> {
    let first = true
    const changed = [...keys]
    const count = (key: string, delta: number) => {
      if (!first || delta === 0) return
      changed.push(key)
      const n = this.#counts.get(key)
      if (n !== undefined) this.#counts.set(key, n + delta)
    }
    try {
      await this.#w.commit(() => {
        op(count)
        first = false
      })
    } catch (err) {
      for (const key of changed) this.#counts.delete(key)
      throw err
    }
  }
}

/** The cache key of a topic of an app (app ids hold no newline). */
const keyOf = (appId: AppId, topic: string) => `${appId}\n${topic}`
