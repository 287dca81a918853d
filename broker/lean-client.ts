import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

/* eslint-disable @typescript-eslint/no-explicit-any -- aedes' client and mqtt-packet's parser are untyped internals */

/**
 * Shapes what aedes allocates per connection, which is most of the memory of a connected device.
 * Applied to every client right after `aedes.handle()`, before a byte is parsed.
 *
 * The parser (mqtt-packet, one per connection):
 * - a packet announcing more than `maxPacketBytes` is a parse error: aedes 1.x has no bound and
 *   mqtt-packet buffers whatever the remaining-length field announces, up to 256 MB, before
 *   authentication; the error closes the connection before the body is buffered;
 * - after CONNECT it keeps a shared `{ protocolVersion, bridgeMode }` instead of the CONNECT packet
 *   itself (which it keeps as its `settings`, password, client id and username included, for as
 *   long as the connection lives, to read those two fields);
 * - its input list is a plain `BufferList` instead of a `BufferListStream` (a Duplex stream with
 *   both stream states and an event emitter, of which it only uses the list methods);
 * - its list of parse steps (the same four names for every parser) is one shared array.
 *
 * Hash tables that V8 allocates at full size for a handful of fixed keys become objects with
 * fast properties and no prototype (clients then share one hidden class; reads of inherited
 * names such as `constructor` or `__proto__` stay absent, as GHSA-52qw-whmv-87c5 requires for
 * `duplicates`):
 * - the client's `duplicates` (last broker counter per broker id: the keys are broker ids),
 *   `Object.create(null)` in aedes;
 * - the listener tables (`_events`) of the client and the parser, which Node's EventEmitter
 *   creates as `{ __proto__: null }` (Node's own streams pre-shape theirs the same way). The
 *   client's once-listener for `connected` goes last, so removing it after CONNECT is undone by
 *   a hidden-class step back rather than a switch to a hash table.
 *
 * The client's `_inboundInflight` (inbound QoS 2 messages awaiting PUBREL, which devices never
 * send) is a Set only once it holds something.
 *
 * aedes closes the client when its connection ends through `stream.finished()`: seven closures
 * and four more listeners on the socket per connection. One shared `close` listener does the
 * same: a connection that errs or is destroyed always emits `close`, and its `end` (the device's
 * FIN) and `error` already close the client through aedes' own listeners.
 *
 * The parser's `parse` emits the PUBACKs at the front of a read itself, as mqtt-packet would
 * (see `parserMethods`): a device acknowledges every message, and mqtt-packet's state machine
 * was ~0.6 µs of each.
 *
 * The replaced parser steps are shared functions (one set per packet limit): nothing here
 * allocates per connection. The memory part is applied only to the versions it was
 * written against (aedes 1.2, mqtt-packet 9): their internals are not an API. The packet limit
 * applies always.
 */
export function leanClient(client: any, maxPacketBytes: number): void {
  const parser = client._parser
  const methods = parserMethods(parser, maxPacketBytes)
  // own properties pointing at shared functions: a slot each, and one hidden class for all
  // parsers (an own prototype per parser would give each parser its own hidden class)
  parser._parseLength = methods._parseLength
  if (!SHAPE_KNOWN) return
  parser.parse = methods.parse
  parser._parseConnect = methods._parseConnect
  parser._resetState = methods._resetState
  if (parser._list.length === 0) parser._list = new (bufferListOf(parser._list))()
  if (sameSteps(parser._states)) parser._states = PARSE_STEPS
  parser._events = fastTable(parser._events, [])
  client._events = fastTable(client._events, ['error', 'connected'])
  client.duplicates = new FastTable()
  if (client._inboundInflight.size === 0) client._inboundInflight = new InboundInflight()
  const conn = client.conn
  if (typeof client._eos === 'function' && conn.client === client && !conn.destroyed) {
    client._eos()
    client._eos = noop
    conn.on('close', closeClient)
  }
}

function noop(): void {}

/** A connection's `close` listener: closes its aedes client (`conn.client`, set by aedes). */
function closeClient(this: any): void {
  this.client.close()
}

const require = createRequire(import.meta.url)

function versionOf(pkg: string): string {
  // aedes' package.json is not exported: found beside its entry point
  let dir = dirname(require.resolve(pkg))
  for (let i = 0; i < 3; i++, dir = dirname(dir)) {
    try {
      const json = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string
        version?: string
      }
      if (json.name === pkg) return json.version ?? ''
    } catch {
      // not here: one level up
    }
  }
  return ''
}

/** Whether the aedes and mqtt-packet internals are those this module was written against. */
const SHAPE_KNOWN = /^1\.2\./.test(versionOf('aedes')) && /^9\./.test(versionOf('mqtt-packet'))

/** A table of a few fixed keys: fast properties, no prototype chain. */
const FastTable = function FastTable() {} as unknown as new () => Record<string, unknown>
FastTable.prototype = Object.create(null) as Record<string, unknown>

