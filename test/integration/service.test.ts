import Database from 'better-sqlite3'
import { readdirSync, statSync } from 'node:fs'
import { basename, dirname } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SECURITY_HEADERS } from '../../api/http/middleware/security-headers.js'
import { ErrorCode } from '../../sdk/protocol/error-codes.js'
import { startTestServer, type TestServer } from '../helpers/server.js'

describe('service: health, admin API and apps', () => {
  let s: TestServer
  beforeAll(async () => {
    s = await startTestServer()
  })
  afterAll(() => s.stop())

  it('answers /healthz with 200 while serving', async () => {
    const res = await s.http('GET', '/healthz')
    expect(res.status).toBe(200)
    expect(res.body).toEqual({ status: 'ok' })
  })

  it('created a default app on first start, visible through the admin API', async () => {
    const res = await s.http('GET', '/admin/v1/apps', { auth: `Bearer ${s.adminToken}` })
    expect(res.status).toBe(200)
    expect(res.body.apps).toHaveLength(1)
    expect(res.body.apps[0]).toMatchObject({
      appId: s.defaultApp.id,
      name: 'default',
      appKey: s.defaultApp.key,
      appSecret: s.defaultApp.secret,
    })
  })

  it('creates more apps with the admin token, each with its own credentials', async () => {
    const res = await s.http('POST', '/admin/v1/apps', {
      auth: `Bearer ${s.adminToken}`,
      body: { name: 'second' },
    })
    expect(res.status).toBe(201)
    expect(res.body.appId).toMatch(/^ap[0-9a-z]{14}$/)
    expect(res.body.appSecret).not.toBe(s.defaultApp.secret)
    const one = await s.http('GET', `/admin/v1/apps/${res.body.appId}`, {
      auth: `Bearer ${s.adminToken}`,
    })
    expect(one.body.name).toBe('second')
  })

  it('refuses the admin API without the right token', async () => {
    const none = await s.http('GET', '/admin/v1/apps')
    expect(none.status).toBe(401)
    expect(none.body.code).toBe(ErrorCode.MISSING_CREDENTIALS)
    const wrong = await s.http('GET', '/admin/v1/apps', { auth: 'Bearer nope' })
    expect(wrong.status).toBe(401)
    expect(wrong.body.code).toBe(ErrorCode.INVALID_ADMIN_TOKEN)
  })

  it('validates app creation', async () => {
    const res = await s.http('POST', '/admin/v1/apps', {
      auth: `Bearer ${s.adminToken}`,
      body: { name: '' },
    })
    expect(res.status).toBe(400)
    expect(res.body).toMatchObject({ code: ErrorCode.INVALID_REQUEST, http: 400 })
    expect(res.body.link).toBe(`docs/errors.md#${ErrorCode.INVALID_REQUEST}`)
  })

  it('sends the security headers with every answer, errors included', async () => {
    for (const res of [
      await s.http('GET', '/healthz'),
      await s.http('GET', '/admin/v1/apps', { auth: 'Bearer nope' }),
      await s.http('GET', '/v1/nothing-here'),
    ]) {
      for (const [name, value] of SECURITY_HEADERS) expect(res.headers.get(name)).toBe(value)
      expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    }
  })

  it('answers unknown routes with the error envelope', async () => {
    const res = await s.http('GET', '/v1/nothing-here')
    expect(res.status).toBe(404)
    expect(res.body.code).toBe(ErrorCode.NOT_FOUND)
  })
})

describe('service: admin token from the environment', () => {
  it('uses MQPUSH_ADMIN_TOKEN when set', async () => {
    const s = await startTestServer({ env: { MQPUSH_ADMIN_TOKEN: 'operator-secret-token' } })
    try {
      expect(s.adminToken).toBe('operator-secret-token')
      const res = await s.http('GET', '/admin/v1/apps', { auth: 'Bearer operator-secret-token' })
      expect(res.status).toBe(200)
    } finally {
      await s.stop()
    }
  })
})

describe('service: one process per data directory, backups while serving', () => {
  it('refuses a second service on the same data directory', async () => {
    const s = await startTestServer()
    try {
      await expect(startTestServer({ dataDir: s.dataDir })).rejects.toThrow(
        /in use by another process/,
      )
      // the first one still serves
      expect((await s.http('GET', '/healthz')).status).toBe(200)
    } finally {
      await s.stop(true)
    }
  })

  it('writes a consistent copy with POST /admin/v1/backups, admin token only', async () => {
    const s = await startTestServer()
    try {
      const reg = await s.register()
      const pushed = await s.push({
        target: { regIds: [reg.regId] },
        kind: 'passThrough',
        payload: 'kept in the backup',
      })
      expect(pushed.status).toBe(200)

      const refused = await s.http('POST', '/admin/v1/backups', { auth: 'Bearer nope' })
      expect(refused.status).toBe(401)

      // two at once: one backup, both answered with it (no half-written or clobbered copy)
      const [res, again] = await Promise.all([
        s.http('POST', '/admin/v1/backups', { auth: `Bearer ${s.adminToken}` }),
        s.http('POST', '/admin/v1/backups', { auth: `Bearer ${s.adminToken}` }),
      ])
      expect(res.status).toBe(201)
      expect(again.status).toBe(201)
      expect(again.body.file).toBe(res.body.file)
      expect(res.body.file).toMatch(/backups\/mqpush-\d{8}T\d{9}Z\.db$/)
      expect(res.body.bytes).toBe(statSync(res.body.file).size)
      expect(res.body.bytes).toBeGreaterThan(0)
      expect(readdirSync(dirname(res.body.file))).toEqual([basename(res.body.file)])

      // the copy opens on its own (as a restore would) and holds what was written
      const copy = new Database(res.body.file, { readonly: true })
      try {
        const device = copy.prepare('SELECT reg_id FROM devices WHERE reg_id = ?').get(reg.regId)
        expect(device).toEqual({ reg_id: reg.regId })
        const message = copy
          .prepare('SELECT id FROM messages WHERE id = ?')
          .get(pushed.body.messageId)
        expect(message).toEqual({ id: pushed.body.messageId })
      } finally {
        copy.close()
      }
    } finally {
      await s.stop(true)
    }
  })
})
