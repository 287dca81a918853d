import type { AppService } from '../core/apps/app-service.js'
import type { DeviceService } from '../core/devices/device-service.js'
import type { RateLimiter } from '../core/limits/rate-limiter.js'
import type { Logger } from '../core/logger.js'
import type { MessageService } from '../core/messages/message-service.js'
import type { ReceiptService } from '../core/receipts/receipt-service.js'
import type { App, Device } from '../core/model.js'

/** Everything the HTTP API uses, wired by api/main.ts. */
export interface HttpDeps {
  apps: AppService
  devices: DeviceService
  messages: MessageService
  receipts: ReceiptService
  adminToken: string
  /** Writes a consistent copy of the store while serving; where it went and its size. */
  backup(): Promise<{ file: string; bytes: number }>
  limits: {
    /** Push requests, keyed by app id. */
    push: RateLimiter
    /** Device registrations, keyed by app id. */
    register: RateLimiter
    /** Device registrations, keyed by client address. */
    registerPerAddress: RateLimiter
    /** Failed authentications, keyed by client address. */
    authFailures: RateLimiter
  }
  /** Where devices connect, for the registration answer. */
  mqtt: { wsPath: string }
  bodyLimitBytes: number
  corsOrigins: string
  isReady(): boolean
  log: Logger
}

/** Values middleware puts on the context. */
export interface HttpEnv {
  Variables: {
    app: App
    device: Device
  }
}
