import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { SERVICE_NODE_FLAGS } from './runtime-flags.js'

// The service's node flags are written in three places that cannot import them: the npm start
// script, the Docker image's command, and (importing them) the bench's start of the service.
const root = new URL('../', import.meta.url)
const read = (path: string) => readFileSync(new URL(path, root), 'utf8')

describe('the service node flags', () => {
  it('are on the node command line of `npm start`', () => {
    const start = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts
      .start
    expect(start).toBe(`node ${SERVICE_NODE_FLAGS.join(' ')} dist/api/main.js`)
  })

  it("are on the node command line of the Docker image's CMD", () => {
    const cmd = read('docker/Dockerfile')
      .split('\n')
      .find((l) => l.startsWith('CMD '))
    expect(cmd).toBeDefined()
    expect(JSON.parse((cmd as string).slice(4))).toEqual([
      'node',
      ...SERVICE_NODE_FLAGS,
      'dist/api/main.js',
    ])
  })
})
