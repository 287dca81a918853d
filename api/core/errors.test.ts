import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { ErrorCode } from '../../sdk/protocol/error-codes.js'
import { ERROR_CATALOGUE } from './errors.js'

describe('error catalogue', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8')

  it('gives every code the HTTP status its number says', () => {
    for (const code of Object.values(ErrorCode)) {
      expect(ERROR_CATALOGUE[code].http).toBe(Math.floor(code / 100))
    }
  })

  it('documents every code in docs/errors.md under its own anchor, with its name', () => {
    for (const [name, code] of Object.entries(ErrorCode)) {
      expect(doc).toMatch(new RegExp(`### ${code}\\s+\\*\\*${name}\\*\\*`))
    }
  })
})
