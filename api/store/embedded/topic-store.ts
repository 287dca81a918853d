import type { TopicStore } from '../../core/devices/device-store.js'
import type { AppId, RegId } from '../../core/model.js'
import type { Db } from './database.js'
import type { SqliteWriter } from './writer.js'

export class EmbeddedTopicStore implements TopicStore {
  readonly #w: SqliteWriter
  readonly #s

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
      removeAll: db.prepare('DELETE FROM topic_members WHERE reg_id = ?'),
    }
  }

  addTopics(appId: AppId, regId: RegId, topics: readonly string[], at: number): Promise<void> {
    return this.#w.commit(() => {
      for (const t of topics) this.#s.add.run(appId, t, regId, at)
    })
  }

  removeTopics(appId: AppId, regId: RegId, topics: readonly string[]): Promise<void> {
    return this.#w.commit(() => {
      for (const t of topics) this.#s.remove.run(appId, t, regId)
    })
  }

  async topicsOf(regId: RegId): Promise<string[]> {
    return this.#s.of.all(regId).map((r) => r.topic)
  }

  async countTopicMembers(appId: AppId, topic: string): Promise<number> {
    return this.#s.count.get(appId, topic)?.n ?? 0
  }

  removeAllOf(regId: RegId): Promise<void> {
    return this.#w.commit(() => {
      this.#s.removeAll.run(regId)
    })
  }
}
