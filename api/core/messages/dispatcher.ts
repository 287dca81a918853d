import type { AppId, RegId } from '../model.js'

/**
 * What the core needs from the broker to deliver (port). Payloads are encoded envelopes; the
 * broker publishes them with QoS 1. Every promise resolves once the packets are queued for
 * online and offline devices alike: durably, or recoverably — so that the message store's
 * `markDispatched`, called after, is never durable before the queue is (the embedded store
 * writes both in its writer's deferred lane). Called only for durably accepted messages.
 */
export interface Dispatcher {
  toDevices(appId: AppId, packets: ReadonlyArray<{ regId: RegId; payload: Buffer }>): Promise<void>
  toTopic(appId: AppId, topic: string, payload: Buffer): Promise<void>
  toAll(appId: AppId, payload: Buffer): Promise<void>
  /**
   * Ids of the messages that still have packets queued for some device. At start, a message
   * stored as accepted but found here was dispatched before a crash (its dispatched mark was
   * write-behind), so it must not be dispatched again.
   */
  queuedMessageIds(): Set<string>
}

/**
 * The broker sessions of devices (port). Topic membership changes go through the broker, which
 * reports every subscription change back to the core (TopicStore) before it takes effect, so a
 * device SUBSCRIBE and a server-side subscribe follow the same path.
 */
export interface SessionManager {
  /** Gives a new regId its session: inbox and app-wide subscriptions, so pushes queue from now. */
  openSession(appId: AppId, regId: RegId): Promise<void>
  /** Subscribes the device to app topics, online or offline; resolves once recorded. */
  subscribe(appId: AppId, regId: RegId, topics: readonly string[]): Promise<void>
  unsubscribe(appId: AppId, regId: RegId, topics: readonly string[]): Promise<void>
  /** The regId became invalid: disconnect it and drop its session and queued packets. */
  closeSession(regId: RegId): Promise<void>
  isOnline(regId: RegId): boolean
}
