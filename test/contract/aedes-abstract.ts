import * as nodeAssert from 'node:assert'
import { createRequire } from 'node:module'
import { expect, test } from 'vitest'

/**
 * Runs aedes-persistence's abstract test suite (written for node:test) under vitest: each test
 * gets a `t` with node's assert functions, `plan` checked at the end, `diagnostic` ignored.
 */
const require = createRequire(import.meta.url)
const abstract = require('aedes-persistence/abstract.js') as (opts: {
  test: (name: string, fn: (t: unknown) => Promise<void>) => void
  persistence: () => unknown
  testAsync: boolean
}) => void

export function runAedesAbstractSuite(persistence: () => unknown): void {
  abstract({
    testAsync: true,
    persistence,
    test(name, fn) {
      test(name, async () => {
        let planned: number | undefined
        let asserted = 0
        const assert = new Proxy(nodeAssert, {
          get(target, prop) {
            const value = (target as unknown as Record<PropertyKey, unknown>)[prop]
            if (typeof value !== 'function') return value
            return (...args: unknown[]) => {
              asserted++
              return (value as (...a: unknown[]) => unknown)(...args)
            }
          },
        })
        await fn({
          assert,
          plan(n: number) {
            planned = n
          },
          diagnostic() {},
        })
        if (planned !== undefined) expect(asserted, `planned ${planned} assertions`).toBe(planned)
      })
    },
  })
}
