import { readFileSync } from 'node:fs'
import { type Config, settingEntries } from './schema.js'

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/**
 * Reads every setting from the environment (or `<NAME>_FILE`), applies defaults, validates,
 * and fails naming the variable. Never reads anything else.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const config: Record<string, unknown> = {}
  for (const [key, s] of settingEntries()) {
    let raw = env[s.env]
    const file = env[`${s.env}_FILE`]
    if (raw !== undefined && file !== undefined) {
      throw new ConfigError(`${s.env} and ${s.env}_FILE are both set; set only one`)
    }
    if (file !== undefined) {
      try {
        raw = readFileSync(file, 'utf8').trim()
      } catch (err) {
        throw new ConfigError(`${s.env}_FILE: cannot read ${file}: ${(err as Error).message}`)
      }
    }
    if (raw === '') raw = undefined
    const input = raw ?? s.fallback
    const parsed = s.schema.safeParse(input)
    if (!parsed.success) {
      const reason = parsed.error.issues.map((i) => i.message).join('; ')
      throw new ConfigError(
        `${s.env}=${s.secret ? '<hidden>' : JSON.stringify(input)} is invalid: ${reason}`,
      )
    }
    config[key] = parsed.data
  }
  const c = config as Config
  if ((c.mqttTlsCertFile === undefined) !== (c.mqttTlsKeyFile === undefined)) {
    throw new ConfigError(
      'MQPUSH_MQTT_TLS_CERT_FILE and MQPUSH_MQTT_TLS_KEY_FILE must be set together',
    )
  }
  return c
}
