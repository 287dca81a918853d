import type { Aedes } from 'aedes'
import type { IncomingMessage, Server as HttpServer } from 'node:http'
import { type AddressInfo, type Server, createServer, type Socket } from 'node:net'
import { readFileSync } from 'node:fs'
import type { Duplex } from 'node:stream'
import { createServer as createTlsServer } from 'node:tls'
import { WebSocketServer, createWebSocketStream } from 'ws'
import { leanClient } from './lean-client.js'

export interface ListenOptions {
  host: string
  port: number
  tls?: { port: number; certFile: string; keyFile: string } | undefined
  maxPacketBytes: number
}

export interface Listening {
  port: number
  tlsPort: number | undefined
  close(): Promise<void>
}

/** MQTT over TCP and, when a certificate is configured, over TLS. */
export async function listenMqtt(aedes: Aedes, options: ListenOptions): Promise<Listening> {
  const handle = (conn: Duplex, req?: IncomingMessage) => {
    const client = aedes.handle(conn, req)
    leanClient(client, options.maxPacketBytes)
  }
  const onSocket = (socket: Socket) => {
    socket.setNoDelay(true)
    handle(socket)
  }
  const tcp = createServer(onSocket)
  const servers: Server[] = [tcp]
  await listen(tcp, options.port, options.host)
  let tlsPort: number | undefined
  if (options.tls) {
    const tls = createTlsServer(
      { cert: readFileSync(options.tls.certFile), key: readFileSync(options.tls.keyFile) },
      onSocket,
    )
    servers.push(tls)
    await listen(tls, options.tls.port, options.host)
    tlsPort = (tls.address() as AddressInfo).port
  }
  return {
    port: (tcp.address() as AddressInfo).port,
    tlsPort,
    close: () => Promise.all(servers.map(closeServer)).then(() => undefined),
  }
}

/**
 * MQTT over WebSocket on an existing HTTP server, at `path` (subprotocol `mqtt`, as MQTT.js and
 * Paho ask for). Other upgrade requests are refused.
 */
export function attachWebSocket(
  aedes: Aedes,
  server: HttpServer,
  path: string,
  maxPacketBytes: number,
): { close(): void } {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: maxPacketBytes + 8,
    handleProtocols: (protocols) =>
      protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false,
  })
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (url.pathname !== path) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n')
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const stream = createWebSocketStream(ws)
      stream.on('error', () => stream.destroy())
      const client = aedes.handle(stream, req)
      leanClient(client, maxPacketBytes)
    })
  })
  return {
    close() {
      for (const ws of wss.clients) ws.terminate()
      wss.close()
    },
  }
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()))
}
