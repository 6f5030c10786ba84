import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import {
  Duration,
  type Message,
  type PubSub,
  type Subscription,
  type Topic,
} from "@google-cloud/pubsub";
import type { SubscriptionContract } from "./contract.js";
import {
  DEAD_LETTER_BATCHING,
  DEFAULT_CLOSE_TIMEOUT_MS,
  DEFAULT_MAX_BYTES_IN_FLIGHT,
  DEFAULT_MAX_MESSAGES_IN_FLIGHT,
  DEFAULT_MAX_STREAMS,
  MAX_ATTRIBUTE_VALUE_BYTES,
  REOPEN_MAX_DELAY_MS,
  REOPEN_MIN_DELAY_MS,
} from "./default-options.js";
import { type DecodedEvent, decodeValidEvent, type Envelope } from "./envelope.js";
import { Code, ProtoeventsError } from "./errors.js";
import { getDefaultLogger, type Logger } from "./logger.js";
import { recordDelivery } from "./metrics.js";
import type { InboxStore, StoreTransaction } from "./store/store.js";
import { getTracer, type TracedOutcome, traceDelivery } from "./tracing.js";

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
 * marker is logged and reported in {@link DeliveryOutcome.replayFor}.
 */
export const REPLAY_FOR_ATTRIBUTE = "protoevents-replay-for";

/** What the handler gets besides the event. */
export interface HandlerContext<Desc extends DescMessage = DescMessage> {
  /** The CloudEvents envelope: id, type, source, time, subject, … */
  readonly envelope: Envelope;
  /** The subscription this delivery came through. */
  readonly subscription: SubscriptionContract<Desc>;
  /** 1 on first delivery, counting up on redelivery. */
  readonly deliveryAttempt: number;
  /** The Pub/Sub message id. */
  readonly messageId: string;
  /** When Pub/Sub accepted the message. */
  readonly publishTime: Date;
  /** A logger bound to this event (id, type, subscription). */
  readonly log: Logger;
}

/**
 * What a handler gets when its consumer runs with a store: the transaction
 * the delivery runs in. The inbox claim, every write through `tx.db` and every
 * event written to the outbox commit together when the handler returns.
 */
export interface TransactionContext<DB = unknown> {
  readonly tx: StoreTransaction<DB>;
}

/**
 * A consumer's business logic for one event. Return to ack. Throw to nack and
 * have Pub/Sub redeliver with the subscription's backoff (and, after max
 * delivery attempts, move it to the dead-letter topic). Throw a
 * {@link PermanentError} to send it to the dead-letter topic at once.
 *
 * Delivery is at least once: the same event (same `envelope.id`) can arrive
 * more than once, and the handler must tolerate that.
 */
export type Handler<Desc extends DescMessage = DescMessage, Extra = object> = (
  event: MessageShape<Desc>,
  context: HandlerContext<Desc> & Extra,
) => Promise<void> | void;

/** A handler bound to its subscription. Make one with {@link bindHandler}. */
export interface Binding {
  readonly subscription: SubscriptionContract;
  readonly handler: Handler<DescMessage, Partial<TransactionContext>>;
}

/**
 * Pair a subscription with its handler; the types must agree. A handler that
 * takes a {@link TransactionContext} must run on a consumer started with a
 * store; the generated subscribe functions require one for such handlers.
 */
export function bindHandler<Desc extends DescMessage, Extra = object>(
  subscription: SubscriptionContract<Desc>,
  handler: Handler<Desc, Extra>,
): Binding {
  // The pair is type-checked here; the consumer only ever calls the handler
  // with events decoded by this same subscription's contract.
  return { subscription, handler } as unknown as Binding;
}

/**
 * The context of a handler that runs in a store transaction, with what the
 * application adds (its outbox publisher). Used by generated subscribe
 * functions.
 *
 * @internal
 */
export function withTransaction<Desc extends DescMessage, DB, Extra extends object>(
  context: HandlerContext<Desc> & Partial<TransactionContext>,
  extra: (tx: StoreTransaction<DB>) => Extra,
): HandlerContext<Desc> & Extra {
  const tx = context.tx;
  if (tx === undefined) {
    throw new ProtoeventsError(
      Code.Internal,
      "a handler that needs a store transaction ran on a consumer started without a store",
    );
  }
  // The store's tables are the caller's DB: the consumer runs the handler in a
  // transaction of the very store the generated subscribe function was given.
  return { ...context, ...extra(tx as unknown as StoreTransaction<DB>) };
}

