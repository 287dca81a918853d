import type { Aedes } from 'aedes'
import type { AppId, RegId } from '../sdk/protocol/ids.js'
import { appTopic, broadcastTopic, inboxTopic } from '../sdk/protocol/topics.js'

/**
 * The core's Dispatcher port: QoS 1 publishes to device inboxes, app topics and the app-wide
 * topic. aedes queues a copy for every persistent subscriber (online or not) before delivering,
 * and calls back once that is durable and the online deliveries are written.
 */
export function createDispatcher(aedes: Aedes) {
  const publish = (topic: string, payload: Buffer) =>
    new Promise<void>((resolve, reject) => {
      aedes.publish(
        { cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false },
        (err?: Error) => (err ? reject(err) : resolve()),
      )
    })

  return {
    async toDevices(
      appId: AppId,
      packets: ReadonlyArray<{ regId: RegId; payload: Buffer }>,
    ): Promise<void> {
      await Promise.all(packets.map((p) => publish(inboxTopic(appId, p.regId), p.payload)))
    },
    toTopic(appId: AppId, topic: string, payload: Buffer): Promise<void> {
      return publish(appTopic(appId, topic), payload)
    },
    toAll(appId: AppId, payload: Buffer): Promise<void> {
      return publish(broadcastTopic(appId), payload)
    },
  }
}
