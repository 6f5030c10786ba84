/**
 * The consumer: runs bound handlers on their subscriptions. It composes the
 * parts in `delivery/`: each subscription's stream is supervised
 * (`stream-supervisor.ts`), each message is delivered to its binding
 * (`deliverer.ts`, through the inbox of `inbox.ts`), ordered subscriptions
 * queue per ordering key (`keyed-queue.ts`), and permanent failures go to
 * the dead-letter topic (`dead-letter-publisher.ts`, with the attributes of
 * `dead-letter-protocol.ts`).
 */
import type { PubSub } from "@google-cloud/pubsub";
import type { SubscriptionContract } from "./contract.js";
import { DEAD_LETTER_BATCHING, DEFAULT_CLOSE_TIMEOUT_MS } from "./default-options.js";
import type { Binding, DeliveryContext, TransactionContext } from "./delivery/binding.js";
import { createDeadLetterPublisher } from "./delivery/dead-letter-publisher.js";
import {
  createDeliverer,
  type DeliveryOutcome,
  type ReceivedMessage,
} from "./delivery/deliverer.js";
import { AT_LEAST_ONCE, type Inbox, storeInbox } from "./delivery/inbox.js";
import { KeyedQueue } from "./delivery/keyed-queue.js";
import {
  type ConsumerHealth,
  HealthTracker,
  type SupervisedStream,
  superviseStream,
} from "./delivery/stream-supervisor.js";
import type { Envelope, IncomingMessage } from "./envelope.js";
import { Code, ProtoeventsError } from "./errors.js";
import { getDefaultLogger, type Logger } from "./logger.js";
import type { InboxStore, StoreTransaction } from "./store/store.js";
import { createTopicCache } from "./topic-cache.js";

export {
  type Binding,
  bindHandler,
  type DecodedDelivery,
  type DeliveryContext,
  type Handler,
  type HandlerContext,
  type TransactionContext,
  withTransaction,
} from "./delivery/binding.js";
export { DeadLetterAttribute, REPLAY_FOR_ATTRIBUTE } from "./delivery/dead-letter-protocol.js";
export type { DeliveryOutcome, DeliveryResult } from "./delivery/deliverer.js";
export { settle } from "./delivery/settle.js";
export type { ConsumerHealth, SubscriptionHealth } from "./delivery/stream-supervisor.js";

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

/** A store whose transactions a handler with a {@link TransactionContext} writes through: any `Store<DB>`. */
export interface TransactionalStore<DB> {
  transaction<T>(work: (tx: StoreTransaction<DB>) => Promise<T>): Promise<T>;
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

/** How much longer than its close timeout close() may take before it gives up waiting. */
export const CLOSE_GRACE_MS = 5_000;

/**
 * The implementation's view of a binding of either overload of
 * {@link startConsumer}. Overloads cannot tell their implementation which of
 * them was called, so this view accepts both (its methods compare their
 * parameters both ways); which `Extra` a binding gets is decided by the
 * store alone: with one, every binding gets the transaction (the first
 * overload admits a binding that needs one only with a store of its
 * tables); without one, none gets anything (the second admits none that
 * needs one).
 */
interface AnyBinding {
  readonly subscription: SubscriptionContract;
  decode(message: IncomingMessage): {
    readonly envelope: Envelope;
    run(context: DeliveryContext, extra: object): Promise<void> | void;
  };
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
 *
 * Handlers that take a {@link TransactionContext} need a store whose tables
 * they were written for; handlers without one run with or without a store.
 */
export function startConsumer<DB>(
  pubsub: PubSub,
  bindings: readonly Binding<TransactionContext<DB>>[],
  options: ConsumerOptions & { readonly store: TransactionalStore<DB> },
): Consumer;
export function startConsumer(
  pubsub: PubSub,
  bindings: readonly Binding[],
  options?: ConsumerOptions,
): Consumer;
export function startConsumer(
  pubsub: PubSub,
  bindings: readonly AnyBinding[],
  options: ConsumerOptions = {},
): Consumer {
  const store = options.store;
  const inbox: Inbox<object> = store === undefined ? AT_LEAST_ONCE : storeInbox(store);
  return consume(pubsub, bindings, inbox, options);
}

function consume(
  pubsub: PubSub,
  bindings: readonly Binding[],
  inbox: Inbox<object>,
  options: ConsumerOptions,
): Consumer {
  const log = options.logger ?? getDefaultLogger();
  const closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
  const onError =
    options.onError ??
    ((error: ProtoeventsError, subscription: string) =>
      log.error({ op: "subscribe", subscription, err: error }, "subscription stream error"));
  const names = bindings.map((b) => b.subscription.name);
  const duplicate = names.find((name, i) => names.indexOf(name) !== i);
  if (duplicate !== undefined) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `subscription ${duplicate} is bound twice; bind one handler per subscription`,
    );
  }
  const health = new HealthTracker(names, options.onHealth);
  const deadLetterTopics = createTopicCache(pubsub);
  const deliverer = createDeliverer({
    log,
    inbox,
    deadLetters: createDeadLetterPublisher(
      (name) => deadLetterTopics.topic(name, { batching: DEAD_LETTER_BATCHING }),
      log,
    ),
    onDelivery: options.onDelivery,
    beforeAck: options.beforeAck,
  });
  const inFlight = new Set<Promise<void>>();
  const streams: SupervisedStream[] = [];
  let closed: Promise<void> | undefined;

  function track(work: Promise<unknown>): void {
    const done = work.then(
      () => undefined,
      (error: unknown) => {
        // The deliverer handles every failure; reaching here is a bug.
        log.error({ err: error }, "unexpected error while processing a message");
      },
    );
    inFlight.add(done);
    void done.finally(() => inFlight.delete(done));
  }

  function dispatcher(binding: Binding): (message: ReceivedMessage) => void {
    if (!binding.subscription.ordered) {
      return (message) => track(deliverer.deliver(binding, message));
    }
    const queue = new KeyedQueue();
    return (message) => {
      const key = message.orderingKey;
      if (key === undefined || key === "") {
        track(deliverer.deliver(binding, message));
        return;
      }
      track(
        queue.run(
          key,
          async () => ((await deliverer.deliver(binding, message)) === "nacked" ? "failed" : "ok"),
          () => deliverer.nackBehind(binding, message, key),
        ),
      );
    };
  }

  for (const binding of bindings) {
    const name = binding.subscription.name;
    streams.push(
      superviseStream(
        pubsub,
        name,
        options,
        {
          onMessage: dispatcher(binding),
          onError: (error) => onError(error, name),
          onFailing: (error) => health.setFailing(name, error),
        },
        log,
      ),
    );
  }
  log.info({ op: "subscribe", subscriptions: names }, "consuming");

  return {
    subscriptions: names,
    health: () => health.health(),
    close(): Promise<void> {
      closed ??= (async () => {
        health.close();
        const shutdown = (async () => {
          await Promise.all(streams.map((stream) => stream.close()));
          await Promise.allSettled([...inFlight]);
          await deadLetterTopics.flush();
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
