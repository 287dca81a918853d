import { Hono } from 'hono'
import type { AppInfo, BackupInfo } from '../../../../sdk/protocol/responses.js'
import { CreateAppRequestSchema } from '../../../../sdk/protocol/schemas.js'
import type { App, AppId } from '../../../core/model.js'
import type { HttpDeps, HttpEnv } from '../../deps.js'
import { adminAuth } from '../../middleware/auth.js'
import { readJson } from '../../middleware/body.js'

export const appInfo = (a: App): AppInfo => ({
  appId: a.id,
  name: a.name,
  appKey: a.key,
  appSecret: a.secret,
  createdAt: new Date(a.createdAt).toISOString(),
})

/** The operator surface (admin token): apps and their credentials, backups. */
export function adminRoutes(deps: HttpDeps) {
  const r = new Hono<HttpEnv>()
  r.use('*', adminAuth(deps))
  r.post('/apps', async (c) => {
    const { name } = await readJson(c, CreateAppRequestSchema)
    return c.json(appInfo(await deps.apps.createApp(name)), 201)
  })
  r.get('/apps', async (c) => c.json({ apps: (await deps.apps.listApps()).map(appInfo) }))
  r.get('/apps/:appId', async (c) =>
    c.json(appInfo(await deps.apps.getApp(c.req.param('appId') as AppId))),
  )
  // the service holds its database locked: this is how to copy it without stopping
  r.post('/backups', async (c) => {
    const started = Date.now()
    const { file, bytes } = await deps.backup()
    const body: BackupInfo = { file, bytes, tookMs: Date.now() - started }
    return c.json(body, 201)
  })
  return r
}
