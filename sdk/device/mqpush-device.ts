import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt'
import { MqpushApiError } from '../protocol/api-error.js'
import { type ClickReport, decodeEnvelope, type PushEnvelope } from '../protocol/envelope.js'
import { ErrorCode } from '../protocol/error-codes.js'
import type { DeviceInfo } from '../protocol/responses.js'
import type { DeviceAttributes, DeviceTopics, RegisterRequest } from '../protocol/schemas.js'
import { DeviceApi } from './device-api.js'
import type { DeviceStorage } from './device-storage.js'
import { MemoryStorage } from './memory-storage.js'
import { RecentIds } from './recent-ids.js'
import { TypedEmitter } from './typed-emitter.js'

/** Wait between two connection attempts; short enough for a phone coming out of a tunnel. */
export const DEFAULT_RECONNECT_PERIOD_MS = 2_000
/** MQTT keepalive; well under the service's default maximum (1800 s) and NAT idle timeouts. */
export const DEFAULT_KEEPALIVE_SECONDS = 60
/** Longest wait before registering again when even fresh credentials keep being refused. */
export const MAX_REREGISTER_BACKOFF_MS = 5 * 60_000
/** A connection attempt without CONNACK within this time is abandoned and retried. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000
/** Message ids remembered against redelivery: far more than can be in flight at once. */
export const DEFAULT_DEDUPE_WINDOW = 1_000
/** An HTTP call of the device API that takes longer fails with a TimeoutError. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000

export interface MqpushDeviceOptions {
  /** Base URL of the HTTP API, e.g. `https://push.example.com`. */
  apiUrl: string
  /** The broker: `mqtt://`, `mqtts://`, or `ws://` / `wss://` (`…/mqtt`, browsers). */
  mqttUrl: string
  appId: string
  appKey: string
  /** Sent at registration; used by targeting filters (app version, model, locale…). */
  attributes?: DeviceAttributes
  /**
   * An id of the physical device that survives a reinstall (Android ID, IDFV…). A fresh
   * registration with the same one invalidates the previous regId, as a reinstall does.
   */
  installationId?: string
  /** Where the regId, token and recent message ids are kept. Default: `MemoryStorage`. */
  storage?: DeviceStorage
  /** Default `DEFAULT_RECONNECT_PERIOD_MS`. */
  reconnectPeriodMs?: number
  /** Default `DEFAULT_KEEPALIVE_SECONDS`. */
  keepaliveSeconds?: number
  /** Default `DEFAULT_CONNECT_TIMEOUT_MS`. */
  connectTimeoutMs?: number
  /** How many recent message ids are remembered against redelivery. Default 1000. */
  dedupeWindow?: number
  /** Default `DEFAULT_REQUEST_TIMEOUT_MS`. */
  requestTimeoutMs?: number
  /** A `fetch` to use instead of the global one. */
  fetch?: typeof fetch
}

/** The device has a regId. */
export interface RegisteredEvent {
  regId: string
  /** True when the cached regId was kept (§4.2.2). */
  renewed: boolean
  /**
   * Set when the regId changed: the service no longer accepted this one (unregistered,
   * inactive for too long, a reinstall). Its aliases, userAccounts and topics are gone with it;
   * tell your server the new regId and set them again.
   */
  previousRegId?: string
}

export interface ConnectedEvent {
  /** Whether the broker still had the device's session (it normally has). */
  sessionPresent: boolean
}

export interface DisconnectedEvent {
  /** False after `stop()` / `unregister()`; true when the SDK keeps trying to reconnect. */
  reconnecting: boolean
}

/** The events of `MqpushDevice` and the value each carries. */
export interface MqpushDeviceEvents {
  registered: RegisteredEvent
  connected: ConnectedEvent
  disconnected: DisconnectedEvent
  /** A message of kind `notification` (§4.1): show it. */
  notification: PushEnvelope
  /** A message of kind `passThrough` (§4.1): hand its payload to the app. */
  passThrough: PushEnvelope
  /** Every message, after its `notification` or `passThrough` event. */
  message: PushEnvelope
  /** Connection, registration and storage problems, and errors thrown by listeners. */
  error: Error
}