/** The same keys and values in a FastTable, `first` in this order, then any others. */
function fastTable(
  table: Record<string | symbol, unknown>,
  first: string[],
): Record<string | symbol, unknown> {
  const fast = new FastTable() as Record<string | symbol, unknown>
  for (const key of first) if (key in table) fast[key] = table[key]
  for (const key of Reflect.ownKeys(table)) if (!(key in fast)) fast[key] = table[key]
  return fast
}

const PARSE_STEPS: readonly string[] = Object.freeze([
  '_parseHeader',
  '_parseLength',
  '_parsePayload',
  '_newPacket',
])

const sameSteps = (steps: unknown) =>
  Array.isArray(steps) &&
  steps.length === PARSE_STEPS.length &&
  steps.every((s, i) => s === PARSE_STEPS[i])

/** `client._inboundInflight`: what aedes uses of a Set, the Set made on the first add. */
class InboundInflight {
  #set: Set<number> | undefined
  get size(): number {
    return this.#set?.size ?? 0
  }
  has(id: number): boolean {
    return this.#set?.has(id) ?? false
  }
  add(id: number): this {
    ;(this.#set ??= new Set()).add(id)
    return this
  }
  delete(id: number): boolean {
    return this.#set?.delete(id) ?? false
  }
}

/** What the parser reads from its settings after CONNECT, shared by every connection. */
const SETTINGS = new Map<string, Readonly<{ protocolVersion: number; bridgeMode?: boolean }>>()

function settingsOf(packet: any) {
  const key = `${packet.protocolVersion}/${packet.bridgeMode === true}`
  let s = SETTINGS.get(key)
  if (!s) {
    s = Object.freeze(
      packet.bridgeMode === true
        ? { protocolVersion: packet.protocolVersion as number, bridgeMode: true }
        : { protocolVersion: packet.protocolVersion as number },
    )
    SETTINGS.set(key, s)
  }
  return s
}

function bufferListOf(list: any): new () => unknown {
  // bl exports its plain list as a static of the stream class, the one mqtt-packet imports
  return list.constructor.BufferList
}

interface ParserMethods {
  parse: (this: any, buf: Buffer) => number
  _parseLength: (this: any) => boolean
  _parseConnect: (this: any) => unknown
  _resetState: (this: any) => void
}

/** A PUBACK of MQTT 3.1.1 as it comes: type 4, no flags, remaining length 2. */
const PUBACK_BYTE0 = 0x40
const PUBACK_LENGTH = 2

const METHODS = new Map<number, ParserMethods>()

/** The parser's replacement steps, one set per packet limit, shared by every connection. */
function parserMethods(parser: any, maxPacketBytes: number): ParserMethods {
  let methods = METHODS.get(maxPacketBytes)
  if (methods) return methods
  const base = Object.getPrototypeOf(parser)
  const BufferList = bufferListOf(parser._list)
  // mqtt-packet's packet class (not exported): the parser holds one from its construction
  const Packet = parser.packet.constructor as new () => any
  methods = {
    /**
     * PUBACKs at the front of a chunk that starts a packet (nothing buffered, no packet begun)
     * are emitted here, each the packet mqtt-packet would emit (a fresh Packet: cmd, length 2,
     * messageId), in order and synchronously as its loop does; the rest of the chunk goes to
     * mqtt-packet's `parse`. A device acknowledges every message it gets: mqtt-packet's state
     * machine (four steps, a buffer list, eight debug calls) cost ~0.6 µs per PUBACK, this
     * ~0.02 µs (docs/benchmarks-log.md, twenty-first session). MQTT 5, whose PUBACK of length 2
     * also gets a reason code, is left to mqtt-packet.
     */
    parse(buf: Buffer): number {
      if (
        this._stateCounter === 0 &&
        this._list.length === 0 &&
        !this.error &&
        this.settings.protocolVersion !== 5
      ) {
        let o = 0
        const end = buf.length - 3
        while (o < end && buf[o] === PUBACK_BYTE0 && buf[o + 1] === PUBACK_LENGTH) {
          const packet = new Packet()
          packet.cmd = 'puback'
          packet.length = PUBACK_LENGTH
          packet.messageId = ((buf[o + 2] as number) << 8) | (buf[o + 3] as number)
          o += 4
          this.emit('packet', packet)
        }
        if (o === buf.length) return 0
        if (o > 0) buf = buf.subarray(o)
      }
      return base.parse.call(this, buf) as number
    },
    _parseLength() {
      const ok = base._parseLength.call(this) as boolean
      if (ok && this.packet.length > maxPacketBytes) {
        this._emitError(
          new Error(`packet of ${this.packet.length} bytes exceeds ${maxPacketBytes}`),
        )
        return false
      }
      return ok
    },
    _parseConnect() {
      const packet = base._parseConnect.call(this)
      if (SHAPE_KNOWN && this.settings === this.packet) this.settings = settingsOf(this.packet)
      return packet
    },
    _resetState() {
      base._resetState.call(this)
      if (SHAPE_KNOWN) this._list = new BufferList()
    },
  }
  METHODS.set(maxPacketBytes, methods)
  return methods
}
