import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { serviceNodeFlagsOf } from './mqpush.js'

// bench:ab starts another build with that build's own node flags, not this one's: a change of
// the flags compared against the build before it must not run both sides with the new ones.
const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})
const build = (runtimeFlags?: string) => {
  const dir = mkdtempSync(join(tmpdir(), 'mqpush-build-'))
  dirs.push(dir)
  mkdirSync(join(dir, 'dist/api'), { recursive: true })
  if (runtimeFlags !== undefined) {
    writeFileSync(join(dir, 'dist/api/runtime-flags.js'), runtimeFlags)
  }
  return dir
}

describe('serviceNodeFlagsOf', () => {
  it("reads another build's own flags from its dist", async () => {
    const dir = build("export const SERVICE_NODE_FLAGS = ['--v8-pool-size=3']\n")
    expect(await serviceNodeFlagsOf(dir)).toEqual(['--v8-pool-size=3'])
  })

  it('gives none for a build from before the flags were kept in a file', async () => {
    expect(await serviceNodeFlagsOf(build())).toEqual([])
  })

  it('refuses a file whose list is not strings, rather than start a build with a wrong command', async () => {
    const dir = build('export const SERVICE_NODE_FLAGS = [1]\n')
    await expect(serviceNodeFlagsOf(dir)).rejects.toThrow(/not a list of strings/)
  })
})
