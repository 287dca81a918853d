import { z } from 'zod'
import { ErrorCode } from './error-codes.js'
import { isRegId } from './ids.js'
import {
  MAX_ATTRIBUTE_CHARS,
  MAX_DESCRIPTION_CHARS,
  MAX_EXTRA_BYTES,
  MAX_EXTRA_KEY_CHARS,
  MAX_EXTRA_KEYS,
  MAX_NOTIFY_ID,
  MAX_PAYLOAD_BYTES,
  MAX_TARGETS_PER_CALL,
  MAX_TITLE_CHARS,
  MAX_TTL_MS,
  MIN_TTL_MS,
} from './limits.js'
import { charCount, isValidName, utf8Bytes } from './names.js'

/**
 * Request schemas of the HTTP API, shared by the server (validation) and the SDKs (types).
 * Limit violations carry their own error code in `params.code`; the API maps those to the
 * catalogue and everything else to INVALID_REQUEST.
 */
const coded = (code: number, error: string) => ({ error, params: { code } })

const name = (what: string) =>
  z.string().refine(isValidName, coded(ErrorCode.INVALID_NAME, `invalid ${what}`))

const regId = z
  .string()
  .refine(isRegId, coded(ErrorCode.INVALID_REG_ID, 'not a regId (22 characters of [0-9A-Za-z])'))

const targetList = <T extends z.ZodType>(item: T, what: string) =>
  z
    .array(item)
    .refine((a) => a.length > 0, coded(ErrorCode.INVALID_TARGET, `${what} must not be empty`))
    .refine(
      (a) => a.length <= MAX_TARGETS_PER_CALL,
      coded(ErrorCode.TOO_MANY_TARGETS, `at most ${MAX_TARGETS_PER_CALL} ${what} per call`),
    )

/** Exactly one of the keys: regIds, aliases, userAccounts, topic, all. */
export const TargetSchema = z
  .strictObject({
    regIds: targetList(regId, 'regIds').optional(),
    aliases: targetList(name('alias'), 'aliases').optional(),
    userAccounts: targetList(name('userAccount'), 'userAccounts').optional(),
    topic: name('topic').optional(),
    all: z.literal(true).optional(),
  })
  .refine(
    (t) => Object.values(t).filter((v) => v !== undefined).length === 1,
    coded(
      ErrorCode.INVALID_TARGET,
      'target needs exactly one of regIds, aliases, userAccounts, topic, all',
    ),
  )
export type Target = z.infer<typeof TargetSchema>

const ExtraSchema = z
  .record(z.string(), z.string())
  .refine(
    (e) => Object.keys(e).length <= MAX_EXTRA_KEYS,
    coded(ErrorCode.INVALID_EXTRA, `at most ${MAX_EXTRA_KEYS} extra keys`),
  )
  .refine(
    (e) => Object.keys(e).every((k) => k.length > 0 && charCount(k) <= MAX_EXTRA_KEY_CHARS),
    coded(ErrorCode.INVALID_EXTRA, `extra keys are 1–${MAX_EXTRA_KEY_CHARS} characters`),
  )
  .refine(
    (e) => utf8Bytes(JSON.stringify(e)) <= MAX_EXTRA_BYTES,
    coded(ErrorCode.INVALID_EXTRA, `extra is larger than ${MAX_EXTRA_BYTES} bytes as JSON`),
  )