/** What the SDK keeps in storage about its registration. */
interface Registration {
  regId: string
  token: string
  topics: DeviceTopics
}

const MQTT_PROTOCOLS = ['mqtt:', 'mqtts:', 'ws:', 'wss:']
/** MQTT 3.1.1 CONNACK return code 4: bad user name or password (here: regId or token). */
const CONNACK_BAD_CREDENTIALS = 4

/**
 * An mqpush device: registers (keeping its regId across restarts), keeps one MQTT connection,
 * and emits every pushed message once, even when the broker delivers it again.
 *
 * Runs in Node and in browsers. Messages are acknowledged (PUBACK, the delivery receipt) after
 * the listeners ran and the message id is stored, so a message is delivered at least once and
 * shown once; only a crash between the listeners and the storage write can show it twice.
 */
export class MqpushDevice extends TypedEmitter<MqpushDeviceEvents> {
  readonly #o: Required<Omit<MqpushDeviceOptions, 'installationId'>> &
    Pick<MqpushDeviceOptions, 'installationId'>
  readonly #api: DeviceApi
  readonly #keys: { registration: string; delivered: string }

  #reg: Registration | undefined
  #recent: RecentIds | undefined
  #client: MqttClient | undefined
  /** Between start() and stop(); aborted by stop(). */
  #run: AbortController | undefined
  #starting: Promise<RegisteredEvent> | undefined
  /** A re-registration after the broker refused the credentials. */
  #recovering: Promise<void> | undefined
  /** Refusals of credentials since the last successful connection. */
  #refusals = 0
  /** Storage writes of the recent message ids, one after the other. */
  #saving: Promise<void> = Promise.resolve()
  /** Messages being handled, until their PUBACK is handed to the client. */
  readonly #handling = new Set<Promise<void>>()

