/**
 * Defaults of every tunable in the runtime, in one place. Durations carry
 * their unit in the name.
 */

/**
 * Publish batching. A batch goes out when it holds `maxMessages`, or
 * `maxBytes`, or after `maxMilliseconds`, whichever comes first. These match
 * the `@google-cloud/pubsub` defaults: 10 ms bounds the latency a lone event
 * pays, 100 messages and 1 MiB keep a request well below Pub/Sub's 10 MB and
 * 1,000-message request limits.
 */
export const DEFAULT_BATCHING = {
  maxMessages: 100,
  maxMilliseconds: 10,
  maxBytes: 1024 * 1024,
} as const;

/**
 * Dead-letter publishes are rare and a message waits for them before it is
 * acked, so they go out at once.
 */
export const DEAD_LETTER_BATCHING = {
  maxMessages: 1,
  maxMilliseconds: 0,
  maxBytes: 1024 * 1024,
} as const;

/**
 * Streaming pulls per subscription. The emulator paces each stream (about
 * 100 messages per 50 ms), so throughput there grows with streams; on real
 * Pub/Sub one stream carries about 10 MB/s.
 */
export const DEFAULT_MAX_STREAMS = 2;

/**
 * Messages a subscription holds at once (delivered to handlers and not yet
 * acked or nacked). Bounds memory and handler concurrency.
 */
export const DEFAULT_MAX_MESSAGES_IN_FLIGHT = 1000;

/**
 * Bytes of message data a subscription holds at once. The client's own
 * default is 100 MiB; with events of up to {@link DEFAULT_MAX_EVENT_BYTES}
 * each, this keeps one consumer's memory for held messages near 64 MiB.
 */
export const DEFAULT_MAX_BYTES_IN_FLIGHT = 64 * 1024 * 1024;

/** The largest event payload a contract allows unless its `max_bytes` says otherwise: 1 MiB. */
export const DEFAULT_MAX_EVENT_BYTES = 1024 * 1024;

/** Pub/Sub's own limit on a message, and so on any `max_bytes`: 10 MB. */
export const PUBSUB_MAX_MESSAGE_BYTES = 10_000_000;

/**
 * A subscription whose stream the server ended for good (not a transient
 * status the client retries itself) is reopened after this delay, doubling
 * up to the maximum while it keeps closing, back to the minimum once a
 * message arrives.
 */
export const REOPEN_MIN_DELAY_MS = 1_000;
export const REOPEN_MAX_DELAY_MS = 30_000;

/** How long `close()` waits for in-flight handlers before nacking what is left. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 30_000;

/** Pub/Sub attribute values are limited to 1024 bytes; longer failure details are cut. */
export const MAX_ATTRIBUTE_VALUE_BYTES = 1024;

/** Dead letters read per subscription unless told otherwise. */
export const DEFAULT_DEAD_LETTER_LIMIT = 1000;

/** How many bytes of an undecodable dead letter `dlq show` shows: one may be up to 10 MB. */
export const DEAD_LETTER_SHOWN_BYTES = 4096;
