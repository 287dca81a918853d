import { describe, expect, it } from 'vitest'
import { parseWrkOutput } from './wrk.js'

// wrk 4.2's summary, as it prints it (the figures of two runs of `wrk -t1 -c64`)
const summary = (
  requests: string,
  time: string,
  non2xx?: number,
) => `Running ${time} test @ http://127.0.0.1:8080/v1/messages
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     8.49ms    2.01ms  40.12ms   89.10%
    Req/Sec     7.58k   412.33     8.20k    81.00%
  ${requests} requests in ${time}, 19.05MB read
${non2xx === undefined ? '' : `  Non-2xx or 3xx responses: ${non2xx}\n`}Requests/sec:   7577.84
Transfer/sec:      1.90MB
`

describe('parseWrkOutput', () => {
  it('reads the requests and the time of a run of seconds', () => {
    expect(parseWrkOutput(summary('75812', '10.00s'), 10)).toEqual({
      acceptedPerSec: 7581,
      accepted: 75812,
      non2xx: 0,
    })
  })

  it('reads a run of a minute or more, which wrk times in minutes', () => {
    // a 300 s closed loop was read as 0 pushes a second before
    expect(parseWrkOutput(summary('2100000', '5.00m'), 300).acceptedPerSec).toBe(7000)
  })

  it('counts only the accepted requests', () => {
    expect(parseWrkOutput(summary('1000', '1.00s', 250), 1)).toEqual({
      acceptedPerSec: 750,
      accepted: 750,
      non2xx: 250,
    })
  })

  it('falls back to the asked duration when wrk printed no summary', () => {
    expect(parseWrkOutput('', 4)).toEqual({ acceptedPerSec: 0, accepted: 0, non2xx: 0 })
  })
})
