import type { Aedes } from 'aedes'
import { readEnvelopeId } from '../sdk/protocol/envelope.js'
import type { AppId, RegId } from '../sdk/protocol/ids.js'
import { appTopic, broadcastTopic, inboxTopic } from '../sdk/protocol/topics.js'
import type { BrokerPersistence } from './ports.js'

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * The core's Dispatcher port: QoS 1 publishes to device inboxes, app topics and the app-wide
 * topic. A publish counts as done once aedes has queued it for every persistent subscriber
 * (online or not) — not once the online deliveries are written, so a device that stops reading
 * its socket cannot hold up anybody's push. Queued durably, or, with a persistence that has
 * `enqueueRecoverable` (the embedded store), recoverably: the message pipeline only calls the
 * dispatcher for a message that is durably accepted, and marks it dispatched after this, so
 * a crash before the queue is durable leaves the message for MessageService.recover.
 *
 * The persistence reports each durable enqueue; the packet is recognised by its payload Buffer,
 * which aedes passes through untouched. Each publish gets its own Buffer object over the same
 * bytes (no copy), so that publishes of one payload to many inboxes stay apart.
 */
export function createDispatcher(aedes: Aedes, persistence: BrokerPersistence) {
  const waiting = new Map<Buffer, () => void>()
  const enqueue = persistence.outgoingEnqueueCombi.bind(persistence)
  const recoverable = persistence.enqueueRecoverable?.bind(persistence) ?? enqueue
  persistence.outgoingEnqueueCombi = async (subs: unknown[], packet: any) => {
    // only the dispatcher's own publishes are recoverable; an MQTT client's are not
    const done = waiting.get(packet.payload)
    await (done ? recoverable : enqueue)(subs, packet)
    done?.()
  }

  const publish = (topic: string, bytes: Buffer) =>
    new Promise<void>((resolve, reject) => {
      const payload = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
      const done = (err?: Error) => {
        if (!waiting.delete(payload)) return
        if (err) reject(err)
        else resolve()
      }
      waiting.set(payload, done)
      aedes.publish({ cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false }, done)
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
    queuedMessageIds(): Set<string> {
      const ids = new Set<string>()
      for (const payload of persistence.queuedPayloads?.() ?? []) {
        const id = readEnvelopeId(payload)
        if (id) ids.add(id)
      }
      return ids
    },
  }
}
