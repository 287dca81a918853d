import type { App, AppId } from '../model.js'

/** Storage of apps (port). */
export interface AppStore {
  insertApp(app: App, secretHash: string): Promise<void>
  getApp(id: AppId): Promise<App | undefined>
  findAppBySecretHash(secretHash: string): Promise<App | undefined>
  listApps(): Promise<App[]>
}