/**
 * How one delivery ended: `acked` after the handler succeeded; `duplicate`
 * when the inbox already held the event, acked without running the handler;
 * `nacked` for redelivery; `dead-lettered`; `filtered` when it was another
 * event type of a shared topic, acked without running the handler.
 */
export type DeliveryResult = "acked" | "duplicate" | "nacked" | "dead-lettered" | "filtered";

/** Failures a handler can only have caused with what it published: never the incoming event's. */
const OUTGOING_FAILURES: ReadonlySet<Code> = new Set([Code.ValidationFailed, Code.TooLarge]);

/** Reported to {@link ConsumerOptions.onDelivery} after every delivery. */
export interface DeliveryOutcome {
  readonly subscription: string;
  readonly result: DeliveryResult;
  /** `ce-id`, when the message had one. */
  readonly eventId: string | undefined;
  readonly eventType: string | undefined;
  readonly deliveryAttempt: number;
  /** Why it was nacked or dead-lettered. */
  readonly error?: ProtoeventsError;
  /** The subscription a replay was marked for ({@link REPLAY_FOR_ATTRIBUTE}), when it carried the marker. */
  readonly replayFor?: string;
}

/** Options of {@link startConsumer}. */
export interface ConsumerOptions {
  /**
   * The service's store. With one, each delivery runs in a store transaction
   * that first claims `(subscription, ce-id)` in the inbox: a duplicate is
   * acked without running the handler, and the handler's writes and outbox
   * events commit with the claim or not at all. Without one, delivery is at
   * least once and handlers see duplicates.
   */
  readonly store?: InboxStore;
  /** Streaming pulls per subscription. @default DEFAULT_MAX_STREAMS */
  readonly maxStreams?: number;
  /** Messages held at once per subscription. @default DEFAULT_MAX_MESSAGES_IN_FLIGHT */
  readonly maxMessagesInFlight?: number;
  /** Bytes of message data held at once per subscription. @default DEFAULT_MAX_BYTES_IN_FLIGHT */
  readonly maxBytesInFlight?: number;
  /** How long {@link Consumer.close} waits for running handlers. @default DEFAULT_CLOSE_TIMEOUT_MS */
  readonly closeTimeoutMs?: number;
  readonly logger?: Logger;
  /** Called after each delivery, e.g. for metrics or progress. Must not throw. */
  readonly onDelivery?: (outcome: DeliveryOutcome) => void;
  /**
   * Called when a handler finished (with a store: its transaction committed)
   * and before the ack is sent. For tracing and for fault-injection tests
   * that need the window between commit and ack. Must not throw.
   */
  readonly beforeAck?: (outcome: DeliveryOutcome) => void;
  /** Called on a subscription stream error. @default logs it */
  readonly onError?: (error: ProtoeventsError, subscription: string) => void;
  /** Called when a subscription starts or stops failing (see {@link Consumer.health}). */
  readonly onHealth?: (health: ConsumerHealth) => void;
}

/**
 * gRPC statuses with which a stream cannot succeed until someone acts: the
 * subscription does not exist, or the credentials may not read it.
 */
const PERMANENT_STREAM_STATUSES: ReadonlyMap<number, string> = new Map([
  [5, "NOT_FOUND"],
  [7, "PERMISSION_DENIED"],
  [16, "UNAUTHENTICATED"],
]);

/** How one subscription of a consumer is doing. */
export interface SubscriptionHealth {
  readonly subscription: string;
  /**
   * `streaming`: open, no permanent error since the last message;
   * `failing`: its stream ended with a status that needs someone to act
   * (NOT_FOUND, PERMISSION_DENIED, UNAUTHENTICATED); it keeps retrying, and
   * goes back to `streaming` on its next message; `closed`.
   */
  readonly state: "streaming" | "failing" | "closed";
  /** The permanent error, while `failing`. */
  readonly error?: ProtoeventsError;
}

/** A consumer's health, for liveness checks: healthy when no subscription is failing. */
export interface ConsumerHealth {
  readonly healthy: boolean;
  readonly subscriptions: readonly SubscriptionHealth[];
}

