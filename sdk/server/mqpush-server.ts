import { MqpushApiError } from '../protocol/api-error.js'
import type {
  DeviceInfo,
  InvalidRegId,
  MessageStatus,
  PushResponse,
  TopicSubscribeResult,
  TopicUnsubscribeResult,
} from '../protocol/responses.js'
import type { PushRequest } from '../protocol/schemas.js'

/** An HTTP call that takes longer fails with a TimeoutError (a DOMException). */
export const DEFAULT_TIMEOUT_MS = 10_000

export interface MqpushServerOptions {
  /** Base URL of the HTTP API, e.g. `https://push.example.com`. */
  baseUrl: string
  /** The app secret. Keep it on servers only. */
  appSecret: string
  /** A `fetch` to use instead of the global one. */
  fetch?: typeof fetch
  /** Default `DEFAULT_TIMEOUT_MS`. */
  timeoutMs?: number
}

/** A push without its target: what `sendToRegIds`, `sendToTopic`… send. */
export type PushMessage = Omit<PushRequest, 'target'>

/** The devices of a server-side topic change: up to 1000 regIds, or up to 1000 aliases. */
export type TopicMembers =
  { regIds: readonly string[]; aliases?: never } | { aliases: readonly string[]; regIds?: never }

export interface InvalidRegIdsQuery {
  /** Only regIds invalidated at or after this time. Default: since the beginning. */
  since?: Date | string
  /** At most this many, oldest first: 1 … 1000 (the default). */
  limit?: number
}

/**
 * The server side of mqpush: push to devices and read what happened, over the HTTP API with the
 * app secret. Every non-2xx answer is thrown as `MqpushApiError`; switch on its `code`
 * (`ErrorCode`). The limits (title ≤ 50 characters, ≤ 1000 targets per call…) are checked by
 * the service, which answers with the specific code.
 */
export class MqpushServer {
  readonly #baseUrl: string
  readonly #secret: string
  readonly #fetch: typeof fetch
  readonly #timeoutMs: number

  constructor(options: MqpushServerOptions) {
    if (!options.baseUrl) throw new TypeError('MqpushServer: baseUrl is required')
    if (!options.appSecret) throw new TypeError('MqpushServer: appSecret is required')
    const url = new URL(options.baseUrl)
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TypeError(`MqpushServer: baseUrl must be http(s)://, got ${options.baseUrl}`)
    }
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
      throw new RangeError(`MqpushServer: timeoutMs must be a positive integer, got ${timeoutMs}`)
    }
    this.#baseUrl = options.baseUrl.replace(/\/+$/, '')
    this.#secret = options.appSecret
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init))
    this.#timeoutMs = timeoutMs
  }

  /** Sends a push with any target (`{regIds}`, `{aliases}`, `{userAccounts}`, `{topic}`, `{all: true}`). */
  send(request: PushRequest): Promise<PushResponse> {
    return this.#request('POST', '/v1/messages', request)
  }

  /** To up to 1000 regIds. */
  sendToRegIds(regIds: readonly string[], message: PushMessage): Promise<PushResponse> {
    return this.send(Object.assign({}, message, { target: { regIds: [...regIds] } }))
  }

  /** To the devices holding up to 1000 aliases. */
  sendToAliases(aliases: readonly string[], message: PushMessage): Promise<PushResponse> {
    return this.send(Object.assign({}, message, { target: { aliases: [...aliases] } }))
  }

  /** To the devices of up to 1000 userAccounts. */
  sendToUserAccounts(userAccounts: readonly string[], message: PushMessage): Promise<PushResponse> {
    return this.send(Object.assign({}, message, { target: { userAccounts: [...userAccounts] } }))
  }

  /** To the devices subscribed to an app topic. */
  sendToTopic(topic: string, message: PushMessage): Promise<PushResponse> {
    return this.send(Object.assign({}, message, { target: { topic } }))
  }

  /** To every device of the app. */
  sendToAll(message: PushMessage): Promise<PushResponse> {
    return this.send(Object.assign({}, message, { target: { all: true as const } }))
  }

  /** A message's state and funnel (planned … delivered, clicked). 40402 when unknown. */
  getMessage(messageId: string): Promise<MessageStatus> {
    return this.#request('GET', `/v1/messages/${encodeURIComponent(messageId)}`)
  }

  /** A device of the app. 40403 when unknown or another app's. */
  getDevice(regId: string): Promise<DeviceInfo> {
    return this.#request('GET', `/v1/devices/${encodeURIComponent(regId)}`)
  }

  /** The regId holding an alias. 40405 when no device has it. */
  async lookupAlias(alias: string): Promise<string> {
    const res = await this.#request<{ alias: string; regId: string }>(
      'GET',
      `/v1/aliases/${encodeURIComponent(alias)}`,
    )
    return res.regId
  }

  /** The regIds of a userAccount (at most 10). 40406 when no device has it. */
  async lookupUserAccount(userAccount: string): Promise<string[]> {
    const res = await this.#request<{ userAccount: string; regIds: string[] }>(
      'GET',
      `/v1/user-accounts/${encodeURIComponent(userAccount)}`,
    )
    return res.regIds
  }

  /** How many devices are subscribed to an app topic (0 for a topic nobody has). */
  async countTopicSubscribers(topic: string): Promise<number> {
    const res = await this.#request<{ topic: string; subscribers: number }>(
      'GET',
      `/v1/topics/${encodeURIComponent(topic)}`,
    )
    return res.subscribers
  }

  /** Subscribes devices, online or offline, to an app topic (§4.2.1), by regIds or aliases. */
  subscribeTopic(topic: string, members: TopicMembers): Promise<TopicSubscribeResult> {
    return this.#request('POST', `/v1/topics/${encodeURIComponent(topic)}/subscribe`, members)
  }

  unsubscribeTopic(topic: string, members: TopicMembers): Promise<TopicUnsubscribeResult> {
    return this.#request('POST', `/v1/topics/${encodeURIComponent(topic)}/unsubscribe`, members)
  }

  /**
   * §4.2.2 feedback: regIds that became invalid, oldest first. Stop pushing to them. To page,
   * ask again with `since` = the last `invalidatedAt` (entries at that instant repeat).
   */
  async invalidRegIds(query: InvalidRegIdsQuery = {}): Promise<InvalidRegId[]> {
    const params = new URLSearchParams()
    if (query.since !== undefined) {
      params.set('since', query.since instanceof Date ? query.since.toISOString() : query.since)
    }
    if (query.limit !== undefined) params.set('limit', String(query.limit))
    const qs = params.toString() ? `?${params.toString()}` : ''
    const res = await this.#request<{ regIds: InvalidRegId[] }>(
      'GET',
      `/v1/feedback/invalid-reg-ids${qs}`,
    )
    return res.regIds
  }

  async #request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {
      accept: 'application/json',
      authorization: `Bearer ${this.#secret}`,
    }
    if (body !== undefined) headers['content-type'] = 'application/json'
    // called unbound: browsers refuse a fetch whose `this` is not the window
    const fetchFn = this.#fetch
    const res = await fetchFn(this.#baseUrl + path, {
      method,
      headers,
      ...(body !== undefined && { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(this.#timeoutMs),
    })
    if (!res.ok) throw await MqpushApiError.fromResponse(res)
    return (await res.json()) as T
  }
}
