import type { Aedes } from 'aedes'
import { createServer, type Server, type ServerResponse } from 'node:http'

/**
 * The least an HTTP push service on Aedes can be (the `aedes-http` baseline): `POST
 * /v1/messages` with mqpush's body for a push by regId (`{"target":{"regIds":[…]},
 * "payload":"…"}`) publishes the payload at QoS 1 to `bench/d/{regId}` and answers 200 once
 * Aedes has handed it on. No authentication, no durability, no validation beyond the body's
 * shape: what a push over HTTP costs on this machine before any product's work, the floor for
 * mqpush's HTTP → device unicast. Errors: 404 (another path), 405 (not a POST), 413 (over
 * 256 KB), 400 (not a push by regId), 500 (Aedes failed the publish).
 */
export function servePushes(aedes: Aedes, port: number, host = '127.0.0.1'): Promise<Server> {
  const http = createServer((req, res) => {
    if (req.url?.split('?')[0] !== '/v1/messages') return answer(res, 404, '{"error":"not found"}')
    if (req.method !== 'POST') return answer(res, 405, '{"error":"method not allowed"}')
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size <= BODY_LIMIT) chunks.push(chunk)
    })
    req.on('end', () => {
      if (size > BODY_LIMIT) return answer(res, 413, '{"error":"body too large"}')
      const push = parsePush(Buffer.concat(chunks).toString())
      if (!push) return answer(res, 400, '{"error":"not a push by regId"}')
      const payload = Buffer.from(push.payload)
      let left = push.regIds.length
      let failed = false
      for (const regId of push.regIds) {
        aedes.publish(
          { cmd: 'publish', topic: `bench/d/${regId}`, payload, qos: 1, retain: false, dup: false },
          (err) => {
            failed ||= Boolean(err)
            if (--left === 0) {
              if (failed) answer(res, 500, '{"error":"publish failed"}')
              else answer(res, 200, '{"ok":true}')
            }
          },
        )
      }
    })
  })
  // as mqpush's default: app servers keep their connections between pushes
  http.keepAliveTimeout = 65_000
  return new Promise((resolve, reject) => {
    http.once('error', reject)
    http.listen(port, host, () => {
      http.off('error', reject)
      http.on('error', (err) => console.error(`aedes-http: ${String(err)}`))
      resolve(http)
    })
  })
}

const BODY_LIMIT = 262_144

function answer(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  })
  res.end(body)
}

/** The regIds and payload of a push, or undefined when the body is not one. */
export function parsePush(text: string): { regIds: string[]; payload: string } | undefined {
  try {
    const body = JSON.parse(text) as { target?: { regIds?: unknown }; payload?: unknown }
    const regIds = body.target?.regIds
    if (!Array.isArray(regIds) || regIds.length === 0) return undefined
    if (!regIds.every((id) => typeof id === 'string' && /^[\w-]{1,64}$/.test(id))) return undefined
    if (typeof body.payload !== 'string') return undefined
    return { regIds, payload: body.payload }
  } catch {
    return undefined
  }
}
