import { writeFileSync } from 'node:fs'
import { renderEnvExample } from '../api/config/schema.js'

/** Writes mqpush.env.example from the settings table (npm run gen:env). */
writeFileSync(new URL('../mqpush.env.example', import.meta.url), renderEnvExample())
console.log('wrote mqpush.env.example')
