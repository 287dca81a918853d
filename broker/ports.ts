/**
 * What the broker needs from the rest of mqpush (STYLE rule 2: the consumer declares its ports;
 * adapters satisfy them structurally and only api/main.ts wires them). Nothing here imports api/.
 */

/** A connected device, as the broker keeps it on the client. */
export interface DeviceSession {
  appId: string
  regId: string
  /** `mqp/{appId}/`: every topic the device may receive starts with it. */
  prefix: string
}

export interface BrokerLogger {
  error(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  debug(obj: object, msg?: string): void
}

export interface BrokerDeps {
  /**
   * The device with this regId and token in this app, or undefined when they do not match.
   * `valid: false` is a device whose regId was invalidated (a stale device, not a guess).
   */
  authenticateDevice(
    appId: string,
    regId: string,
    token: string,
  ): Promise<{ appId: string; regId: string; valid: boolean } | undefined>
  /** App topics (names) the device is subscribed to, as the core records them. */
  topicsOf(regId: string): Promise<string[]>
  /** Topic membership changes, reported before they take effect in the broker. */
  membership: {
    subscribed(appId: string, regId: string, topics: string[]): Promise<void>
    unsubscribed(appId: string, regId: string, topics: string[]): Promise<void>
  }
  receipts: {
    /** The device acknowledged the message (PUBACK); write-behind. */
    delivered(messageId: string, regId: string): void
    /** The device reported a click; resolves once durable. */
    clicked(appId: string, regId: string, messageId: string): Promise<boolean>
  }
  presence: {
    connected(regId: string): void
    disconnected(regId: string): void
  }
  /** Failed authentications by client address. */
  authFailures: {
    isLimited(address: string): boolean
    record(address: string): void
  }
  clock: { now(): number }
  log: BrokerLogger
}

/**
 * The aedes persistence the broker runs on (embedded SQLite, Redis…). Beyond the aedes
 * interface the broker uses optional extensions when present.
 */
export interface BrokerPersistence {
  setup(broker: unknown): Promise<void>
  addSubscriptions(client: { id: string }, subs: unknown[]): Promise<unknown>
  removeSubscriptions(client: { id: string }, topics: string[]): Promise<unknown>
  cleanSubscriptions(client: { id: string }): Promise<unknown>
  subscriptionsByClient(client: { id: string }): Promise<Array<{ topic: string; qos: number }>>
  outgoingStream(client: { id: string }): AsyncIterable<unknown>
  outgoingUpdate(client: { id: string }, packet: unknown): Promise<unknown>
  outgoingClearMessageId(client: { id: string }, packet: unknown): Promise<unknown>
  outgoingEnqueueCombi(subs: unknown[], packet: unknown): Promise<unknown>
  /**
   * Extension: an enqueue its publisher recovers by itself after a crash (the message
   * pipeline's publishes: see the embedded persistence), so it need not be durable at once.
   */
  enqueueRecoverable?(subs: unknown[], packet: unknown): Promise<unknown>
  /** Extension: forget a client entirely (subscriptions, queue, incoming, will). */
  dropClient?(clientId: string): Promise<void>
  /**
   * Extension: a client's queue as `outgoingStream` would stream it, as an array (each packet a
   * copy of its own): lets the broker write a reconnecting device's queue at once. A persistence
   * that has it must record `outgoingUpdate` and `outgoingClearMessageId` when called (their
   * promises only report): the queue's head is written before they settle
   * (`broker/queue-head.ts`).
   */
  outgoingSnapshot?(client: { id: string }): unknown[]
  /** Extension: the payloads of every packet still queued for some client. */
  queuedPayloads?(): Iterable<Buffer>
  /**
   * Extension, the three together: clients whose session may be behind the core's record of
   * their topics. `markUnsettled` resolves once the mark is durable (it comes before the core's
   * write of a membership change); `settle` drops it (write-behind: a mark lost in a crash only
   * costs one reconcile more); `isUnsettled` answers from memory. With them the broker
   * reconciles only marked sessions at a connect; without them, every session at every connect.
   */
  markUnsettled?(clientId: string): Promise<void>
  settle?(clientId: string): void
  isUnsettled?(clientId: string): boolean
}
