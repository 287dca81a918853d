import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['{api,broker,sdk,bench,test}/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // integration suites start real listeners on free ports; files run in parallel processes
    pool: 'forks',
  },
})
