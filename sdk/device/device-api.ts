import { MqpushApiError } from '../protocol/api-error.js'
import type { DeviceInfo } from '../protocol/responses.js'
import type { DeviceAttributes, RegisterRequest, RegisterResponse } from '../protocol/schemas.js'

export interface DeviceApiOptions {
  apiUrl: string
  fetch: typeof fetch
  timeoutMs: number
}

/** A device's credentials for its own endpoints (HTTP Basic regId:token). */
export interface DeviceCredentials {
  regId: string
  token: string
}

/**
 * The device endpoints of the HTTP API (`/v1/devices/register`, `/v1/device/…`). Every non-2xx
 * answer is thrown as `MqpushApiError`; names are sent as single URL path segments.
 */
export class DeviceApi {
  readonly #o: DeviceApiOptions

  constructor(options: DeviceApiOptions) {
    this.#o = options
  }

  register(body: RegisterRequest): Promise<RegisterResponse> {
    return this.#request('POST', '/v1/devices/register', undefined, body)
  }

  info(device: DeviceCredentials): Promise<DeviceInfo> {
    return this.#request('GET', '/v1/device', device)
  }

  async updateAttributes(device: DeviceCredentials, attributes: DeviceAttributes): Promise<void> {
    await this.#request('PATCH', '/v1/device', device, { attributes })
  }

  async unregister(device: DeviceCredentials): Promise<void> {
    await this.#request('DELETE', '/v1/device', device)
  }

  /** PUT or DELETE of one alias, userAccount or topic of the device. */
  async membership(
    device: DeviceCredentials,
    method: 'PUT' | 'DELETE',
    kind: 'aliases' | 'user-accounts' | 'topics',
    name: string,
  ): Promise<void> {
    await this.#request(method, `/v1/device/${kind}/${encodeURIComponent(name)}`, device)
  }

  async click(device: DeviceCredentials, messageId: string): Promise<void> {
    await this.#request('POST', '/v1/device/clicks', device, { messageId })
  }

  async #request<T>(
    method: string,
    path: string,
    device: DeviceCredentials | undefined,
    body?: unknown,
  ): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' }
    // regIds and tokens are ASCII (base62, base64url), so btoa is safe and works in browsers
    if (device) headers.authorization = `Basic ${btoa(`${device.regId}:${device.token}`)}`
    if (body !== undefined) headers['content-type'] = 'application/json'
    // called unbound: browsers refuse a fetch whose `this` is not the window
    const fetchFn = this.#o.fetch
    const res = await fetchFn(this.#o.apiUrl + path, {
      method,
      headers,
      ...(body !== undefined && { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(this.#o.timeoutMs),
    })
    if (!res.ok) throw await MqpushApiError.fromResponse(res)
    if (res.status === 204) return undefined as T
    return (await res.json()) as T
  }
}