/** Running subscriptions. */
export interface Consumer {
  /** Subscription ids being consumed. */
  readonly subscriptions: readonly string[];
  /** Whether every subscription can stream (see {@link SubscriptionHealth}). */
  health(): ConsumerHealth;
  /**
   * Stop pulling, let running handlers finish (up to the close timeout), send
   * their acks and nacks, and close the streams. Resolves once the client
   * closed them, or after the close timeout plus {@link CLOSE_GRACE_MS}
   * whatever the client does (logging what it left). Idempotent.
   */
  close(): Promise<void>;
}

/**
 * Ack or nack a message. With exactly-once delivery, wait for Pub/Sub's
 * answer (the client retries what is transient) and log a refusal: an ack
 * Pub/Sub did not confirm means the event comes back, and the inbox
 * recognises it. Resolves whether Pub/Sub confirmed (always true without
 * exactly-once delivery, where there is no answer to wait for).
 *
 * @internal Exported for unit tests.
 */
export async function settle(
  message: Pick<Message, "ack" | "nack" | "ackWithResponse" | "nackWithResponse" | "id">,
  how: "ack" | "nack",
  exactlyOnce: boolean,
  log: Logger,
  fields: Readonly<Record<string, unknown>>,
): Promise<boolean> {
  if (!exactlyOnce) {
    if (how === "ack") {
      message.ack();
    } else {
      message.nack();
    }
    return true;
  }
  try {
    await (how === "ack" ? message.ackWithResponse() : message.nackWithResponse());
    return true;
  } catch (error) {
    const errorCode = (error as { errorCode?: unknown }).errorCode;
    log.warn(
      {
        ...fields,
        op: how,
        messageId: message.id,
        ackError: typeof errorCode === "string" ? errorCode : undefined,
        err: ProtoeventsError.from(error, Code.PubSubUnavailable),
      },
      how === "ack"
        ? "Pub/Sub did not confirm the ack (exactly-once delivery): the event will come back, and the inbox recognises it"
        : "Pub/Sub did not confirm the nack (exactly-once delivery): the event comes back after its ack deadline instead",
    );
    return false;
  }
}

/** How much longer than its close timeout close() may take before it gives up waiting. */
export const CLOSE_GRACE_MS = 5_000;

/**
 * A subscription stream's error as a ProtoeventsError that keeps the gRPC
 * status (code and details) the client reported, so a log line says why.
 */
function streamError(error: unknown, subscription: string): ProtoeventsError {
  const status = error as { code?: unknown; details?: unknown };
  const grpcCode = typeof status.code === "number" ? status.code : undefined;
  const grpcDetails = typeof status.details === "string" ? status.details : undefined;
  return new ProtoeventsError(
    Code.PubSubUnavailable,
    `the streaming pull of ${subscription} ended` +
      (grpcCode === undefined ? "" : ` with gRPC status ${grpcCode}`) +
      (grpcDetails ? `: ${grpcDetails}` : "") +
      (error instanceof Error && error.message !== "" && error.message !== grpcDetails
        ? ` (${error.message})`
        : ""),
    { cause: error, details: { grpcCode, grpcDetails } },
  );
}

function cut(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, "utf8") <= maxBytes) {
    return text;
  }
  const bytes = Buffer.from(text, "utf8").subarray(0, maxBytes - 3);
  // Drop a trailing partial UTF-8 sequence, which decodes as U+FFFD.
  return `${bytes.toString("utf8").replace(/\uFFFD$/u, "")}...`;
}

interface KeyState {
  tail: Promise<void>;
  pending: number;
  /** An earlier event with this key was nacked: nack the rest until the queue drains. */
  failed: boolean;
}

/**
 * Start consuming: open each binding's subscription and dispatch every
 * message to its handler.
 *
 * For each message: events of a sibling type on a shared topic are acked
 * untouched (Pub/Sub's own filter would have dropped them); the envelope and
 * payload are decoded and the field rules checked — a failure there is
 * permanent and goes straight to the subscription's dead-letter topic with
 * the reason in attributes, then is acked; the handler runs — success acks,
 * a thrown error nacks, a thrown PermanentError dead-letters. On an ordered
 * subscription, events with the same ordering key run one after another, and
 * after a nack the rest of that key's queue is nacked so nothing overtakes it.
 *
 * With an OpenTelemetry tracer provider registered, each handler runs in a
 * CONSUMER span continuing the producer's `traceparent` (see `tracing.ts`).
 * Logging: one `debug` line per receive and ack, `warn` per nack and
 * dead-letter, each with subscription, event id, type and subject; never a
 * payload.
 */
