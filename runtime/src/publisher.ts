import {
  create,
  type DescMessage,
  isMessage,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import type { PubSub, Topic } from "@google-cloud/pubsub";
import { context } from "@opentelemetry/api";
import type { EventContract } from "./contract.js";
import { DEFAULT_BATCHING } from "./default-options.js";
import {
  type EncodeOptions,
  encodeEvent,
  formatViolations,
  type OutgoingMessage,
} from "./envelope.js";
import { Code, ProtoeventsError } from "./errors.js";
import { getDefaultLogger, type Logger } from "./logger.js";
import { recordSent } from "./metrics.js";
import { createTopicCache } from "./topic-cache.js";
import {
  contextOfTraceparent,
  getTracer,
  propagatorRegistered,
  traceContextAttributes,
  traceSend,
} from "./tracing.js";

/** Publish batching; see {@link DEFAULT_BATCHING} for the defaults and why. */
export interface BatchingOptions {
  readonly maxMessages?: number;
  readonly maxMilliseconds?: number;
  readonly maxBytes?: number;
}

/** Options of {@link createEventPublisher}. */
export interface EventPublisherOptions {
  /** `ce-source` of every event: the publishing application. */
  readonly source: string;
  /** Batching of the underlying Pub/Sub topics. @default DEFAULT_BATCHING */
  readonly batching?: BatchingOptions;
  /**
   * Check field rules before publishing and refuse an invalid event.
   * @default true
   */
  readonly validate?: boolean;
  readonly logger?: Logger;
}

/** Per-publish envelope values. */
export interface PublishOptions {
  /** `ce-id`. @default a new UUIDv7. Keep an event's original id when republishing it. */
  readonly id?: string | undefined;
  /** `ce-time`. @default now */
  readonly time?: Date | string | undefined;
  /**
   * W3C trace context. @default the span active in the OpenTelemetry
   * context, when a tracer provider is registered
   */
  readonly traceparent?: string | undefined;
  /** Extra attributes, e.g. for subscription filters; reserved names (`ce-*`, `protoevents-*`, …) are refused. */
  readonly attributes?: Readonly<Record<string, string>> | undefined;
}

/** What a publish produced. */
export interface PublishResult {
  /** `ce-id`, the event id. */
  readonly id: string;
  /**
   * The Pub/Sub message id; undefined when the event went to an outbox,
   * whose relay publishes it after the transaction commits.
   */
  readonly messageId: string | undefined;
}

/**
 * Where events go: straight to Pub/Sub ({@link createEventPublisher}) or into
 * the outbox of a store transaction (`createOutboxSink`). Generated
 * publishers bind their typed methods to one.
 */
export interface EventSink {
  /**
   * Validate, encode and send one event.
   *
   * @throws ProtoeventsError `validation_failed` (nothing was sent) or
   *   `publish_failed` (Pub/Sub refused or was unreachable; safe to retry with
   *   the same `id`).
   */
  publish<Desc extends DescMessage>(
    contract: EventContract<Desc>,
    event: MessageInitShape<Desc>,
    options?: PublishOptions,
  ): Promise<PublishResult>;
}

/**
 * Publishes events by contract straight to Pub/Sub. Resolves once Pub/Sub
 * accepted an event.
 */
export interface EventPublisher extends EventSink {
  /** Send every batched message now and wait for the answers. */
  flush(): Promise<void>;
}

/**
 * Create a publisher on a Pub/Sub client. One Pub/Sub `Topic` is kept per
 * topic, with message ordering on when the event has an ordering key. With
 * OpenTelemetry, each event is sent in a PRODUCER span, child of the active
 * span, whose context the event carries (see `tracing.ts`), and counted in
 * `messaging.client.sent.messages`; at `debug` level each publish is logged
 * (event id, type, topic, subject).
 */
export function createEventPublisher(
  pubsub: PubSub,
  options: EventPublisherOptions,
): EventPublisher {
  const topics = createTopicCache(pubsub);
  const batching = { ...DEFAULT_BATCHING, ...options.batching };
  const validate = options.validate ?? true;
  const source = options.source;
  const defaultEncodeOptions: EncodeOptions = { source };
  const log = options.logger ?? getDefaultLogger();

  function topicFor(contract: Pick<EventContract, "topic" | "orderingKeyField">): Topic {
    return topics.topic(contract.topic, {
      batching,
      messageOrdering: contract.orderingKeyField !== undefined,
    });
  }

  function send(
    contract: Pick<EventContract, "type" | "topic">,
    topic: Topic,
    message: OutgoingMessage,
  ): Promise<PublishResult> {
    const id = message.attributes["ce-id"] as string;
    // One `then` rather than an async function: this runs once per event.
    return topic.publishMessage(message).then(
      (messageId) => {
        recordSent(contract.topic, contract.type);
        if (log.isLevelEnabled("debug")) {
          log.debug(
            {
              op: "publish",
              eventId: id,
              eventType: contract.type,
              topic: contract.topic,
              subject: message.attributes["ce-subject"],
              messageId,
            },
            "published",
          );
        }
        return { id, messageId };
      },
      (cause: unknown) => {
        recordSent(contract.topic, contract.type, cause);
        if (message.orderingKey !== undefined) {
          // The client pauses an ordering key after a failed publish so later
          // events cannot overtake it. The caller retries this event, so the
          // key must accept publishes again.
          topic.resumePublishing(message.orderingKey);
        }
        const error = new ProtoeventsError(
          Code.PublishFailed,
          `Pub/Sub did not accept ${contract.type} event ${id} on topic ${contract.topic}: ${(cause as Error).message}`,
          { cause },
        );
        log.warn(
          {
            op: "publish",
            eventId: id,
            eventType: contract.type,
            topic: contract.topic,
            err: error,
          },
          "publish failed",
        );
        throw error;
      },
    );
  }

  return {
    publish<Desc extends DescMessage>(
      contract: EventContract<Desc>,
      init: MessageInitShape<Desc>,
      publishOptions?: PublishOptions,
    ): Promise<PublishResult> {
      const event: MessageShape<Desc> = isMessage(init, contract.schema)
        ? init
        : create(contract.schema, init);
      if (validate) {
        const violations = contract.validate(event);
        if (violations.length > 0) {
          return Promise.reject(
            new ProtoeventsError(
              Code.ValidationFailed,
              `${contract.type} breaks its field rules, nothing was published: ${formatViolations(violations)}`,
              { details: { violations } },
            ),
          );
        }
      }
      const explicit = publishOptions?.traceparent;
      let message: OutgoingMessage;
      try {
        message = encodeEvent(
          contract,
          event,
          publishOptions === undefined
            ? defaultEncodeOptions
            : {
                source,
                id: publishOptions.id,
                time: publishOptions.time,
                traceparent: explicit,
                attributes: publishOptions.attributes,
              },
        );
      } catch (error) {
        // A reserved attribute: refused like a broken rule, as a rejection.
        return Promise.reject(ProtoeventsError.from(error));
      }
      const topic = topicFor(contract);
      const tracer = getTracer();
      if (tracer === undefined) {
        // No spans; the registered propagators may still carry something (baggage).
        if (explicit === undefined && propagatorRegistered()) {
          Object.assign(message.attributes, traceContextAttributes());
        }
        return send(contract, topic, message);
      }
      const parent =
        (explicit === undefined ? undefined : contextOfTraceparent(explicit)) ?? context.active();
      return traceSend(
        tracer,
        parent,
        { topic: contract.topic, attributes: message.attributes, orderingKey: message.orderingKey },
        message.attributes,
        () => send(contract, topic, message),
        (sent) => sent.messageId,
      );
    },

    flush(): Promise<void> {
      return topics.flush();
    },
  };
}
