/**
 * protoevents runtime: what generated code and services import.
 *
 * Symbols above the "integrators" line are for users of generated code; the
 * rest is what generated code itself calls.
 */

// Consuming
export { CLOSE_GRACE_MS, type Consumer, type ConsumerOptions } from "./consumer.js";
// Operating dead letters
export {
  type DeadLetter,
  type DeadLetterGroup,
  type DeadLetterQuery,
  type DeadLetterSelection,
  type DeadLetterSummary,
  type DeadLetterView,
  type DecodedDeadLetterView,
  listDeadLetters,
  type ReplayOptions,
  type ReplayOutcome,
  type ReplayReport,
  replayDeadLetters,
  selectsDeadLetter,
  showDeadLetters,
  summarizeDeadLetters,
  type UndecodableDeadLetterView,
  viewDeadLetter,
} from "./dead-letters.js";
export * as defaults from "./default-options.js";
export { DEFAULT_DEAD_LETTER_LIMIT } from "./default-options.js";
export type { Handler, HandlerContext, TransactionContext } from "./delivery/binding.js";
// The dead-letter protocol: the attributes a dead letter carries
export {
  DeadLetterAttribute,
  deadLetterReason,
  EXHAUSTED_RETRIES,
  REPLAY_FOR_ATTRIBUTE,
  replayAttributes,
  UNKNOWN_REASON,
} from "./delivery/dead-letter-protocol.js";
export type { DeliveryOutcome, DeliveryResult } from "./delivery/deliverer.js";
export type { ConsumerHealth, SubscriptionHealth } from "./delivery/stream-supervisor.js";
export {
  EMULATOR_COMMAND_ENV,
  type Emulator,
  type EmulatorOptions,
  findEmulator,
  startEmulator,
} from "./emulator.js";
// The envelope
export {
  CLOUDEVENTS_SPEC_VERSION,
  CloudEventAttribute,
  ContentType,
  type DecodedEvent,
  type EncodeOptions,
  type Envelope,
  type EventJsonView,
  formatViolations,
  type IncomingMessage,
  isReservedAttribute,
  type OutgoingMessage,
  REDACTED,
  redactedJson,
  toJsonView,
} from "./envelope.js";
// Errors
export {
  Code,
  type ErrorDetails,
  type FieldViolation,
  isPermanentCode,
  isProtoeventsError,
  NO_VIOLATIONS,
  PermanentError,
  ProtoeventsError,
  reasonToString,
} from "./errors.js";
export {
  type HealthChecks,
  type HealthServer,
  type HealthServerOptions,
  type HealthStatus,
  startHealthServer,
  storeProblems,
  subscriptionProblems,
} from "./health.js";
export {
  announceLocalEmulator,
  findLocalEmulator,
  type LocalEmulator,
  localEmulatorFile,
} from "./local-emulator.js";
export { createLogger, type Logger, traceFields } from "./logger.js";
export { METER_NAME } from "./metrics.js";
export {
  createOutboxSink,
  type OutboxRelay,
  type OutboxRelayOptions,
  startOutboxRelay,
} from "./outbox.js";
// Provisioning from the contracts
export {
  type ApplyResult,
  applyPlan,
  formatPlan,
  type ProvisioningAction,
  type ProvisioningPlan,
  planProvisioning,
  provision,
} from "./provision.js";
// Publishing
export type {
  BatchingOptions,
  EventPublisher,
  EventPublisherOptions,
  EventSink,
  PublishOptions,
  PublishResult,
} from "./publisher.js";
// Connecting, the emulator, logging
export { createPubSub, LOCAL_PROJECT_ID, type PubSubConnectionOptions } from "./pubsub-client.js";
export {
  DEFAULT_PRUNE_INTERVAL_MS,
  DEFAULT_RETENTION_MS,
  type Pruning,
  type PruningOptions,
  startPruning,
} from "./retention.js";
export { type RetiredResource, type RetireOptions, retireSubscription } from "./retire.js";
export {
  type CreateStoreOptions,
  createPostgresStore,
  createSqliteStore,
  createStore,
  type Migration,
  type PostgresStoreOptions,
  type SqliteStoreOptions,
  type StoreConfig,
  storeConfigFromEnv,
} from "./store/index.js";
// Stores, the inbox and the outbox
export type {
  InboxStore,
  OutboxEntry,
  OutboxStore,
  PendingOutboxRow,
  ProtoeventsTables,
  Store,
  StoreDialect,
  StoreTransaction,
} from "./store/store.js";
export {
  type TerraformConfiguration,
  type TerraformOptions,
  terraformConfiguration,
} from "./terraform.js";
// Tracing (W3C traceparent with OpenTelemetry)
export {
  activeTraceparent,
  formatTraceparent,
  parseTraceparent,
  TRACER_NAME,
} from "./tracing.js";
export { uuidv7 } from "./uuidv7.js";

// ---- integrators: called by generated code -------------------------------

export { startConsumer, type TransactionalStore } from "./consumer.js";
export {
  type ApplicationContract,
  type ContractRegistry,
  type DeadLetterContract,
  defineApplication,
  defineEvent,
  defineRegistry,
  defineSubscription,
  type EventContract,
  type PayloadEncoding,
  type SubscriptionContract,
} from "./contract.js";
export { type Binding, bindHandler, withTransaction } from "./delivery/binding.js";
export { decodeEvent, decodeValidEvent, encodeEvent, readEnvelope } from "./envelope.js";
export { type LinearPattern, linearPattern } from "./pattern.js";
export { createEventPublisher } from "./publisher.js";
export { codePointLength } from "./text.js";
