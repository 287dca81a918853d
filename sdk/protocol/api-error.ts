import type { ErrorBody, ErrorCode } from './error-codes.js'

/**
 * An error answer of the mqpush HTTP API, as both SDKs throw it. `code` is the stable numeric
 * code of `ErrorCode`; switch on it, not on the message.
 */
export class MqpushApiError extends Error {
  override name = 'MqpushApiError'
  readonly code: ErrorCode
  readonly http: number
  readonly link: string | undefined
  readonly details: ErrorBody['details']
  /** Seconds to wait before retrying (429 answers). */
  readonly retryAfter: number | undefined

  constructor(body: ErrorBody, retryAfter?: number) {
    super(body.error)
    this.code = body.code
    this.http = body.http
    this.link = body.link
    this.details = body.details
    this.retryAfter = retryAfter
  }

  /** Builds the error from a failed fetch response (any body, even a non-mqpush one). */
  static async fromResponse(res: Response): Promise<MqpushApiError> {
    let body: Partial<ErrorBody> | undefined
    try {
      body = (await res.json()) as Partial<ErrorBody>
    } catch {
      body = undefined
    }
    const retry = res.headers.get('retry-after')
    return new MqpushApiError(
      {
        code: (typeof body?.code === 'number' ? body.code : res.status * 100 + 1) as ErrorCode,
        http: res.status,
        error: typeof body?.error === 'string' ? body.error : res.statusText || 'request failed',
        link: typeof body?.link === 'string' ? body.link : '',
        ...(body?.details && { details: body.details }),
      },
      retry !== null && retry !== '' ? Number(retry) : undefined,
    )
  }
}
