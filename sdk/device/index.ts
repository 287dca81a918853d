/**
 * The mqpush device SDK, for Node and browsers. `FileStorage` (Node only) is not exported
 * here, so that browser bundles never see `node:fs`: import it from `./file-storage.js`.
 */
export {
  MqpushDevice,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_DEDUPE_WINDOW,
  DEFAULT_KEEPALIVE_SECONDS,
  DEFAULT_RECONNECT_PERIOD_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  MAX_REREGISTER_BACKOFF_MS,
  type ConnectedEvent,
  type DisconnectedEvent,
  type MqpushDeviceEvents,
  type MqpushDeviceOptions,
  type RegisteredEvent,
} from './mqpush-device.js'
export type { DeviceStorage } from './device-storage.js'
export { MemoryStorage } from './memory-storage.js'
export { LocalStorageStorage, type WebStorage } from './local-storage-storage.js'
export type { Listener } from './typed-emitter.js'
export { MqpushApiError } from '../protocol/api-error.js'
export { ErrorCode } from '../protocol/error-codes.js'
export {
  NotifyType,
  type EnvelopeTarget,
  type MessageKind,
  type PushEnvelope,
} from '../protocol/envelope.js'
export type { DeviceInfo } from '../protocol/responses.js'
export type { DeviceAttributes } from '../protocol/schemas.js'
