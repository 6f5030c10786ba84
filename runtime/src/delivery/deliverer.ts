/**
 * One delivery, start to end: skip a sibling event type, decode through the
 * binding, run the handler through the inbox, then ack, nack or dead-letter,
 * with the log lines, the metrics, the span and the outcome reported.
 */
import type { Message } from "@google-cloud/pubsub";
import { Code, ProtoeventsError } from "../errors.js";
import type { Logger } from "../logger.js";
import { recordDelivery } from "../metrics.js";
import { getTracer, type TracedOutcome, traceDelivery } from "../tracing.js";
import type { Binding, DecodedDelivery } from "./binding.js";
import { REPLAY_FOR_ATTRIBUTE } from "./dead-letter-protocol.js";
import type { DeadLetterPublisher } from "./dead-letter-publisher.js";
import type { Inbox } from "./inbox.js";
import { settle } from "./settle.js";

/**
 * How one delivery ended: `acked` after the handler succeeded; `duplicate`
 * when the inbox already held the event, acked without running the handler;
 * `nacked` for redelivery; `dead-lettered`; `filtered` when it was another
 * event type of a shared topic, acked without running the handler.
 */
export type DeliveryResult = "acked" | "duplicate" | "nacked" | "dead-lettered" | "filtered";

/** Reported to `ConsumerOptions.onDelivery` after every delivery. */
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

/** The parts of a received Pub/Sub message a delivery reads and settles. */
export interface ReceivedMessage
  extends Pick<
    Message,
    | "id"
    | "data"
    | "attributes"
    | "orderingKey"
    | "deliveryAttempt"
    | "ack"
    | "nack"
    | "ackWithResponse"
    | "nackWithResponse"
  > {
  /** When Pub/Sub accepted the message. */
  readonly publishTime: Date;
}

/** Failures a handler can only have caused with what it published: never the incoming event's. */
const OUTGOING_FAILURES: ReadonlySet<Code> = new Set([Code.ValidationFailed, Code.TooLarge]);

/** What a {@link Deliverer} works with. */
export interface DelivererOptions<Extra extends object> {
  readonly log: Logger;
  readonly inbox: Inbox<Extra>;
  readonly deadLetters: DeadLetterPublisher;
  readonly onDelivery?: ((outcome: DeliveryOutcome) => void) | undefined;
  readonly beforeAck?: ((outcome: DeliveryOutcome) => void) | undefined;
}

/** Delivers messages to their bindings. */
export interface Deliverer<Extra extends object> {
  /** Deliver one message to its binding and settle it; never throws. */
  deliver(binding: Binding<Extra>, message: ReceivedMessage): Promise<DeliveryResult>;
  /**
   * Nack a message of an ordering key whose earlier event was nacked, without
   * running the handler: it waits for that event's redelivery.
   */
  nackBehind(binding: Binding<Extra>, message: ReceivedMessage, key: string): void;
}

/**
 * A deliverer. Logging: one `debug` line per receive and ack, `warn` per
 * nack and dead-letter, each with subscription, event id, type and subject;
 * never a payload.
 */
export function createDeliverer<Extra extends object>(
  options: DelivererOptions<Extra>,
): Deliverer<Extra> {
  const { log, inbox, deadLetters, onDelivery, beforeAck } = options;

  function outcomeOf(
    binding: Binding<Extra>,
    message: ReceivedMessage,
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
    binding: Binding<Extra>,
    message: ReceivedMessage,
    result: DeliveryResult,
    error?: ProtoeventsError,
  ): void {
    onDelivery?.(outcomeOf(binding, message, result, error));
  }

  /** Ack a message that is not for this subscription, without running the handler. */
  function filtered(
    binding: Binding<Extra>,
    message: ReceivedMessage,
    why: string,
  ): DeliveryResult {
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

  async function deliver(
    binding: Binding<Extra>,
    message: ReceivedMessage,
  ): Promise<DeliveryResult> {
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
    binding: Binding<Extra>,
    message: ReceivedMessage,
  ): Promise<TracedOutcome<DeliveryResult>> {
    const sub = binding.subscription;
    let error: ProtoeventsError;
    let decoded: DecodedDelivery<Extra> | undefined;
    try {
      decoded = binding.decode(message);
      const { envelope, run } = decoded;
      const eventLog = log.child({
        subscription: sub.name,
        eventId: envelope.id,
        eventType: envelope.type,
        subject: envelope.subject,
      });
      const context = {
        deliveryAttempt: message.deliveryAttempt,
        messageId: message.id,
        publishTime: message.publishTime,
        log: eventLog,
      };
      const fresh = await inbox.run(sub.name, envelope.id, (extra) => run(context, extra));
      const result: DeliveryResult = fresh ? "acked" : "duplicate";
      const replayFor = message.attributes[REPLAY_FOR_ATTRIBUTE];
      if (replayFor !== undefined && replayFor !== sub.name) {
        if (result === "acked" && inbox.deduplicates) {
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
            inbox.deduplicates
              ? `acked an event replayed for ${replayFor}: this subscription had processed it`
              : `handled an event replayed for ${replayFor} again (at least once: no inbox here)`,
          );
        }
      }
      beforeAck?.(outcomeOf(binding, message, result));
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
      const result = await deadLetters.deadLetter(sub, message, error);
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

  return {
    deliver,
    nackBehind(binding, message, key) {
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
    },
  };
}