export function startConsumer(
  pubsub: PubSub,
  bindings: readonly Binding[],
  options: ConsumerOptions = {},
): Consumer {
  const log = options.logger ?? getDefaultLogger();
  const store = options.store;
  const closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
  const onDelivery = options.onDelivery;
  const onError =
    options.onError ??
    ((error: ProtoeventsError, subscription: string) =>
      log.error({ op: "subscribe", subscription, err: error }, "subscription stream error"));
  const inFlight = new Set<Promise<void>>();
  const opened: Subscription[] = [];
  const reopenTimers = new Set<NodeJS.Timeout>();
  const deadLetterTopics = new Map<string, Topic>();
  let closing = false;
  let closed: Promise<void> | undefined;
  /** Subscriptions whose stream last ended with a permanent status, and that error. */
  const failing = new Map<string, ProtoeventsError>();

  function health(): ConsumerHealth {
    return {
      healthy: failing.size === 0 && !closing,
      subscriptions: names.map((subscription) => {
        const error = failing.get(subscription);
        return closing
          ? { subscription, state: "closed" as const }
          : error === undefined
            ? { subscription, state: "streaming" as const }
            : { subscription, state: "failing" as const, error };
      }),
    };
  }

  function setFailing(subscription: string, error: ProtoeventsError | undefined): void {
    const was = failing.has(subscription);
    if (error === undefined) {
      failing.delete(subscription);
    } else {
      failing.set(subscription, error);
    }
    if (was !== (error !== undefined)) {
      options.onHealth?.(health());
    }
  }

  const names = bindings.map((b) => b.subscription.name);
  const duplicate = names.find((name, i) => names.indexOf(name) !== i);
  if (duplicate !== undefined) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `subscription ${duplicate} is bound twice; bind one handler per subscription`,
    );
  }

  function outcomeOf(
    binding: Binding,
    message: Message,
    result: DeliveryResult,
    error?: ProtoeventsError,
  ): DeliveryOutcome {
    const replayFor = message.attributes[REPLAY_FOR_ATTRIBUTE];
    return {
      subscription: binding.subscription.name,
      result,
      eventId: message.attributes["ce-id"],
      eventType: message.attributes["ce-type"],
      deliveryAttempt: message.deliveryAttempt,
      ...(error === undefined ? {} : { error }),
      ...(replayFor === undefined ? {} : { replayFor }),
    };
  }

  function report(
    binding: Binding,
    message: Message,
    result: DeliveryResult,
    error?: ProtoeventsError,
  ): void {
    onDelivery?.(outcomeOf(binding, message, result, error));
  }

  function deadLetterTopic(name: string): Topic {
    let topic = deadLetterTopics.get(name);
    if (topic === undefined) {
      topic = pubsub.topic(name, { batching: DEAD_LETTER_BATCHING });
      deadLetterTopics.set(name, topic);
    }
    return topic;
  }

  async function deadLetter(
    binding: Binding,
    message: Message,
    error: ProtoeventsError,
  ): Promise<DeliveryResult> {
    const sub = binding.subscription;
    const fields = {
      op: "dead-letter",
      subscription: sub.name,
      eventId: message.attributes["ce-id"],
      eventType: message.attributes["ce-type"],
      subject: message.attributes["ce-subject"],
      reason: error.code,
      deliveryAttempt: message.deliveryAttempt,
    };
    if (sub.deadLetter === undefined) {
      // Never ack what could not be processed: without a dead-letter topic the
      // message is redelivered until it expires, and every attempt is logged.
      log.error(
        { ...fields, err: error },
        "permanent failure on a subscription without dead-lettering; nacked",
      );
      message.nack();
      return "nacked";
    }
    const attributes: Record<string, string> = {
      ...message.attributes,
      [DeadLetterAttribute.reason]: error.code,
      [DeadLetterAttribute.detail]: cut(error.rawMessage, MAX_ATTRIBUTE_VALUE_BYTES),
      [DeadLetterAttribute.subscription]: sub.name,
      [DeadLetterAttribute.deliveryAttempt]: String(message.deliveryAttempt),
      [DeadLetterAttribute.time]: new Date().toISOString(),
    };
    if (message.orderingKey !== undefined && message.orderingKey !== "") {
      attributes[DeadLetterAttribute.orderingKey] = message.orderingKey;
    }
    if (error.code === Code.TooLarge) {
      attributes[DeadLetterAttribute.size] = String(message.data.length);
    }
    try {
      await deadLetterTopic(sub.deadLetter.topic).publishMessage({
        data: message.data,
        attributes,
      });
    } catch (cause) {
      // Not in the dead-letter topic, so it must not be acked: nack and let
      // the next delivery try again.
      log.error(
        { ...fields, err: ProtoeventsError.from(cause, Code.PublishFailed) },
        "could not publish to the dead-letter topic; nacked",
      );
      message.nack();
      return "nacked";
    }
    await settle(message, "ack", sub.exactlyOnceDelivery === true, log, fields);
    log.warn(
      { ...fields, detail: error.rawMessage, deadLetterTopic: sub.deadLetter.topic },
      "dead-lettered",
    );
    return "dead-lettered";
  }

  /** Ack a message that is not for this subscription, without running the handler. */
  function filtered(binding: Binding, message: Message, why: string): DeliveryResult {
    message.ack();
    if (log.isLevelEnabled("debug")) {
      log.debug(
        {
          op: "ack",
          result: "filtered",
          why,
          subscription: binding.subscription.name,
          eventId: message.attributes["ce-id"],
          eventType: message.attributes["ce-type"],
          subject: message.attributes["ce-subject"],
        },
        "not for this subscription; acked",
      );
    }
    report(binding, message, "filtered");
    return "filtered";
  }

  async function process(binding: Binding, message: Message): Promise<DeliveryResult> {
    const sub = binding.subscription;
    const attributes = message.attributes;
    if (log.isLevelEnabled("debug")) {
      log.debug(
        {
          op: "receive",
          subscription: sub.name,
          eventId: attributes["ce-id"],
          eventType: attributes["ce-type"],
          subject: attributes["ce-subject"],
          messageId: message.id,
          deliveryAttempt: message.deliveryAttempt,
        },
        "received",
      );
    }
    const type = attributes["ce-type"];
    if (type !== undefined && sub.siblingTypes.has(type)) {
      return filtered(binding, message, "another event type of the topic");
    }
    const started = performance.now();
    const tracer = getTracer();
    const result =
      tracer === undefined
        ? (await handle(binding, message)).result
        : await traceDelivery(
            tracer,
            {
              subscription: sub.name,
              topic: sub.event.topic,
              attributes,
              messageId: message.id,
              deliveryAttempt: message.deliveryAttempt,
            },
            () => handle(binding, message),
          );
    // The contract's event type, never the message's: labels stay bounded.
    recordDelivery(sub.name, sub.event.type, result, (performance.now() - started) / 1000);
    return result;
  }

  /** Decode, validate and run the handler; ack, nack or dead-letter. */
  async function handle(
    binding: Binding,
    message: Message,
  ): Promise<TracedOutcome<DeliveryResult>> {
    const sub = binding.subscription;
    let error: ProtoeventsError;
    let decoded: DecodedEvent | undefined;
    try {
      decoded = decodeValidEvent(sub.event, message);
      const { envelope } = decoded;
      const eventLog = log.child({
        subscription: sub.name,
        eventId: envelope.id,
        eventType: envelope.type,
        subject: envelope.subject,
      });
      const context: HandlerContext = {
        envelope,
        subscription: sub,
        deliveryAttempt: message.deliveryAttempt,
        messageId: message.id,
        publishTime: message.publishTime,
        log: eventLog,
      };
      const event = decoded.event;
      let result: DeliveryResult = "acked";
      if (store === undefined) {
        await binding.handler(event, context);
      } else {
        const fresh = await store.transaction(async (tx) => {
          if (!(await tx.claim(sub.name, envelope.id))) {
            return false;
          }
          // The store hands every transaction to the handler as it is; only
          // the consumer's view of it is narrowed to the inbox.
          await binding.handler(event, { ...context, tx: tx as StoreTransaction });
          return true;
        });
        result = fresh ? "acked" : "duplicate";
      }
      const replayFor = message.attributes[REPLAY_FOR_ATTRIBUTE];
      if (replayFor !== undefined && replayFor !== sub.name) {
        if (result === "acked" && store !== undefined) {
          // The marker says another subscription failed an event every other one
          // handled; this one never claimed it. Forged, copied or misdirected:
          // processed, and said so.
          eventLog.warn(
            { op: "replay", replayFor, result },
            `processed an event replayed for ${replayFor} that ${sub.name} had never processed: the replay marker was forged, copied or misdirected`,
          );
        } else {
          eventLog.info(
            { op: "replay", replayFor, result },
            store === undefined
              ? `handled an event replayed for ${replayFor} again (at least once: no inbox here)`
              : `acked an event replayed for ${replayFor}: this subscription had processed it`,
          );
        }
      }
      if (options.beforeAck !== undefined) {
        options.beforeAck(outcomeOf(binding, message, result));
      }
      await settle(message, "ack", sub.exactlyOnceDelivery === true, eventLog, {
        subscription: sub.name,
        result,
      });
      if (log.isLevelEnabled("debug")) {
        eventLog.debug({ op: "ack", result, deliveryAttempt: message.deliveryAttempt }, "handled");
      }
      report(binding, message, result);
      return { result };
    } catch (thrown) {
      error = ProtoeventsError.from(thrown, Code.HandlerFailed);
      if (decoded !== undefined && OUTGOING_FAILURES.has(error.code)) {
        // The incoming event decoded and passed its rules before the handler
        // ran: a broken rule or size now is an event the handler produced.
        error = new ProtoeventsError(
          Code.OutgoingEventInvalid,
          `the handler of ${sub.name} produced an invalid event, so ${sub.event.type} ${decoded.envelope.id} could not be processed: ${error.rawMessage}`,
          { cause: error, details: error.details },
        );
      }
    }
    if (error.permanent) {
      const result = await deadLetter(binding, message, error);
      report(binding, message, result, error);
      return { result, error };
    }
    const fields = {
      op: "nack",
      subscription: sub.name,
      eventId: decoded?.envelope.id,
      eventType: sub.event.type,
      subject: decoded?.envelope.subject,
      deliveryAttempt: message.deliveryAttempt,
      err: error,
    };
    if (error.code === Code.StoreUnavailable) {
      // Never ack without the claim committed: the event comes back.
      log.error(fields, "store unavailable; nacked for redelivery");
    } else {
      log.warn(fields, "handler failed; nacked for redelivery");
    }
    await settle(message, "nack", sub.exactlyOnceDelivery === true, log, fields);
    report(binding, message, "nacked", error);
    return { result: "nacked", error };
  }

  function track(work: Promise<unknown>): void {
    const done = work.then(
      () => undefined,
      (error: unknown) => {
        // process() handles every failure; reaching here is a bug.
        log.error({ err: error }, "unexpected error while processing a message");
      },
    );
    inFlight.add(done);
    void done.finally(() => inFlight.delete(done));
  }

  function listen(binding: Binding): void {
    const sub = binding.subscription;
    const subscription = pubsub.subscription(sub.name, {
      flowControl: {
        maxMessages: options.maxMessagesInFlight ?? DEFAULT_MAX_MESSAGES_IN_FLIGHT,
        maxBytes: options.maxBytesInFlight ?? DEFAULT_MAX_BYTES_IN_FLIGHT,
        allowExcessMessages: false,
      },
      streamingOptions: { maxStreams: options.maxStreams ?? DEFAULT_MAX_STREAMS },
      closeOptions: { behavior: "WAIT", timeout: Duration.from({ milliseconds: closeTimeoutMs }) },
    });
    const keys = new Map<string, KeyState>();

    // The client retries a stream that ends with a transient status by itself;
    // one that ends otherwise (the subscription deleted and re-created, a
    // server that ends the stream with OK or an unknown status) closes the
    // subscription for good. Reopen it with backoff until close() is called:
    // a consumer that silently stops pulling strands its events. A message
    // resets the backoff.
    let reopenDelayMs = REOPEN_MIN_DELAY_MS;

    const onMessage = (message: Message): void => {
      reopenDelayMs = REOPEN_MIN_DELAY_MS;
      if (failing.has(sub.name)) {
        log.info({ op: "subscribe", subscription: sub.name }, "subscription streams again");
        setFailing(sub.name, undefined);
      }
      if (closing) {
        message.nack();
        return;
      }
      const key = message.orderingKey;
      if (!sub.ordered || key === undefined || key === "") {
        track(process(binding, message));
        return;
      }
      let state = keys.get(key);
      if (state === undefined) {
        state = { tail: Promise.resolve(), pending: 0, failed: false };
        keys.set(key, state);
      }
      const keyState = state;
      keyState.pending++;
      keyState.tail = keyState.tail
        .then(async () => {
          if (keyState.failed) {
            message.nack();
            report(
              binding,
              message,
              "nacked",
              new ProtoeventsError(
                Code.HandlerFailed,
                `an earlier event with ordering key ${key} was nacked; this one waits for its redelivery`,
              ),
            );
            return;
          }
          if ((await process(binding, message)) === "nacked") {
            keyState.failed = true;
          }
        })
        .finally(() => {
          keyState.pending--;
          if (keyState.pending === 0) {
            keys.delete(key);
          }
        });
      track(keyState.tail);
    };

    subscription.on("message", onMessage);
    subscription.on("error", (error: unknown) => {
      const failure = streamError(error, sub.name);
      const status = PERMANENT_STREAM_STATUSES.get(failure.details.grpcCode as number);
      if (status !== undefined) {
        // Retrying cannot fix it alone: unhealthy until a message arrives again.
        const unhealthy = new ProtoeventsError(
          Code.PubSubUnavailable,
          `subscription ${sub.name} cannot be consumed (${status}): ${status === "NOT_FOUND" ? "provision it (protoevents provision)" : "grant the credentials roles/pubsub.subscriber on it"}; retrying meanwhile. ${failure.rawMessage}`,
          { cause: failure, details: failure.details },
        );
        setFailing(sub.name, unhealthy);
        onError(unhealthy, sub.name);
        return;
      }
      onError(failure, sub.name);
    });
    subscription.on("close", () => {
      if (closing) {
        return;
      }
      const delayMs = reopenDelayMs;
      reopenDelayMs = Math.min(reopenDelayMs * 2, REOPEN_MAX_DELAY_MS);
      log.warn(
        { op: "reopen", subscription: sub.name, delayMs },
        "subscription stream closed by the server; reopening",
      );
      const timer = setTimeout(() => {
        reopenTimers.delete(timer);
        if (!closing && !subscription.isOpen) {
          subscription.open();
        }
      }, delayMs);
      reopenTimers.add(timer);
    });
    opened.push(subscription);
  }

  for (const binding of bindings) {
    listen(binding);
  }
  log.info({ op: "subscribe", subscriptions: names }, "consuming");

  return {
    subscriptions: names,
    health,
    close(): Promise<void> {
      closed ??= (async () => {
        closing = true;
        for (const timer of reopenTimers) {
          clearTimeout(timer);
        }
        reopenTimers.clear();
        const shutdown = (async () => {
          await Promise.all(opened.map((subscription) => subscription.close()));
          await Promise.allSettled([...inFlight]);
          await Promise.all([...deadLetterTopics.values()].map((topic) => topic.flush()));
        })();
        let timer: NodeJS.Timeout | undefined;
        const boundMs = closeTimeoutMs + CLOSE_GRACE_MS;
        const finished = await Promise.race([
          shutdown.then(
            () => true,
            (error: unknown) => {
              log.error({ op: "close", subscriptions: names, err: error }, "closing failed");
              return true;
            },
          ),
          new Promise<false>((resolve) => {
            timer = setTimeout(() => resolve(false), boundMs);
            timer.unref();
          }),
        ]);
        clearTimeout(timer);
        if (finished) {
          log.info({ op: "close", subscriptions: names }, "consumer closed");
        } else {
          // Unacked messages are redelivered; an inbox absorbs what already ran.
          log.error(
            { op: "close", subscriptions: names, boundMs, inFlight: inFlight.size },
            `closing did not finish within ${boundMs} ms; gave up waiting`,
          );
        }
      })();
      return closed;
    },
  };
}
