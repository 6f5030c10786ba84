import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { DEFAULT_MAX_EVENT_BYTES } from "./default-options.js";
import type { FieldViolation } from "./errors.js";

/** How an event's payload is written into the Pub/Sub message `data`. */
export type PayloadEncoding = "binary" | "json";

/**
 * Everything the runtime needs to know about one event, as its contract says.
 * Generated code defines one per event with {@link defineEvent}; nobody writes
 * these by hand.
 */
export interface EventContract<Desc extends DescMessage = DescMessage> {
  readonly kind: "event";
  /** The protobuf-es schema of the payload. */
  readonly schema: Desc;
  /** The CloudEvents type (`ce-type`), by default the full proto name. */
  readonly type: string;
  /** The Pub/Sub topic id the event is published on. */
  readonly topic: string;
  /** Payload encoding in `data`. */
  readonly encoding: PayloadEncoding;
  /** `ce-dataschema`: names the event and the contract revision that produced it. */
  readonly dataschema: string;
  /**
   * The largest payload (`data`) in bytes: a larger event is refused on
   * publish and dead-lettered as `too_large` on receive, before decoding.
   */
  readonly maxBytes: number;
  /** How long the topic keeps messages, in seconds; undefined: not managed. */
  readonly messageRetentionSeconds?: number;
  /** Name of the ordering-key field, if the contract declares one. */
  readonly orderingKeyField: string | undefined;
  /** Reads the ordering key from an event. */
  readonly orderingKey: ((event: MessageShape<Desc>) => string) | undefined;
  /** Reads the CloudEvents subject from an event. */
  readonly subject: ((event: MessageShape<Desc>) => string) | undefined;
  /**
   * Checks the field rules. Returns every violation; an empty array means the
   * event is valid.
   */
  readonly validate: (event: MessageShape<Desc>) => readonly FieldViolation[];
  /**
   * Fields marked `pii`, as `<message full name>.<field name>`, over the event
   * and every message it contains.
   */
  readonly piiFields: ReadonlySet<string>;
}

/** Pub/Sub settings and dead-lettering of one consumer rpc. */
export interface SubscriptionContract<Desc extends DescMessage = DescMessage> {
  readonly kind: "subscription";
  /** The application that consumes. */
  readonly application: string;
  /** The proto service the rpc belongs to (full name). */
  readonly service: string;
  /** The rpc name, e.g. `ChargeOrder`. */
  readonly rpc: string;
  /** The Pub/Sub subscription id. */
  readonly name: string;
  /** The event consumed. */
  readonly event: EventContract<Desc>;
  readonly maxDeliveryAttempts: number;
  readonly ackDeadlineSeconds: number;
  readonly minBackoffSeconds: number;
  readonly maxBackoffSeconds: number;
  /**
   * Days without activity after which Pub/Sub deletes the subscription.
   * Undefined: never (protoevents sets no expiry; Pub/Sub's own default
   * would be 31 days).
   */
  readonly expirationTtlDays?: number;
  /** How long messages are kept, in seconds. Undefined: Pub/Sub's 7 days. */
  readonly messageRetentionSeconds?: number;
  /** Keep acked messages for the retention period, for seek and replay. Undefined: false. */
  readonly retainAckedMessages?: boolean;
  /**
   * Pub/Sub exactly-once delivery: the consumer waits for each ack's (and
   * nack's) result and logs a failed one. Undefined: false.
   */
  readonly exactlyOnceDelivery?: boolean;
  readonly ordered: boolean;
  /** The Pub/Sub filter the subscription is created with; empty for none. */
  readonly filter: string;
  /** The subscription's own dead-letter topic and the subscription on it; undefined when off. */
  readonly deadLetter: DeadLetterContract | undefined;
  /**
   * Other event types published on the same topic. A message of one of
   * these types is not for this subscription: real Pub/Sub filters it out by
   * `ce-type`; where filters are not enforced (the emulator) the subscriber
   * acks it without running the handler.
   */
  readonly siblingTypes: ReadonlySet<string>;
}

/** Where a subscription's dead letters go. */
export interface DeadLetterContract {
  /** Topic id of the dead-letter topic. */
  readonly topic: string;
  /** Subscription id on the dead-letter topic that keeps dead letters for inspection and replay. */
  readonly subscription: string;
}

/** One application: what it publishes and what it consumes. */
export interface ApplicationContract {
  readonly kind: "application";
  /** Application name, also the CloudEvents `source` of its events. */
  readonly name: string;
  /** The proto service that declares it (full name). */
  readonly service: string;
  readonly publishes: readonly EventContract[];
  readonly subscriptions: readonly SubscriptionContract[];
  /**
   * Subscription ids it stopped consuming on purpose
   * (`retired_subscriptions`): what `protoevents retire` may delete.
   */
  readonly retiredSubscriptions?: readonly string[];
}

/** Every event and application of a set of contracts: the input of provisioning and tooling. */
export interface ContractRegistry {
  readonly events: readonly EventContract[];
  readonly applications: readonly ApplicationContract[];
}

/** Defines an event contract. Used by generated code. */
export function defineEvent<Desc extends DescMessage>(
  init: Omit<EventContract<Desc>, "kind" | "piiFields" | "maxBytes"> & {
    readonly piiFields: readonly string[];
    /** @default DEFAULT_MAX_EVENT_BYTES */
    readonly maxBytes?: number;
  },
): EventContract<Desc> {
  return Object.freeze({
    ...init,
    kind: "event",
    maxBytes: init.maxBytes ?? DEFAULT_MAX_EVENT_BYTES,
    piiFields: new Set(init.piiFields),
  });
}

/** Defines a subscription contract. Used by generated code. */
export function defineSubscription<Desc extends DescMessage>(
  init: Omit<SubscriptionContract<Desc>, "kind" | "siblingTypes"> & {
    readonly siblingTypes: readonly string[];
  },
): SubscriptionContract<Desc> {
  return Object.freeze({ ...init, kind: "subscription", siblingTypes: new Set(init.siblingTypes) });
}

/** Defines an application contract. Used by generated code. */
export function defineApplication(init: Omit<ApplicationContract, "kind">): ApplicationContract {
  return Object.freeze({ ...init, kind: "application" });
}

/** Defines a registry. Used by generated code. */
export function defineRegistry(init: ContractRegistry): ContractRegistry {
  return Object.freeze({ ...init });
}
