import { execFile, execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * The closed-loop push rate is measured with wrk (C, from Debian) when it is there: a Node
 * client on the same two cores spends about as much CPU per request as the service, and would
 * measure itself. Returns undefined when wrk is missing and cannot be installed.
 */
export function ensureWrk(): boolean {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' })
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return true // --version exits 1
  }
  try {
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'wrk'], {
      stdio: 'ignore',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    })
    return true
  } catch {
    return false
  }
}

/** POSTs one push per request, to the regIds in turn; answers accepted (2xx) requests per second. */
export async function wrkPushRate(o: {
  url: string
  secret: string
  regIds: string[]
  seconds: number
  connections: number
}): Promise<{ acceptedPerSec: number; accepted: number; non2xx: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-wrk-'))
  const script = join(dir, 'push.lua')
  writeFileSync(
    script,
    `
local ids = { ${o.regIds.map((r) => `"${r}"`).join(',')} }
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer ${o.secret}"
request = function()
  i = i + 1
  local id = ids[(i % #ids) + 1]
  return wrk.format(nil, nil, nil, '{"target":{"regIds":["' .. id .. '"]},"kind":"passThrough","payload":"closed loop"}')
end
`,
  )
  try {
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        'wrk',
        ['-t1', `-c${o.connections}`, `-d${o.seconds}s`, '-s', script, o.url],
        (err: Error | null, stdout: string) => (err ? reject(err) : resolve(stdout)),
      ),
    )
    return parseWrkOutput(out, o.seconds)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const WRK_TIME_UNITS: Record<string, number> = { us: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 }

/**
 * wrk's summary: `N requests in 10.00s, …` — the time in wrk's own units (`us`, `ms`, `s`, `m`,
 * `h`: a run of a minute or more says `5.00m`) —, and the non-2xx answers when there were any.
 */
export function parseWrkOutput(
  out: string,
  fallbackSeconds: number,
): { acceptedPerSec: number; accepted: number; non2xx: number } {
  const m = /(\d+) requests in ([\d.]+)(us|ms|s|m|h)\b/.exec(out)
  const total = Number(m?.[1] ?? 0)
  const secs = m ? Number(m[2]) * (WRK_TIME_UNITS[m[3] as string] as number) : fallbackSeconds
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0)
  return {
    acceptedPerSec: Math.round((total - non2xx) / secs),
    accepted: total - non2xx,
    non2xx,
  }
}
