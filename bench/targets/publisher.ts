import { connectLite, type LiteClient } from '../load/mqtt-lite.js'

/** A plain MQTT publisher for the baselines (QoS 1, waits for each PUBACK in a window). */
export async function openPublisher(host: string, port: number): Promise<LiteClient> {
  const c = connectLite({
    host,
    port,
    clientId: `bench-publisher-${process.pid}-${Date.now()}`,
    clean: true,
    onMessage() {},
  })
  await c.connected
  return c
}

/** Publishes with up to `window` unacknowledged messages in flight. */
export async function publishAll(
  c: LiteClient,
  items: Array<{ topic: string; payload: string }>,
  window = 256,
): Promise<void> {
  let next = 0
  const run = async () => {
    while (next < items.length) {
      const it = items[next++]!
      await c.publish(it.topic, it.payload)
    }
  }
  await Promise.all(Array.from({ length: Math.min(window, items.length) }, run))
}
