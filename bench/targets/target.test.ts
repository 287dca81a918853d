import { describe, expect, it } from 'vitest'
import { listenOverflows, parseListenOverflows } from './target.js'

describe('parseListenOverflows', () => {
  it("reads TcpExt's ListenOverflows from /proc/net/netstat's text", () => {
    const text = [
      'TcpExt: SyncookiesSent EmbryonicRsts ListenOverflows ListenDrops',
      'TcpExt: 11 0 1846 1850',
      'IpExt: InNoRoutes ListenOverflows',
      'IpExt: 0 7',
      '',
    ].join('\n')
    expect(parseListenOverflows(text)).toBe(1846)
  })

  it('gives undefined when the counter is not there', () => {
    expect(parseListenOverflows('TcpExt: SyncookiesSent\nTcpExt: 11\n')).toBeUndefined()
    expect(parseListenOverflows('')).toBeUndefined()
  })

  it.skipIf(process.platform !== 'linux')(
    "reads this machine's counter (skipped: not Linux)",
    () => {
      expect(listenOverflows()).toBeGreaterThanOrEqual(0)
    },
  )
})
