import type { TopicStore } from '../../core/devices/device-store.js'
import type { AppId, RegId } from '../../core/model.js'
import type { Db } from './database.js'
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
   * twice); forgotten when a write fails, so that the next answer counts again. Oldest first out
   * beyond TOPIC_COUNTS_CACHED.
   */
  readonly #counts = new Map<string, number>()

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
    let counted = false
    return this.#changing(
      topics.map((t) => keyOf(appId, t)),
      () => {
        for (const t of topics) {
          const added = this.#s.add.run(appId, t, regId, at).changes
          if (!counted) this.#count(keyOf(appId, t), added)
        }
        counted = true
      },
    )
  }

  removeTopics(appId: AppId, regId: RegId, topics: readonly string[]): Promise<void> {
    let counted = false
    return this.#changing(
      topics.map((t) => keyOf(appId, t)),
      () => {
        for (const t of topics) {
          const removed = this.#s.remove.run(appId, t, regId).changes
          if (!counted) this.#count(keyOf(appId, t), -removed)
        }
        counted = true
      },
    )
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
      if (this.#counts.size > TOPIC_COUNTS_CACHED) {
        this.#counts.delete(this.#counts.keys().next().value as string)
      }
    }
    return n
  }

  removeAllOf(regId: RegId): Promise<void> {
    let counted = false
    const touched: string[] = []
    return this.#changing(touched, () => {
      for (const row of this.#s.removeAll.all(regId)) {
        const key = keyOf(row.app_id as AppId, row.topic)
        if (!counted) {
          this.#count(key, -1)
          touched.push(key)
        }
      }
      counted = true
    })
  }

  /** Commits `op`; the counts of `keys` are forgotten if the commit fails. */
  async #changing(keys: readonly string[], op: () => void): Promise<void> {
    try {
      await this.#w.commit(op)
    } catch (err) {
      for (const key of keys) this.#counts.delete(key)
      throw err
    }
  }

  #count(key: string, delta: number): void {
    if (delta === 0) return
    const n = this.#counts.get(key)
    if (n !== undefined) this.#counts.set(key, n + delta)
  }
}

/** The cache key of a topic of an app (app ids hold no newline). */
const keyOf = (appId: AppId, topic: string) => `${appId}\n${topic}`