  constructor(options: MqpushDeviceOptions) {
    super((err, event) => {
      // a throwing error listener must not loop
      if (event !== 'error') this.emit('error', asError(err))
    })
    this.#o = validate(options)
    this.#api = new DeviceApi({
      apiUrl: this.#o.apiUrl,
      fetch: this.#o.fetch,
      timeoutMs: this.#o.requestTimeoutMs,
    })
    const prefix = `mqpush:${options.appId}:`
    this.#keys = { registration: `${prefix}registration`, delivered: `${prefix}delivered` }
  }

  /** The current regId; undefined before `start()` and after `unregister()`. */
  get regId(): string | undefined {
    return this.#reg?.regId
  }

  /** Whether the MQTT connection is up. */
  get connected(): boolean {
    return this.#client?.connected ?? false
  }

  /**
   * Registers (with the cached regId and token when storage has them, which keeps the regId)
   * and connects; the SDK then reconnects by itself until `stop()`. Resolves once registered;
   * `connected` follows. Rejects with `MqpushApiError` when the service refuses the
   * registration (e.g. 40103, wrong app key), or with the network error.
   */
  start(): Promise<RegisteredEvent> {
    this.#starting ??= this.#start().catch((err: unknown) => {
      this.#run?.abort()
      this.#run = undefined
      this.#starting = undefined
      throw err
    })
    return this.#starting
  }

  async #start(): Promise<RegisteredEvent> {
    const run = new AbortController()
    this.#run = run
    this.#recent ??= new RecentIds(this.#o.dedupeWindow, await this.#loadDelivered())
    const event = await this.#register(await this.#loadRegistration())
    // stop() while registering: stay registered, do not connect
    if (!run.signal.aborted) this.#connect()
    return event
  }

  /** Disconnects and stops reconnecting. Storage is kept: the next `start()` keeps the regId. */
  async stop(): Promise<void> {
    this.#run?.abort()
    this.#run = undefined
    this.#starting = undefined
    const client = this.#client
    this.#client = undefined
    // let the PUBACKs of messages already shown go out before DISCONNECT
    await Promise.all(this.#handling)
    if (client) await new Promise<void>((resolve) => client.end(false, {}, () => resolve()))
  }

  /**
   * Unregisters the device (its regId becomes invalid for good), disconnects and clears the
   * storage. A later `start()` registers a new regId.
   */
  async unregister(): Promise<void> {
    const reg = await this.#registration()
    // stop first: the service closes the session, and a reconnect must not re-register
    await this.stop()
    try {
      await this.#api.unregister(reg)
    } catch (err) {
      // already invalid: what was asked is done
      if (!(err instanceof MqpushApiError && err.code === ErrorCode.INVALID_DEVICE_TOKEN)) throw err
    }
    await this.#o.storage.delete(this.#keys.registration)
    await this.#o.storage.delete(this.#keys.delivered)
    this.#reg = undefined
    this.#recent = undefined
  }

  /** What the service knows of this device: attributes, aliases, userAccounts, topics… */
  async info(): Promise<DeviceInfo> {
    return this.#api.info(await this.#registration())
  }

  /** Replaces the device's attributes (targeting filters), now and for later registrations. */
  async updateAttributes(attributes: DeviceAttributes): Promise<void> {
    await this.#api.updateAttributes(await this.#registration(), attributes)
    this.#o.attributes = attributes
  }

  /** §4.2.3: an alias names one device; setting it takes it from any other device. */
  async setAlias(alias: string): Promise<void> {
    await this.#api.membership(await this.#registration(), 'PUT', 'aliases', alias)
  }

  async unsetAlias(alias: string): Promise<void> {
    await this.#api.membership(await this.#registration(), 'DELETE', 'aliases', alias)
  }

  /** §4.2.3: a userAccount groups up to 10 devices; the 11th takes the oldest one's place. */
  async setUserAccount(userAccount: string): Promise<void> {
    await this.#api.membership(await this.#registration(), 'PUT', 'user-accounts', userAccount)
  }

  async unsetUserAccount(userAccount: string): Promise<void> {
    await this.#api.membership(await this.#registration(), 'DELETE', 'user-accounts', userAccount)
  }

  /** §4.2.1: subscribes to an app topic; recorded by the service, so it holds offline too. */
  async subscribe(topic: string): Promise<void> {
    await this.#api.membership(await this.#registration(), 'PUT', 'topics', topic)
  }

  async unsubscribe(topic: string): Promise<void> {
    await this.#api.membership(await this.#registration(), 'DELETE', 'topics', topic)
  }

  /**
   * Reports that the user opened a message (its `clicked` count). Over MQTT (QoS 1, resolves on
   * PUBACK) when connected; otherwise, or when that fails, over HTTP. The service counts one
   * click per device and message, so a report sent both ways is counted once.
   */
  async reportClick(messageId: string): Promise<void> {
    const reg = await this.#registration()
    // the service counts a click only once the message's PUBACK is in: a message still being
    // handled (a click from inside a listener) is acknowledged first
    if (this.#handling.size > 0) await Promise.allSettled([...this.#handling])
    const client = this.#client
    if (client?.connected) {
      const report: ClickReport = { id: messageId as ClickReport['id'] }
      try {
        await withTimeout(
          client.publishAsync(reg.topics.click, JSON.stringify(report), { qos: 1 }),
          this.#o.requestTimeoutMs,
        )
        return
      } catch {
        // connection lost meanwhile: HTTP below
      }
    }
    await this.#api.click(reg, messageId)
  }

  /** The registration, once any re-registration in progress is done. */
  async #registration(): Promise<Registration> {
    await this.#recovering
    if (!this.#reg) throw new Error('MqpushDevice: not registered, call start() first')
    return this.#reg
  }

  /** Registers with the cached credentials if any; `previousRegId` names a regId just lost. */
  async #register(
    cached: Registration | undefined,
    previousRegId = cached?.regId,
  ): Promise<RegisteredEvent> {
    const o = this.#o
    const request: RegisterRequest = {
      appId: o.appId,
      appKey: o.appKey,
      attributes: o.attributes,
      ...(o.installationId !== undefined && { installationId: o.installationId }),
      ...(cached && { regId: cached.regId, token: cached.token }),
    }
    const res = await this.#api.register(request)
    const reg: Registration = { regId: res.regId, token: res.token, topics: res.mqtt.topics }
    await o.storage.set(this.#keys.registration, JSON.stringify(reg))
    this.#reg = reg
    const event: RegisteredEvent = {
      regId: reg.regId,
      renewed: res.renewed,
      ...(previousRegId !== undefined && previousRegId !== reg.regId && { previousRegId }),
    }
    this.emit('registered', event)
    return event
  }

  #connect(): void {
    const reg = this.#reg as Registration
    const client = mqtt.connect(this.#o.mqttUrl, {
      clientId: reg.regId,
      username: this.#o.appId,
      password: reg.token,
      // the service keeps the device's session (inbox, topics, offline queue) [MQTT-3.1.2-4]
      clean: false,
      protocolVersion: 4,
      keepalive: this.#o.keepaliveSeconds,
      reconnectPeriod: this.#o.reconnectPeriodMs,
      connectTimeout: this.#o.connectTimeoutMs,
      // other refusals (5: too many failures from this address) are retried; 4 is handled below
      reconnectOnConnackError: true,
      // the service subscribed the session; the SDK never SUBSCRIBEs
      resubscribe: false,
    })
    // PUBACK only after the listeners ran and the id is stored (see the class comment)
    client.handleMessage = (packet, done) => {
      const handled = this.#receive(packet).then(() => done())
      this.#handling.add(handled)
      void handled.finally(() => this.#handling.delete(handled))
    }
    let up = false
    client.on('connect', (connack) => {
      if (client !== this.#client) return
      up = true
      this.#refusals = 0
      this.emit('connected', { sessionPresent: connack.sessionPresent })
    })
    client.on('close', () => {
      if (!up) return
      up = false
      // stop() has let go of the client already: it will not reconnect
      this.emit('disconnected', { reconnecting: client === this.#client && !client.disconnecting })
    })
    client.on('error', (err: Error & { code?: unknown }) => {
      if (client !== this.#client) return
      if (err.code === CONNACK_BAD_CREDENTIALS) {
        this.#recovering ??= this.#reregister(client).finally(() => {
          this.#recovering = undefined
        })
      } else this.emit('error', err)
    })
    this.#client = client
  }

  /**
   * The broker refused the regId and token (CONNACK 4): the regId was invalidated. Forget it,
   * register afresh and connect with the new one. When just-issued credentials are refused too,
   * the next registration waits, doubling up to MAX_REREGISTER_BACKOFF_MS, so a misbehaving
   * service cannot make the SDK spin out regIds.
   */
  async #reregister(refused: MqttClient): Promise<void> {
    refused.end(true)
    this.#client = undefined
    const run = this.#run
    const previousRegId = this.#reg?.regId
    this.#refusals++
    try {
      await this.#o.storage.delete(this.#keys.registration)
    } catch (err) {
      this.emit('error', asError(err))
    }
    if (this.#refusals > 1) {
      const backoff = this.#o.reconnectPeriodMs * 2 ** (this.#refusals - 2)
      await sleep(Math.min(backoff, MAX_REREGISTER_BACKOFF_MS), run?.signal)
    }
    while (run && !run.signal.aborted) {
      try {
        await this.#register(undefined, previousRegId)
        break
      } catch (err) {
        this.emit('error', asError(err))
        await sleep(this.#o.reconnectPeriodMs, run.signal)
      }
    }
    if (run && !run.signal.aborted && run === this.#run) this.#connect()
  }

  async #receive(packet: IPublishPacket): Promise<void> {
    let envelope: PushEnvelope
    try {
      envelope = decodeEnvelope(packet.payload)
    } catch {
      this.emit(
        'error',
        new TypeError(`ignored a message on ${packet.topic}: not an mqpush envelope`),
      )
      return
    }
    const recent = this.#recent
    if (recent && !recent.add(envelope.id)) return // a redelivery: shown already
    this.emit(envelope.kind, envelope)
    this.emit('message', envelope)
    if (recent) await this.#saveDelivered(recent)
  }

  #saveDelivered(recent: RecentIds): Promise<void> {
    const value = JSON.stringify(recent.toArray())
    this.#saving = this.#saving
      .then(() => this.#o.storage.set(this.#keys.delivered, value))
      .catch((err: unknown) => {
        this.emit('error', asError(err))
      })
    return this.#saving
  }

  async #loadRegistration(): Promise<Registration | undefined> {
    const value = parseJson(await this.#o.storage.get(this.#keys.registration))
    if (
      typeof value === 'object' &&
      value !== null &&
      typeof (value as Registration).regId === 'string' &&
      typeof (value as Registration).token === 'string'
    ) {
      return value as Registration
    }
    return undefined
  }

  async #loadDelivered(): Promise<string[]> {
    const value = parseJson(await this.#o.storage.get(this.#keys.delivered))
    return Array.isArray(value) ? value.filter((id): id is string => typeof id === 'string') : []
  }
}

/** Options with defaults; throws on misconfiguration at construction (STYLE rule 6). */
function validate(o: MqpushDeviceOptions) {
  for (const key of ['apiUrl', 'mqttUrl', 'appId', 'appKey'] as const) {
    if (typeof o[key] !== 'string' || o[key] === '') {
      throw new TypeError(`MqpushDevice: ${key} is required`)
    }
  }
  const api = new URL(o.apiUrl)
  if (api.protocol !== 'http:' && api.protocol !== 'https:') {
    throw new TypeError(`MqpushDevice: apiUrl must be http(s)://, got ${o.apiUrl}`)
  }
  if (!MQTT_PROTOCOLS.includes(new URL(o.mqttUrl).protocol)) {
    throw new TypeError(`MqpushDevice: mqttUrl must be mqtt://, mqtts://, ws:// or wss://`)
  }
  const positive = (name: string, value: number | undefined, fallback: number): number => {
    const v = value ?? fallback
    if (!Number.isInteger(v) || v <= 0) {
      throw new RangeError(`MqpushDevice: ${name} must be a positive integer, got ${v}`)
    }
    return v
  }
  const fetchFn = o.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, init))
  return {
    apiUrl: o.apiUrl.replace(/\/+$/, ''),
    mqttUrl: o.mqttUrl,
    appId: o.appId,
    appKey: o.appKey,
    attributes: o.attributes ?? {},
    installationId: o.installationId,
    storage: o.storage ?? new MemoryStorage(),
    reconnectPeriodMs: positive(
      'reconnectPeriodMs',
      o.reconnectPeriodMs,
      DEFAULT_RECONNECT_PERIOD_MS,
    ),
    keepaliveSeconds: positive('keepaliveSeconds', o.keepaliveSeconds, DEFAULT_KEEPALIVE_SECONDS),
    connectTimeoutMs: positive('connectTimeoutMs', o.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS),
    dedupeWindow: positive('dedupeWindow', o.dedupeWindow, DEFAULT_DEDUPE_WINDOW),
    requestTimeoutMs: positive('requestTimeoutMs', o.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS),
    fetch: fetchFn,
  }
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve()
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
    function done() {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
  })
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
