/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * aedes (1.x, MQTT 3.1.1) has no bound on the size of an incoming packet: mqtt-packet's parser
 * buffers whatever the remaining-length field announces, up to 256 MB, before authentication.
 * This wraps the parser's length step on each connection so a packet announcing more than the
 * limit is a parse error, which closes the connection before its body is buffered.
 */
const LIMIT = Symbol('mqpush.maxPacketBytes')

function limitedParseLength(this: any): boolean {
  const ok = Object.getPrototypeOf(this)._parseLength.call(this) as boolean
  if (ok && this.packet.length > this[LIMIT]) {
    this._emitError(new Error(`packet of ${this.packet.length} bytes exceeds ${this[LIMIT]}`))
    return false
  }
  return ok
}

export function limitPacketSize(client: any, maxBytes: number): void {
  const parser = client._parser
  parser[LIMIT] = maxBytes
  parser._parseLength = limitedParseLength
}
