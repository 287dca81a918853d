import { Aedes } from 'aedes'
import type { Server as HttpServer } from 'node:http'
import { readEnvelopeId } from '../sdk/protocol/envelope.js'
import { createDispatcher } from './dispatch.js'
import { adaptAuthenticate, adaptAuthorizePublish, adaptAuthorizeSubscribe } from './hooks/adapt.js'
import { createAuthenticate } from './hooks/authenticate.js'
import { createAuthorizeForward } from './hooks/authorize-forward.js'
import { createAuthorizePublish } from './hooks/authorize-publish.js'
import { createAuthorizeSubscribe } from './hooks/authorize-subscribe.js'
import { dropOwnClientNotices } from './client-notices.js'
import { attachWebSocket, listenMqtt, type Listening } from './listeners.js'
import { trackMembership } from './membership.js'
import type { BrokerDeps, BrokerPersistence } from './ports.js'
import { writeQueueHeads, wroteWholeQueue } from './queue-head.js'
import { coalesceQueueWrites } from './queue-writes.js'
import { sessionOf } from './session.js'
import { createSessions } from './sessions.js'

export type { BrokerDeps, BrokerPersistence } from './ports.js'

/** How long a device may leave its socket full before it is disconnected. */
export const DRAIN_TIMEOUT_MS = 15_000

export interface BrokerOptions {
  persistence: BrokerPersistence
  host: string
  port: number
  tls?: { port: number; certFile: string; keyFile: string } | undefined
  /** Largest keepalive a client may ask for, seconds; 0 = no limit. */
  keepaliveMaxSeconds: number
  connectTimeoutMs: number
  maxPacketBytes: number
}

/**
 * The MQTT side of mqpush: aedes with device authentication, ACL, expiry and receipts, the
 * dispatcher and session ports for the core, and the TCP / TLS / WebSocket listeners.
 */
export async function createBroker(deps: BrokerDeps, options: BrokerOptions) {
  const { log } = deps
  const settling = trackMembership(options.persistence, deps)
  const aedes = new Aedes({
    persistence: options.persistence,
    authenticate: adaptAuthenticate(createAuthenticate(deps), log) as never,
    authorizePublish: adaptAuthorizePublish(createAuthorizePublish(deps), log) as never,
    authorizeSubscribe: adaptAuthorizeSubscribe(createAuthorizeSubscribe(), log) as never,
    authorizeForward: createAuthorizeForward(deps) as never,
    keepaliveLimit: options.keepaliveMaxSeconds,
    connectTimeout: options.connectTimeoutMs,
    // no global limit of packets in delivery: with one (aedes' default is 100), devices that
    // stop reading hold every slot and all publishes queue behind them
    concurrency: 0,
    // a device whose socket stays full this long is disconnected; its queue keeps the packets
    drainTimeout: DRAIN_TIMEOUT_MS,
  })
  // STYLE rule 9: the broker's 'error' event always has a listener
  ;(aedes as unknown as NodeJS.EventEmitter).on('error', (err: Error) =>
    log.error({ err }, 'broker error'),
  )
  // aedes' own $SYS notice of each connect and disconnect reaches nobody here (no client may
  // subscribe to $SYS; the emitter is this process's own): not published
  dropOwnClientNotices(aedes)
  // a reconnecting device's queue: its head with the CONNACK in one write (and aedes' pipeline
  // skipped when that was all), aedes' writes of the rest (a queue over the head's limits, or a
  // persistence without a snapshot) gathered
  writeQueueHeads(aedes, options.persistence)
  coalesceQueueWrites(aedes, options.persistence, wroteWholeQueue)
  await aedes.listen()

  const sessions = createSessions(aedes, options.persistence, deps, settling)
  const dispatcher = createDispatcher(aedes, options.persistence)

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  aedes.on('client', (client: any) => {
    if (!sessionOf(client)) return
    deps.presence.connected(client.id)
    sessions.reconcile(client).catch((err: unknown) => {
      log.error({ err, regId: client.id }, 'session reconcile failed')
    })
  })
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  aedes.on('clientDisconnect', (client: any) => {
    if (sessionOf(client)) deps.presence.disconnected(client.id)
  })
  // a PUBACK: the receipt of a delivered message (the packet comes back from the queue). The
  // acknowledgements of a broadcast share one payload: its id is read once
  let lastPayload: unknown
  let lastId: ReturnType<typeof readEnvelopeId>
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  aedes.on('ack', (packet: any, client: any) => {
    if (!packet || packet.cmd !== 'publish' || !client) return
    if (packet.payload !== lastPayload) {
      lastPayload = packet.payload
      lastId = readEnvelopeId(packet.payload)
    }
    if (lastId) deps.receipts.delivered(lastId, client.id)
  })
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  aedes.on('clientError', (client: any, err: Error) => {
    log.debug({ clientId: client?.id, err: err.message }, 'client error')
  })

  let listening: Listening | undefined
  const sockets: Array<{ close(): void }> = []

  return {
    aedes,
    dispatcher,
    sessions,
    /** Starts the TCP (and TLS) listeners. */
    async listen(): Promise<{ port: number; tlsPort: number | undefined }> {
      listening = await listenMqtt(aedes, {
        host: options.host,
        port: options.port,
        tls: options.tls,
        maxPacketBytes: options.maxPacketBytes,
      })
      return { port: listening.port, tlsPort: listening.tlsPort }
    },
    /** Serves MQTT over WebSocket on an HTTP server at this path. */
    attachWebSocket(server: HttpServer, path: string): void {
      sockets.push(attachWebSocket(aedes, server, path, options.maxPacketBytes))
    },
    connectedCount(): number {
      return (aedes as unknown as { connectedClients: number }).connectedClients
    },
    /** Stops accepting, disconnects every client, stops aedes. */
    async close(): Promise<void> {
      for (const s of sockets) s.close()
      // stop accepting first; the servers finish closing once aedes has closed every client
      const stopped = listening?.close()
      await new Promise<void>((resolve) => aedes.close(() => resolve()))
      await stopped
    },
  }
}

export type Broker = Awaited<ReturnType<typeof createBroker>>
