import { builtinModules } from 'node:module'
import { readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

// Browsers import sdk/device/index.ts: nothing it loads at run time may need Node.
const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const nodeOnly = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]))
/** Run-time imports and re-exports; `import type` / `export type` vanish at compile time. */
const IMPORT = /^\s*(?:import|export)\s+(?!type\s)(?:[^'"]*?\sfrom\s+)?['"]([^'"]+)['"]/gm

function runtimeGraph(entry: string) {
  const files = new Set<string>()
  const packages = new Set<string>()
  const visit = (file: string) => {
    if (files.has(file)) return
    files.add(file)
    for (const [, spec] of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      if (!spec) continue
      if (spec.startsWith('.')) visit(join(dirname(file), spec.replace(/\.js$/, '.ts')))
      else packages.add(spec)
    }
  }
  visit(entry)
  return { files: [...files].map((f) => relative(root, f)).sort(), packages: [...packages] }
}

describe('the device SDK in browsers', () => {
  const graph = runtimeGraph(join(here, 'index.ts'))

  it('loads no Node built-in module, and no package but MQTT.js', () => {
    expect(graph.packages.filter((p) => nodeOnly.has(p))).toEqual([])
    expect(graph.packages).toEqual(['mqtt'])
  })

  it('leaves FileStorage out, and uses no Node globals', () => {
    expect(graph.files).not.toContain('sdk/device/file-storage.ts')
    expect(graph.files).toContain('sdk/device/mqpush-device.ts')
    for (const file of graph.files) {
      const code = readFileSync(join(root, file), 'utf8').replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, '')
      expect(code, file).not.toMatch(/\bBuffer\b|\bprocess\.|\b__dirname\b|\brequire\(/)
    }
  })
})