/** POST /v1/messages */
export const PushRequestSchema = z
  .strictObject({
    target: TargetSchema,
    kind: z.enum(['notification', 'passThrough']).default('notification'),
    title: z
      .string()
      .refine(
        (s) => charCount(s) <= MAX_TITLE_CHARS,
        coded(ErrorCode.TITLE_TOO_LONG, `title is longer than ${MAX_TITLE_CHARS} characters`),
      )
      .optional(),
    description: z
      .string()
      .refine(
        (s) => charCount(s) <= MAX_DESCRIPTION_CHARS,
        coded(
          ErrorCode.DESCRIPTION_TOO_LONG,
          `description is longer than ${MAX_DESCRIPTION_CHARS} characters`,
        ),
      )
      .optional(),
    payload: z
      .string()
      .refine(
        (s) => utf8Bytes(s) <= MAX_PAYLOAD_BYTES,
        coded(ErrorCode.PAYLOAD_TOO_LARGE, `payload is larger than ${MAX_PAYLOAD_BYTES} bytes`),
      )
      .optional(),
    extra: ExtraSchema.optional(),
    notifyId: z.number().int().min(0).max(MAX_NOTIFY_ID).optional(),
    notifyType: z.number().int().min(-1).max(7).optional(),
    ttlSeconds: z
      .number()
      .int()
      .refine(
        (s) => s * 1000 >= MIN_TTL_MS && s * 1000 <= MAX_TTL_MS,
        coded(
          ErrorCode.TTL_OUT_OF_RANGE,
          `ttlSeconds must be between ${MIN_TTL_MS / 1000} and ${MAX_TTL_MS / 1000}`,
        ),
      )
      .optional(),
  })
  .superRefine((r, ctx) => {
    if (r.kind === 'notification' && (!r.title || !r.description)) {
      ctx.addIssue({
        code: 'custom',
        message: 'a notification needs a non-empty title and description',
        params: { code: ErrorCode.MISSING_CONTENT },
        path: [r.title ? 'description' : 'title'],
      })
    }
    if (r.kind === 'passThrough' && !r.payload) {
      ctx.addIssue({
        code: 'custom',
        message: 'a pass-through message needs a non-empty payload',
        params: { code: ErrorCode.MISSING_CONTENT },
        path: ['payload'],
      })
    }
  })
export type PushRequest = z.input<typeof PushRequestSchema>
export type ParsedPushRequest = z.output<typeof PushRequestSchema>

const attribute = z.string().max(MAX_ATTRIBUTE_CHARS)

/** Device attributes used by targeting filters (model, OS, app version, locale, network). */
export const DeviceAttributesSchema = z.strictObject({
  model: attribute.optional(),
  os: attribute.optional(),
  osVersion: attribute.optional(),
  appVersion: attribute.optional(),
  locale: attribute.optional(),
  network: attribute.optional(),
})
export type DeviceAttributes = z.infer<typeof DeviceAttributesSchema>

/**
 * POST /v1/devices/register. A device that kept its regId and token sends both and keeps the
 * regId (§4.2.2). `installationId` is an identifier of the physical device that survives a
 * reinstall (Android ID, IDFV…): a fresh registration with the same one invalidates the
 * device's previous regId, as a reinstall does on MiPush.
 */
export const RegisterRequestSchema = z.strictObject({
  appId: z.string().min(1).max(64),
  appKey: z.string().min(1).max(128),
  regId: z.string().max(64).optional(),
  token: z.string().max(256).optional(),
  installationId: z.string().min(1).max(128).optional(),
  attributes: DeviceAttributesSchema.default({}),
})
export type RegisterRequest = z.input<typeof RegisterRequestSchema>

export interface RegisterResponse {
  regId: string
  token: string
  appId: string
  /** True when an existing regId was kept. */
  renewed: boolean
  mqtt: { clientId: string; username: string; password: string; topics: DeviceTopics }
}

export interface DeviceTopics {
  inbox: string
  all: string
  /** Prefix of app topics: append the topic name. */
  topicPrefix: string
  /** Where the device publishes a click report: `{"id":"<messageId>"}`. */
  click: string
}

/** POST /v1/topics/{topic}/subscribe and …/unsubscribe (server side) */
export const TopicMembersRequestSchema = z
  .strictObject({
    regIds: targetList(regId, 'regIds').optional(),
    aliases: targetList(name('alias'), 'aliases').optional(),
  })
  .refine(
    (t) => (t.regIds === undefined) !== (t.aliases === undefined),
    coded(ErrorCode.INVALID_TARGET, 'send exactly one of regIds, aliases'),
  )
export type TopicMembersRequest = z.input<typeof TopicMembersRequestSchema>

/** POST /admin/v1/apps */
export const CreateAppRequestSchema = z.strictObject({
  name: z.string().min(1).max(100),
})
export type CreateAppRequest = z.infer<typeof CreateAppRequestSchema>

/** PATCH /v1/device: a device updates its attributes (e.g. network changed). */
export const UpdateDeviceRequestSchema = z.strictObject({
  attributes: DeviceAttributesSchema,
})
