/**
 * A handler bound to its subscription. The binding is made where the event
 * type is known (bindHandler, called by generated code with a typed
 * subscription and handler): it decodes a message with that subscription's
 * contract and calls the handler with the event of that type, so the
 * consumer that runs it needs to know no type at all.
 */
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { SubscriptionContract } from "../contract.js";
import { decodeValidEvent, type Envelope, type IncomingMessage } from "../envelope.js";
import { Code, ProtoeventsError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { StoreTransaction } from "../store/store.js";

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

/** The part of a {@link HandlerContext} the consumer knows of a delivery. */
export type DeliveryContext = Omit<HandlerContext, "envelope" | "subscription">;

/** A message its binding decoded, ready to run the handler on. */
export interface DecodedDelivery<Extra extends object = object> {
  readonly envelope: Envelope;
  /** Run the handler with the delivery's context and what the consumer adds (`Extra`: its store transaction). */
  readonly run: (context: DeliveryContext, extra: Extra) => Promise<void> | void;
}

/**
 * A handler bound to its subscription. Make one with {@link bindHandler}.
 * `Extra` is what the handler needs from the consumer besides the
 * {@link HandlerContext}: a {@link TransactionContext} when it writes to the
 * store.
 */
export interface Binding<Extra extends object = object> {
  readonly subscription: SubscriptionContract;
  /**
   * Decode the message as the subscription's event and check its field
   * rules.
   *
   * @throws ProtoeventsError `too_large`, `unknown_event_type`,
   *   `decode_failed` or `validation_failed`: all permanent.
   */
  readonly decode: (message: IncomingMessage) => DecodedDelivery<Extra>;
}

/**
 * Pair a subscription with its handler; the types must agree. A handler that
 * takes a {@link TransactionContext} must run on a consumer started with a
 * store of the same tables: `startConsumer` refuses it otherwise (the
 * generated subscribe functions require one for such handlers).
 */
export function bindHandler<Desc extends DescMessage>(
  subscription: SubscriptionContract<Desc>,
  handler: Handler<Desc>,
): Binding;
export function bindHandler<Desc extends DescMessage, DB>(
  subscription: SubscriptionContract<Desc>,
  handler: Handler<Desc, TransactionContext<DB>>,
): Binding<TransactionContext<DB>>;
export function bindHandler<Desc extends DescMessage, Extra extends object>(
  subscription: SubscriptionContract<Desc>,
  handler: Handler<Desc, Extra>,
): Binding<Extra> {
  return {
    subscription,
    decode(message: IncomingMessage): DecodedDelivery<Extra> {
      const { event, envelope } = decodeValidEvent(subscription.event, message);
      return {
        envelope,
        run: (context, extra) => handler(event, { ...context, envelope, subscription, ...extra }),
      };
    },
  };
}

/**
 * The context of a handler that runs in a store transaction, with what the
 * application adds (its outbox publisher). Used by generated subscribe
 * functions, whose consumer runs on the store whose tables are `DB`.
 *
 * @internal
 */
export function withTransaction<Desc extends DescMessage, DB, Extra extends object>(
  context: HandlerContext<Desc> & Partial<TransactionContext<DB>>,
  extra: (tx: StoreTransaction<DB>) => Extra,
): HandlerContext<Desc> & Extra {
  const tx = context.tx;
  if (tx === undefined) {
    throw new ProtoeventsError(
      Code.Internal,
      "a handler that needs a store transaction ran on a consumer started without a store",
    );
  }
  return { ...context, ...extra(tx) };
}
