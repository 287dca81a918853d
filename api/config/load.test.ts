import { readFileSync } from 'node:fs'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from './load.js'
import { renderEnvExample, SETTINGS } from './schema.js'

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const c = loadConfig({})
    expect(c).toMatchObject({
      dataDir: './data',
      httpPort: 8080,
      mqttPort: 1883,
      mqttWsPath: '/mqtt',
      adminToken: undefined,
      jobsEnabled: true,
      storeSynchronous: 'normal',
    })
  })

  it('reads variables and coerces their types', () => {
    const c = loadConfig({
      MQPUSH_HTTP_PORT: '9000',
      MQPUSH_JOBS_ENABLED: 'false',
      MQPUSH_DATA_DIR: '/srv/x',
    })
    expect(c.httpPort).toBe(9000)
    expect(c.jobsEnabled).toBe(false)
    expect(c.dataDir).toBe('/srv/x')
  })

  it('fails naming the variable', () => {
    expect(() => loadConfig({ MQPUSH_HTTP_PORT: 'eighty' })).toThrow(
      /MQPUSH_HTTP_PORT="eighty" is invalid/,
    )
    expect(() => loadConfig({ MQPUSH_MQTT_PORT: '70000' })).toThrow(ConfigError)
    expect(() => loadConfig({ MQPUSH_LOG_LEVEL: 'loud' })).toThrow(/MQPUSH_LOG_LEVEL/)
  })

  it('reads <NAME>_FILE for secrets and hides them in errors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mqpush-config-'))
    writeFileSync(join(dir, 'token'), 'from-a-file\n')
    expect(loadConfig({ MQPUSH_ADMIN_TOKEN_FILE: join(dir, 'token') }).adminToken).toBe(
      'from-a-file',
    )
    expect(() =>
      loadConfig({ MQPUSH_ADMIN_TOKEN: 'a', MQPUSH_ADMIN_TOKEN_FILE: join(dir, 'token') }),
    ).toThrow(/both set/)
    expect(() => loadConfig({ MQPUSH_ADMIN_TOKEN_FILE: join(dir, 'missing') })).toThrow(
      /cannot read/,
    )
  })

  it('takes CORS origins as browsers send them, and refuses what could never match or is unsafe', () => {
    for (const ok of [
      '*',
      'https://app.example',
      'https://a.example, http://b.example:8080',
      'capacitor://localhost',
    ]) {
      expect(loadConfig({ MQPUSH_HTTP_CORS_ORIGINS: ok }).httpCorsOrigins).toBe(ok)
    }
    for (const bad of [
      'null',
      'https://app.example/',
      'app.example',
      'https://a.example,,https://b.example',
      ' ',
    ]) {
      expect(() => loadConfig({ MQPUSH_HTTP_CORS_ORIGINS: bad })).toThrow(
        /MQPUSH_HTTP_CORS_ORIGINS/,
      )
    }
  })

  it('wants the TLS certificate and key together', () => {
    expect(() => loadConfig({ MQPUSH_MQTT_TLS_CERT_FILE: '/c.pem' })).toThrow(/together/)
  })

  it('mqpush.env.example lists every variable with its default (npm run gen:env)', () => {
    const committed = readFileSync(new URL('../../mqpush.env.example', import.meta.url), 'utf8')
    expect(committed).toBe(renderEnvExample())
    for (const s of Object.values(SETTINGS)) expect(committed).toContain(`#${s.env}=`)
  })
})
