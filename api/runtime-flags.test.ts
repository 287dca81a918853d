import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { SERVICE_NODE_FLAGS } from './runtime-flags.js'

// The service's node flags are written in two places that cannot import them, the npm start
// script and the Docker image's command; the bench imports them.
const root = new URL('../', import.meta.url)
const read = (path: string) => readFileSync(new URL(path, root), 'utf8')
const command = (flags: readonly string[]) => ['node', ...flags, 'dist/api/main.js']

describe('the service node flags', () => {
  it('are on the node command line of `npm start`', () => {
    const start = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts
      .start
    expect(start).toBe(command(SERVICE_NODE_FLAGS).join(' '))
  })

  it("are on the node command line of the Docker image's CMD", () => {
    const lines = read('docker/Dockerfile').split('\n')
    // the last CMD at the start of a line is the image's (HEALTHCHECK's own is indented)
    const cmd = lines.filter((l) => /^CMD\s/i.test(l)).at(-1)
    expect(cmd).toBeDefined()
    expect(JSON.parse((cmd as string).replace(/^CMD\s+/i, ''))).toEqual(command(SERVICE_NODE_FLAGS))
    // an ENTRYPOINT would run before the CMD's node and its flags
    expect(lines.filter((l) => /^ENTRYPOINT\s/i.test(l))).toEqual([])
  })
})
