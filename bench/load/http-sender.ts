import { connect, type Socket } from 'node:net'

interface Waiter {
  resolve: (status: number) => void
  reject: (err: Error) => void
}

interface Conn {
  socket: Socket
  buffered: Buffer
  waiter: Waiter | undefined
  /** The request in flight, sent again once if the server closed the connection under it. */
  body: string | undefined
  idleTimer: NodeJS.Timeout | undefined
  /** Answers received on this connection: only a reused one can meet the keep-alive race. */
  answers: number
  mayResend: boolean
}

/**
 * Idle connections are closed before the service's keep-alive timeout (65 s by default), so a
 * request is never written onto a connection the service is closing. Kept long, as an app
 * server's pool would keep them: the connections a burst opened (the warm-up's first seconds
 * open hundreds) must not all close inside a measured window.
 */
const IDLE_CLOSE_MS = 60_000

/**
 * The bench's sender of push requests: keep-alive HTTP/1.1 over plain sockets, one request in
 * flight per connection, the request bytes written in one call and the answer read only as far
 * as its status and length. node:http spends about as much CPU per request as the service
 * answering it, and the sender shares the two cores with what it measures.
 * Answers must carry Content-Length (the service's do).
 */
export class LeanHttpSender {
  readonly #host: string
  readonly #port: number
  readonly #head: string
  readonly #idle: Conn[] = []
  readonly #all = new Set<Conn>()
  readonly #queue: Array<{ body: string; waiter: Waiter; mayResend: boolean }> = []
  readonly #maxConnections: number

  constructor(url: string, headers: Record<string, string>, maxConnections: number) {
    const u = new URL(url)
    this.#host = u.hostname
    this.#port = Number(u.port)
    this.#maxConnections = maxConnections
    const extra = Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('')
    this.#head =
      `POST ${u.pathname} HTTP/1.1\r\nhost: ${u.host}\r\nconnection: keep-alive\r\n` +
      `content-type: application/json\r\n${extra}content-length: `
  }

  /** POSTs a JSON body; resolves with the status code. */
  post(body: string): Promise<number> {
    return new Promise((resolve, reject) => this.#post(body, { resolve, reject }, true))
  }

  #post(body: string, waiter: Waiter, mayResend: boolean): void {
    const conn = this.#idle.pop() ?? this.#open()
    if (conn) this.#send(conn, body, waiter, mayResend)
    else this.#queue.push({ body, waiter, mayResend })
  }

  /** Closes every connection; requests in flight or waiting fail. */
  close(): void {
    const closed = new Error('sender closed')
    for (const c of this.#all) {
      clearTimeout(c.idleTimer)
      c.waiter?.reject(closed)
      c.waiter = undefined
      c.socket.destroy()
    }
    this.#all.clear()
    this.#idle.length = 0
    for (const q of this.#queue.splice(0)) q.waiter.reject(closed)
  }

  #open(): Conn | undefined {
    if (this.#all.size >= this.#maxConnections) return undefined
    const socket = connect({ host: this.#host, port: this.#port, noDelay: true })
    const conn: Conn = {
      socket,
      buffered: Buffer.alloc(0),
      waiter: undefined,
      body: undefined,
      idleTimer: undefined,
      answers: 0,
      mayResend: false,
    }
    this.#all.add(conn)
    socket.on('data', (chunk: Buffer) => this.#onData(conn, chunk))
    const fail = (err: Error) => {
      if (!this.#all.delete(conn)) return
      clearTimeout(conn.idleTimer)
      const i = this.#idle.indexOf(conn)
      if (i >= 0) this.#idle.splice(i, 1)
      const { waiter, body, mayResend } = conn
      conn.waiter = undefined
      if (!waiter || body === undefined) return
      // a reused connection closed before any byte of the answer: the server closes only idle
      // connections, so the request was not read (the keep-alive race); sent again once, on
      // another connection. Anything else (refused, reset mid-answer) fails the request.
      if (mayResend && conn.answers > 0 && conn.buffered.length === 0) {
        this.#post(body, waiter, false)
      } else waiter.reject(err)
    }
    socket.on('error', fail)
    socket.on('close', () => fail(new Error('connection closed')))
    return conn
  }

  #send(conn: Conn, body: string, waiter: Waiter, mayResend: boolean): void {
    clearTimeout(conn.idleTimer)
    conn.waiter = waiter
    conn.body = body
    conn.mayResend = mayResend
    conn.socket.write(`${this.#head}${Buffer.byteLength(body)}\r\n\r\n${body}`)
  }

  #onData(conn: Conn, chunk: Buffer): void {
    conn.buffered = conn.buffered.length ? Buffer.concat([conn.buffered, chunk]) : chunk
    const end = conn.buffered.indexOf('\r\n\r\n')
    if (end < 0) return
    const head = conn.buffered.toString('latin1', 0, end)
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)
    if (!length) {
      conn.socket.destroy(new Error('an answer without Content-Length'))
      return
    }
    const total = end + 4 + Number(length[1])
    if (conn.buffered.length < total) return
    conn.buffered = conn.buffered.subarray(total)
    const status = Number(head.slice(9, 12))
    const waiter = conn.waiter
    conn.waiter = undefined
    conn.body = undefined
    conn.answers++
    const next = this.#queue.shift()
    if (next) this.#send(conn, next.body, next.waiter, next.mayResend)
    else {
      this.#idle.push(conn)
      conn.idleTimer = setTimeout(() => {
        const i = this.#idle.indexOf(conn)
        if (i >= 0) this.#idle.splice(i, 1)
        conn.socket.destroy()
      }, IDLE_CLOSE_MS)
    }
    waiter?.resolve(status)
  }
}
