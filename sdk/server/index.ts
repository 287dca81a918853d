/** The mqpush server SDK: push and read results over the HTTP API with the app secret. */
export {
  MqpushServer,
  DEFAULT_TIMEOUT_MS,
  type InvalidRegIdsQuery,
  type MqpushServerOptions,
  type PushMessage,
  type TopicMembers,
} from './mqpush-server.js'
export { MqpushApiError } from '../protocol/api-error.js'
export { ErrorCode } from '../protocol/error-codes.js'
export { NotifyType, type MessageKind } from '../protocol/envelope.js'
export type {
  AliasLookup,
  DeviceInfo,
  InvalidReason,
  InvalidRegId,
  InvalidRegIdsResponse,
  MessageFunnel,
  MessageState,
  MessageStatus,
  PushResponse,
  TargetType,
  TopicInfo,
  TopicSubscribeResult,
  TopicUnsubscribeResult,
  UserAccountLookup,
} from '../protocol/responses.js'
export type { PushRequest, Target } from '../protocol/schemas.js'
