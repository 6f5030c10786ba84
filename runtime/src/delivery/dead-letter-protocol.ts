/**
 * The dead-letter protocol: the attributes a dead letter carries and how
 * they are read back. The consumer writes them when it dead-letters a
 * message itself ({@link deadLetterAttributes}); Pub/Sub writes its own
 * `CloudPubSubDeadLetterSource*` attributes when a message exhausted its
 * delivery attempts; the dead-letter tooling reads either
 * ({@link deadLetterReason}, {@link deadLetterOrderingKey}) and strips them
 * again for a replay ({@link replayAttributes}). This module is the one
 * place that knows those names.
 */
import { MAX_ATTRIBUTE_VALUE_BYTES } from "../default-options.js";
import { Code, type ProtoeventsError } from "../errors.js";

/**
 * Attributes the subscriber adds when it sends a message to a dead-letter
 * topic itself (a permanent failure). Messages that exhausted their delivery
 * attempts carry Pub/Sub's `CloudPubSubDeadLetterSource*` attributes instead.
 */
export const DeadLetterAttribute = {
  /** The error code, e.g. `decode_failed`, `validation_failed`, `unknown_event_type`, `permanent`. */
  reason: "protoevents-dead-letter-reason",
  /** The error message, cut to fit an attribute. */
  detail: "protoevents-dead-letter-detail",
  /** The subscription that could not process it: the one a replay goes back to. */
  subscription: "protoevents-dead-letter-subscription",
  /** Delivery attempt on which it failed. */
  deliveryAttempt: "protoevents-dead-letter-delivery-attempt",
  /** When it was dead-lettered, RFC 3339. */
  time: "protoevents-dead-letter-time",
  /** The message's ordering key: dead-letter topics are unordered. */
  orderingKey: "protoevents-ordering-key",
  /** For `too_large`: the payload's size in bytes. */
  size: "protoevents-dead-letter-size",
} as const;

/**
 * The attribute a replayed dead letter carries: the one subscription it is
 * for. Every consumer of the topic receives the replay (a topic cannot
 * publish to one subscription), and the marker decides nothing: anyone with
 * publish rights can set it, so skipping on it would let a forged or copied
 * marker make every other subscription drop an event it never saw. The
 * replay keeps the original `ce-id`, so a subscription with an inbox that
 * processed the event finds it claimed and acks it as a `duplicate`; one that
 * never did processes it (and logs the marker as misdirected); a
 * subscription without a store is at least once and handles it again. The
 * marker is logged and reported in `DeliveryOutcome.replayFor`.
 */
export const REPLAY_FOR_ATTRIBUTE = "protoevents-replay-for";

/** The reason of a dead letter Pub/Sub moved after max delivery attempts. */
export const EXHAUSTED_RETRIES = "exhausted-retries";

/** The reason of a message in a dead-letter topic that carries neither protoevents' nor Pub/Sub's attributes. */
export const UNKNOWN_REASON = "unknown";

/** Prefix of the attributes Pub/Sub adds when it moves a message to a dead-letter topic. */
export const PUBSUB_DEAD_LETTER_PREFIX = "CloudPubSubDeadLetterSource";

/** Prefix of the attributes the consumer adds when it dead-letters a message itself. */
export const PROTOEVENTS_DEAD_LETTER_PREFIX = "protoevents-dead-letter-";

/** The parts of a received message a dead letter is built from. */
export interface DeadLetterSource {
  readonly data: { readonly length: number };
  readonly attributes: Readonly<Record<string, string>>;
  readonly orderingKey?: string | undefined;
  readonly deliveryAttempt: number;
}

/**
 * The attributes of a message the consumer dead-letters itself: every
 * original attribute (the envelope, so tooling can decode it), plus the
 * reason, the failure's message cut to fit an attribute, the subscription
 * that failed, the delivery attempt and the time; the ordering key, which
 * an unordered dead-letter topic would drop; for `too_large`, the size.
 */
