import { once } from 'node:events'
import { connect, createServer, type Server, type Socket } from 'node:net'

/** A real TCP pair; the server side stands for a device's connection, its writes counted. */
export async function socketPair() {
  const server: Server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  const accepted = once(server, 'connection') as Promise<[Socket]>
  const device = connect(port, '127.0.0.1')
  const [conn] = await accepted
  await once(device, 'connect')
  // each call of _write / _writev is one write to the kernel: its bytes
  const writes: number[] = []
  const s = conn as unknown as {
    _write: (...a: unknown[]) => void
    _writev: (...a: unknown[]) => void
  }
  const w = s._write.bind(conn)
  const wv = s._writev.bind(conn)
  s._write = (...a) => {
    writes.push((a[0] as Buffer).length)
    w(...a)
  }
  s._writev = (...a) => {
    writes.push((a[0] as Array<{ chunk: Buffer }>).reduce((n, c) => n + c.chunk.length, 0))
    wv(...a)
  }
  const received: Buffer[] = []
  device.on('data', (d: Buffer) => received.push(d))
  const close = () => {
    device.destroy()
    conn.destroy()
    server.close()
  }
  return { conn, device, writes, received, close }
}

/** Waits (up to 5 s) until `bytes` have arrived at the device; returns what arrived. */
export const arrived = async (pair: { received: Buffer[] }, bytes: number) => {
  const until = Date.now() + 5000
  const length = () => pair.received.reduce((n, b) => n + b.length, 0)
  while (length() < bytes && Date.now() < until) await new Promise((r) => setTimeout(r, 10))
  return Buffer.concat(pair.received)
}
