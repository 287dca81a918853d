import { ErrorCode } from '../../../sdk/protocol/error-codes.js'
import type { Clock } from '../clock.js'
import { ApiError } from '../errors.js'
import { newAppId, newAppKey, newSecret, safeEqual, sha256 } from '../ids.js'
import type { App, AppId } from '../model.js'
import type { AppStore } from './app-store.js'

/** How long an authenticated app is served from memory before the store is asked again. */
const APP_CACHE_TTL_MS = 10_000

export interface AppServiceDeps {
  apps: AppStore
  clock: Clock
}

/** Apps and their credentials: app key for devices, app secret for servers. */
export class AppService {
  readonly #deps: AppServiceDeps
  readonly #bySecretHash = new Map<string, { app: App; until: number }>()
  readonly #byId = new Map<AppId, { app: App; until: number }>()

  constructor(deps: AppServiceDeps) {
    this.#deps = deps
  }

  async createApp(name: string): Promise<App> {
    const app: App = {
      id: newAppId(),
      name,
      key: newAppKey(),
      secret: newSecret(),
      createdAt: this.#deps.clock.now(),
    }
    await this.#deps.apps.insertApp(app, sha256(app.secret))
    return app
  }

  /** Creates the first app if there is none; returns it and whether it was created now. */
  async ensureDefaultApp(name: string): Promise<{ app: App; created: boolean }> {
    const existing = await this.#deps.apps.listApps()
    if (existing[0]) return { app: existing[0], created: false }
    return { app: await this.createApp(name), created: true }
  }

  async getApp(id: AppId): Promise<App> {
    const cached = this.#byId.get(id)
    if (cached && cached.until > this.#deps.clock.now()) return cached.app
    const app = await this.#deps.apps.getApp(id)
    if (!app) throw new ApiError(ErrorCode.APP_NOT_FOUND)
    this.#byId.set(id, { app, until: this.#deps.clock.now() + APP_CACHE_TTL_MS })
    return app
  }

  listApps(): Promise<App[]> {
    return this.#deps.apps.listApps()
  }

  /** The app whose secret this is; 40102 otherwise. */
  async authenticateSecret(secret: string): Promise<App> {
    const hash = sha256(secret)
    const now = this.#deps.clock.now()
    const cached = this.#bySecretHash.get(hash)
    if (cached && cached.until > now) return cached.app
    const app = await this.#deps.apps.findAppBySecretHash(hash)
    if (!app) throw new ApiError(ErrorCode.INVALID_APP_SECRET)
    this.#bySecretHash.set(hash, { app, until: now + APP_CACHE_TTL_MS })
    return app
  }

  /** The app if this is its key; 40103 otherwise (unknown app and wrong key look the same). */
  async authenticateKey(appId: string, key: string): Promise<App> {
    let app: App
    try {
      app = await this.getApp(appId as AppId)
    } catch {
      safeEqual(key, key)
      throw new ApiError(ErrorCode.INVALID_APP_KEY)
    }
    if (!safeEqual(app.key, key)) throw new ApiError(ErrorCode.INVALID_APP_KEY)
    return app
  }
}