export function deadLetterAttributes(
  message: DeadLetterSource,
  error: ProtoeventsError,
  subscription: string,
  now: Date = new Date(),
): Record<string, string> {
  const attributes: Record<string, string> = {
    ...message.attributes,
    [DeadLetterAttribute.reason]: error.code,
    [DeadLetterAttribute.detail]: cut(error.rawMessage, MAX_ATTRIBUTE_VALUE_BYTES),
    [DeadLetterAttribute.subscription]: subscription,
    [DeadLetterAttribute.deliveryAttempt]: String(message.deliveryAttempt),
    [DeadLetterAttribute.time]: now.toISOString(),
  };
  if (message.orderingKey !== undefined && message.orderingKey !== "") {
    attributes[DeadLetterAttribute.orderingKey] = message.orderingKey;
  }
  if (error.code === Code.TooLarge) {
    attributes[DeadLetterAttribute.size] = String(message.data.length);
  }
  return attributes;
}

/** The reason, detail and delivery count of a dead letter, from its attributes. */
export function deadLetterReason(attributes: Readonly<Record<string, string>>): {
  readonly reason: string;
  readonly detail: string | undefined;
  readonly deliveryCount: number | undefined;
} {
  const count = (value: string | undefined): number | undefined => {
    const n = value === undefined ? Number.NaN : Number(value);
    return Number.isSafeInteger(n) ? n : undefined;
  };
  const reason = attributes[DeadLetterAttribute.reason];
  if (reason !== undefined && reason !== "") {
    return {
      reason,
      detail: attributes[DeadLetterAttribute.detail],
      deliveryCount: count(attributes[DeadLetterAttribute.deliveryAttempt]),
    };
  }
  const deliveries = count(attributes[`${PUBSUB_DEAD_LETTER_PREFIX}DeliveryCount`]);
  if (deliveries !== undefined) {
    return {
      reason: EXHAUSTED_RETRIES,
      detail: `Pub/Sub moved it after ${deliveries} delivery attempts`,
      deliveryCount: deliveries,
    };
  }
  return { reason: UNKNOWN_REASON, detail: undefined, deliveryCount: undefined };
}

/**
 * The original ordering key of a dead letter: the message's own (a
 * dead-letter topic Pub/Sub moved it to keeps it), else the one the consumer
 * kept in {@link DeadLetterAttribute.orderingKey}.
 */
export function deadLetterOrderingKey(
  attributes: Readonly<Record<string, string>>,
  messageOrderingKey: string | null | undefined,
): string | undefined {
  if (
    messageOrderingKey !== null &&
    messageOrderingKey !== undefined &&
    messageOrderingKey !== ""
  ) {
    return messageOrderingKey;
  }
  const kept = attributes[DeadLetterAttribute.orderingKey];
  return kept === undefined || kept === "" ? undefined : kept;
}

/**
 * The attributes a replay publishes: every original attribute (so `ce-id`
 * is kept and the inbox deduplicates), minus the dead-letter bookkeeping
 * (`protoevents-dead-letter-*`, `protoevents-ordering-key`,
 * `CloudPubSubDeadLetterSource*`, an earlier replay's target), plus
 * {@link REPLAY_FOR_ATTRIBUTE} naming the subscription that failed.
 */
export function replayAttributes(letter: {
  readonly subscription: string;
  readonly attributes: Readonly<Record<string, string>>;
}): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const [key, value] of Object.entries(letter.attributes)) {
    if (
      key.startsWith(PROTOEVENTS_DEAD_LETTER_PREFIX) ||
      key.startsWith(PUBSUB_DEAD_LETTER_PREFIX) ||
      key === DeadLetterAttribute.orderingKey ||
      key === REPLAY_FOR_ATTRIBUTE
    ) {
      continue;
    }
    attributes[key] = value;
  }
  attributes[REPLAY_FOR_ATTRIBUTE] = letter.subscription;
  return attributes;
}

/**
 * `text` cut to at most `maxBytes` bytes of UTF-8, ending in `...` when cut,
 * never in the middle of a character.
 */
export function cut(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, "utf8") <= maxBytes) {
    return text;
  }
  const bytes = Buffer.from(text, "utf8").subarray(0, maxBytes - 3);
  // Drop a trailing partial UTF-8 sequence, which decodes as U+FFFD.
  return `${bytes.toString("utf8").replace(/\uFFFD$/u, "")}...`;
}
