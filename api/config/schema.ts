import { z } from 'zod'

/**
 * Every setting of mqpush: its environment variable, type, default, unit and reason.
 * This table is the single source: `load.ts` reads it, `mqpush.env.example` is generated from it
 * (`npm run gen:env`, checked by a test), and the README links to that file.
 * Each variable may also be given as `<NAME>_FILE`, a path whose content is the value (secrets).
 */
interface Setting<T> {
  env: string
  schema: z.ZodType<T>
  /** The default as it would be written in the env file; undefined = unset by default. */
  fallback: string | undefined
  doc: string
  secret?: boolean
}

const setting = <T>(
  env: string,
  schema: z.ZodType<T>,
  fallback: string | undefined,
  doc: string,
  secret = false,
): Setting<T> => ({ env, schema, fallback, doc, secret })

/** The type of each schema as the sample env file states it. */
const TYPE_LABELS = new WeakMap<z.ZodType, string>()
const typed = <S extends z.ZodType>(schema: S, label: string): S => {
  TYPE_LABELS.set(schema, label)
  return schema
}

const port = typed(z.coerce.number().int().min(0).max(65535), 'port 0–65535')
const positiveInt = typed(z.coerce.number().int().positive(), 'integer > 0')
const nonNegativeInt = typed(z.coerce.number().int().min(0), 'integer ≥ 0')
const bool = typed(
  z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1'),
  'true | false',
)
const text = typed(z.string().min(1), 'string')
const optionalText = typed(z.string().optional(), 'string, optional')
/** An origin as browsers send it: scheme://host[:port], no path (a trailing slash never matches). */
const ORIGIN = /^[a-z][a-z0-9+.-]*:\/\/[^\s/?#]+$/i
const corsOrigins = typed(
  z.string().refine((v) => v.split(',').every((o) => o.trim() === '*' || ORIGIN.test(o.trim())), {
    message:
      'each comma-separated entry is * or an origin such as https://app.example (scheme://host[:port], no path, no empty entry, not null)',
  }),
  'origins, comma separated, or *',
)

export const SETTINGS = {
  dataDir: setting(
    'MQPUSH_DATA_DIR',
    text,
    './data',
    'Directory of the embedded store (SQLite database, generated admin token). Created if missing.',
  ),
  storeSynchronous: setting(
    'MQPUSH_STORE_SYNCHRONOUS',
    typed(z.enum(['normal', 'full']), 'normal | full'),
    'normal',
    'SQLite durability. normal: survives a crash or kill -9 of the process (WAL); full: also survives power loss, at the cost of an fsync per commit.',
  ),
  httpHost: setting('MQPUSH_HTTP_HOST', text, '0.0.0.0', 'Address the HTTP API listens on.'),
  httpPort: setting(
    'MQPUSH_HTTP_PORT',
    port,
    '8080',
    'Port of the HTTP API; MQTT over WebSocket is served on the same port at MQPUSH_MQTT_WS_PATH. 0 picks a free port.',
  ),
  httpBodyLimitBytes: setting(
    'MQPUSH_HTTP_BODY_LIMIT_BYTES',
    positiveInt,
    '262144',
    'Largest request body in bytes (1000 targets plus a 4 KB payload fit comfortably).',
  ),
  httpKeepAliveSeconds: setting(
    'MQPUSH_HTTP_KEEPALIVE_SECONDS',
    positiveInt,
    '65',
    'How long an idle keep-alive HTTP connection stays open. App servers reuse their connections between pushes; keep this above the idle timeout of a load balancer in front (60 s for most). Node alone would close after 5 s.',
  ),
  httpCorsOrigins: setting(
    'MQPUSH_HTTP_CORS_ORIGINS',
    corsOrigins,
    '*',
    'Origins allowed to call the device endpoints from a browser: comma separated, each as browsers send it (https://app.example, no path), or * for any.',
  ),
  mqttHost: setting('MQPUSH_MQTT_HOST', text, '0.0.0.0', 'Address the MQTT listeners bind to.'),
  mqttPort: setting('MQPUSH_MQTT_PORT', port, '1883', 'MQTT over TCP. 0 picks a free port.'),
  mqttWsPath: setting(
    'MQPUSH_MQTT_WS_PATH',
    typed(z.string().regex(/^\/[^\s]*$/), 'URL path'),
    '/mqtt',
    'Path of MQTT over WebSocket on the HTTP port (browsers).',
  ),
  mqttTlsPort: setting(
    'MQPUSH_MQTT_TLS_PORT',
    port,
    '8883',
    'MQTT over TLS; only listens when the certificate and key files are set.',
  ),
  mqttTlsCertFile: setting(
    'MQPUSH_MQTT_TLS_CERT_FILE',
    optionalText,
    undefined,
    'PEM certificate chain for MQTT over TLS.',
  ),
  mqttTlsKeyFile: setting(
    'MQPUSH_MQTT_TLS_KEY_FILE',
    optionalText,
    undefined,
    'PEM private key for MQTT over TLS.',
  ),
  mqttKeepaliveMaxSeconds: setting(
    'MQPUSH_MQTT_KEEPALIVE_MAX_SECONDS',
    nonNegativeInt,
    '1800',
    'Largest keepalive a device may ask for (0 = no limit). Larger asks are refused with CONNACK 6.',
  ),
  mqttConnectTimeoutMs: setting(
    'MQPUSH_MQTT_CONNECT_TIMEOUT_MS',
    positiveInt,
    '30000',
    'A socket that has not sent CONNECT within this time is closed.',
  ),
  mqttMaxPacketBytes: setting(
    'MQPUSH_MQTT_MAX_PACKET_BYTES',
    positiveInt,
    '16384',
    'Largest MQTT packet a client may send; a larger one closes the connection. Devices only send CONNECT, SUBSCRIBE and small reports.',
  ),
  adminToken: setting(
    'MQPUSH_ADMIN_TOKEN',
    optionalText,
    undefined,
    'Bearer token of the admin API (/admin/v1). If unset, one is generated on first start, printed, and kept in <data dir>/admin-token.',
    true,
  ),
  defaultAppName: setting(
    'MQPUSH_DEFAULT_APP_NAME',
    text,
    'default',
    'Name of the app created on first start.',
  ),
  pushRatePerSec: setting(
    'MQPUSH_RATE_PUSH_PER_SEC',
    positiveInt,
    '10000',
    'Push requests per second per app (token bucket, burst of two seconds). Over it: HTTP 429, code 42901.',
  ),
  registerRatePerSec: setting(
    'MQPUSH_RATE_REGISTER_PER_SEC',
    positiveInt,
    '2000',
    'Device registrations per second per app (burst of two seconds).',
  ),
  registerPerAddressPerSec: setting(
    'MQPUSH_RATE_REGISTER_PER_ADDRESS_PER_SEC',
    positiveInt,
    '20',
    "Device registrations per second from one client address (burst of two seconds), so one address cannot use up an app's budget. Raise it behind a NAT or proxy that many devices share.",
  ),
  authFailuresPerMinute: setting(
    'MQPUSH_RATE_AUTH_FAILURES_PER_MIN',
    positiveInt,
    '60',
    'Failed authentications (HTTP and MQTT) allowed per client address per minute; past it the address gets 429 / CONNACK 5 until the minute ends.',
  ),
  deviceInactiveDays: setting(
    'MQPUSH_DEVICE_INACTIVE_DAYS',
    positiveInt,
    '90',
    'A regId that has not connected for this many days becomes invalid (§4.2.2: three months).',
  ),
  messageRetentionDays: setting(
    'MQPUSH_MESSAGE_RETENTION_DAYS',
    positiveInt,
    '30',
    'Message records and receipts are kept this many days (§5.2.3: 30 days).',
  ),
  jobsEnabled: setting(
    'MQPUSH_JOBS_ENABLED',
    bool,
    'true',
    'Run the background jobs (expiry, retention, inactive devices) in this process.',
  ),
  logLevel: setting(
    'MQPUSH_LOG_LEVEL',
    typed(
      z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
      'fatal | error | warn | info | debug | trace | silent',
    ),
    'info',
    'Log level; logs are JSON lines on stdout.',
  ),
} as const

type Settings = typeof SETTINGS
export type Config = { [K in keyof Settings]: Settings[K] extends Setting<infer T> ? T : never }

/** The sample env file: every variable with its default, commented out. */
export function renderEnvExample(): string {
  const lines = [
    '# mqpush settings: every variable with its default. Copy to .env or export them.',
    '# Each may also be given as <NAME>_FILE=/path/to/file (the file holds the value), for secrets.',
    '# Generated from api/config/schema.ts by `npm run gen:env`; do not edit by hand.',
    '',
  ]
  for (const s of Object.values(SETTINGS) as Setting<unknown>[]) {
    lines.push(`# ${s.doc}`)
    lines.push(`# Type: ${TYPE_LABELS.get(s.schema) ?? 'string'}${s.secret ? ' (secret)' : ''}`)
    lines.push(`#${s.env}=${s.fallback ?? ''}`)
    lines.push('')
  }
  return lines.join('\n')
}

export function settingEntries(): Array<[keyof Config, Setting<unknown>]> {
  return Object.entries(SETTINGS) as Array<[keyof Config, Setting<unknown>]>
}
