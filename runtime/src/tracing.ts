/**
 * Trace context on events, with OpenTelemetry (`@opentelemetry/api`).
 *
 * Producers send each event in a PRODUCER span (`send <topic>`) and write
 * its context into the message attributes through the propagators the
 * application registered (`propagation.setGlobalPropagator`: W3C trace
 * context, baggage, B3, …), or as a W3C `traceparent` when none is
 * registered. The outbox keeps the context of the span that wrote a row, and
 * the relay's PRODUCER span continues it. Consumers continue the producer's
 * trace in a CONSUMER span around the handler, active while the handler
 * runs, so what the handler publishes carries the same trace. Spans follow
 * the OpenTelemetry messaging conventions. Nothing of this does any work
 * until a tracer provider or a propagator is registered.
 *
 * `@google-cloud/pubsub` can trace too (`enableOpenTelemetryTracing`); leave
 * it off with protoevents, or each publish and delivery has two spans.
 */
import {
  type Attributes,
  type Context,
  context,
  isSpanContextValid,
  ProxyTracerProvider,
  propagation,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  type TracerProvider,
  trace,
} from "@opentelemetry/api";

/** The name of protoevents' tracer (instrumentation scope). */
export const TRACER_NAME = "protoevents";

/**
 * `traceparent` as W3C Trace Context writes it: version, trace id, parent span
 * id, flags, all lower-case hex. Versions above 00 may append fields.
 */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** Format a span context as a W3C `traceparent` value (version 00). */
export function formatTraceparent(spanContext: SpanContext): string {
  const flags = (spanContext.traceFlags & 0xff).toString(16).padStart(2, "0");
  return `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`;
}

/**
 * Parse a W3C `traceparent` value into a remote span context; undefined when
 * it is absent or invalid (version `ff`, all-zero ids, extra fields on
 * version 00, wrong lengths or upper-case hex).
 */
export function parseTraceparent(value: string | undefined): SpanContext | undefined {
  if (value === undefined) {
    return undefined;
  }
  const match = TRACEPARENT.exec(value.trim());
  if (match === null) {
    return undefined;
  }
  const [, version, traceId, spanId, flags, rest] = match as unknown as [
    string,
    string,
    string,
    string,
    string,
    string | undefined,
  ];
  if (version === "ff" || (version === "00" && rest !== undefined)) {
    return undefined;
  }
  const spanContext: SpanContext = {
    traceId,
    spanId,
    traceFlags: Number.parseInt(flags, 16),
    isRemote: true,
  };
  return isSpanContextValid(spanContext) ? spanContext : undefined;
}

let lastDelegate: TracerProvider | undefined;
let lastTracer: Tracer | undefined;

/**
 * protoevents' tracer, or undefined when no tracer provider is registered:
 * the check every traced path makes first, so that without OpenTelemetry no
 * span, context or string is made per message.
 *
 * @internal
 */
export function getTracer(): Tracer | undefined {
  const global = trace.getTracerProvider();
  if (!(global instanceof ProxyTracerProvider)) {
    return global.getTracer(TRACER_NAME);
  }
  const delegate = global.getDelegate();
  if (delegate !== lastDelegate) {
    lastDelegate = delegate;
    // Undefined while the proxy has no delegate: nobody registered a provider.
    lastTracer = global.getDelegateTracer(TRACER_NAME);
  }
  return lastTracer;
}

/** Pub/Sub's limits on one attribute: 256 bytes of key, 1,024 of value. */
const MAX_ATTRIBUTE_KEY_BYTES = 256;
const MAX_ATTRIBUTE_VALUE_BYTES = 1024;

/**
 * Whether an attribute a propagator wrote may travel: never one of the
 * envelope's (`ce-*`, `content-type`), protoevents' or Pub/Sub's (`goog*`),
 * and only within Pub/Sub's size limits (a large baggage is dropped rather
 * than fail the publish).
 */
function carriable(key: string, value: string): boolean {
  const lower = key.toLowerCase();
  return (
    !lower.startsWith("ce-") &&
    !lower.startsWith("protoevents-") &&
    !lower.startsWith("goog") &&
    lower !== "content-type" &&
    Buffer.byteLength(key) <= MAX_ATTRIBUTE_KEY_BYTES &&
    Buffer.byteLength(value) <= MAX_ATTRIBUTE_VALUE_BYTES
  );
}

/**
 * Whether the application registered propagators (the API's default writes
 * nothing). About 20 ns: the check a publish without a tracer makes.
 *
 * @internal
 */
export function propagatorRegistered(): boolean {
  return propagation.fields().length > 0;
}

/**
 * The trace context of `ctx` as message attributes, written by the
 * registered propagators, or as a W3C `traceparent` when none is
 * registered; undefined when there is nothing to carry.
 *
 * @internal
 */
export function traceContextAttributes(
  ctx: Context = context.active(),
): Record<string, string> | undefined {
  const carrier: Record<string, string> = {};
  if (propagatorRegistered()) {
    propagation.inject(ctx, carrier);
  } else {
    const traceparent = traceparentOf(ctx);
    if (traceparent !== undefined) {
      carrier.traceparent = traceparent;
    }
  }
  let out: Record<string, string> | undefined;
  for (const [key, value] of Object.entries(carrier)) {
    if (typeof value === "string" && carriable(key, value)) {
      out ??= {};
      out[key] = value;
    }
  }
  return out;
}

/**
 * The context a message's attributes carry, read by the registered
 * propagators, or from its W3C `traceparent` when none is registered;
 * `ROOT_CONTEXT` when it carries none.
 *
 * @internal
 */
export function contextFromAttributes(attributes: Readonly<Record<string, string>>): Context {
  if (propagatorRegistered()) {
    return propagation.extract(ROOT_CONTEXT, attributes);
  }
  const { traceparent } = attributes;
  return (
    (traceparent === undefined ? undefined : contextOfTraceparent(traceparent)) ?? ROOT_CONTEXT
  );
}

/** What a send span records. */
export interface SendSpanInfo {
  readonly topic: string;
  /** The event's CloudEvents attributes (`ce-id`, `ce-type`, `ce-subject`). */
  readonly attributes: Readonly<Record<string, string>>;
  readonly orderingKey?: string | undefined;
}

/**
 * Send one message inside a PRODUCER span `send <topic>`, child of
 * `parent`: the span's context is written into `carrier` (the message's
 * attributes, before `send` reads them), and the span records the message id
 * Pub/Sub assigned, or the error (`error.type`: the protoevents code, else
 * the error's name).
 *
 * @internal Called by the publisher and the outbox relay after
 *   {@link getTracer} returned a tracer.
 */
export async function traceSend<T>(
  tracer: Tracer,
  parent: Context,
  info: SendSpanInfo,
  carrier: Record<string, string>,
  send: () => Promise<T>,
  messageIdOf: (sent: T) => string | undefined,
): Promise<T> {
  const a = info.attributes;
  const attributes: Attributes = {
    "messaging.system": "gcp_pubsub",
    "messaging.operation.type": "send",
    "messaging.operation.name": "send",
    "messaging.destination.name": info.topic,
  };
  if (info.orderingKey !== undefined) {
    attributes["messaging.gcp_pubsub.message.ordering_key"] = info.orderingKey;
  }
  setCloudEventAttributes(attributes, a);
  const span = tracer.startSpan(
    `send ${info.topic}`,
    { kind: SpanKind.PRODUCER, attributes },
    parent,
  );
  const injected = traceContextAttributes(trace.setSpan(parent, span));
  for (const [key, value] of Object.entries(injected ?? {})) {
    carrier[key] = value;
  }
  try {
    const sent = await send();
    const messageId = messageIdOf(sent);
    if (messageId !== undefined) {
      span.setAttribute("messaging.message.id", messageId);
    }
    return sent;
  } catch (error) {
    markFailed(span, error);
    throw error;
  } finally {
    span.end();
  }
}

function setCloudEventAttributes(
  attributes: Attributes,
  a: Readonly<Record<string, string | undefined>>,
): void {
  const optional: ReadonlyArray<[string, string | undefined]> = [
    ["cloudevents.event_id", a["ce-id"]],
    ["cloudevents.event_type", a["ce-type"]],
    ["cloudevents.event_source", a["ce-source"]],
    ["cloudevents.event_subject", a["ce-subject"]],
  ];
  for (const [key, value] of optional) {
    if (value !== undefined) {
      attributes[key] = value;
    }
  }
}

/** `error.type`: a ProtoeventsError's code (a short, bounded set), else the error's name. */
export function errorType(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === "string" && /^[a-z_]{1,40}$/.test(code)) {
    return code;
  }
  return error instanceof Error ? error.name : "_OTHER";
}

function markFailed(span: Span, error: unknown): void {
  span.recordException(error as Error);
  span.setAttribute("error.type", errorType(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message });
}

/** The context of a W3C `traceparent` value, or undefined when it is not a valid one. */
export function contextOfTraceparent(value: string): Context | undefined {
  const parent = parseTraceparent(value);
  return parent === undefined ? undefined : trace.setSpanContext(ROOT_CONTEXT, parent);
}

/**
 * The `traceparent` of the span active in the current OpenTelemetry context,
 * or undefined when there is none (or no tracer provider is registered).
 * The publisher and the outbox write it on every event.
 */
export function activeTraceparent(): string | undefined {
  return traceparentOf(context.active());
}

/** The `traceparent` of `ctx`'s span; undefined without one or without a tracer provider. */
function traceparentOf(ctx: Context): string | undefined {
  if (getTracer() === undefined) {
    return undefined;
  }
  const spanContext = trace.getSpanContext(ctx);
  return spanContext !== undefined && isSpanContextValid(spanContext)
    ? formatTraceparent(spanContext)
    : undefined;
}

/** What a delivery span records besides the subscription. */
export interface DeliverySpanInfo {
  /** The Pub/Sub subscription id. */
  readonly subscription: string;
  /** The topic the subscription reads. */
  readonly topic: string;
  /** The message's attributes: `traceparent` is the parent, `ce-*` become span attributes. */
  readonly attributes: Readonly<Record<string, string>>;
  /** The Pub/Sub message id. */
  readonly messageId: string;
  readonly deliveryAttempt: number;
}

/** How a traced delivery ended: the result, and the error when it failed. */
export interface TracedOutcome<R extends string> {
  readonly result: R;
  readonly error?: Error | undefined;
}

/**
 * Run one delivery inside a CONSUMER span named `<subscription> process`,
 * child of the producer's span (from the message's trace context; a new
 * trace without one), with the span active for `run`. The span carries
 * `messaging.*` and `cloudevents.*` attributes and the delivery result; it is
 * marked as an error (with `error.type`) when the delivery failed.
 *
 * @internal Called by the consumer after {@link getTracer} returned a tracer.
 */
export async function traceDelivery<R extends string>(
  tracer: Tracer,
  info: DeliverySpanInfo,
  run: () => Promise<TracedOutcome<R>>,
): Promise<R> {
  const a = info.attributes;
  const parentContext = contextFromAttributes(a);
  const attributes: Attributes = {
    "messaging.system": "gcp_pubsub",
    "messaging.operation.type": "process",
    "messaging.operation.name": "process",
    "messaging.destination.name": info.topic,
    "messaging.destination.subscription.name": info.subscription,
    "messaging.message.id": info.messageId,
    "messaging.gcp_pubsub.message.delivery_attempt": info.deliveryAttempt,
  };
  setCloudEventAttributes(attributes, a);
  const span: Span = tracer.startSpan(
    `${info.subscription} process`,
    { kind: SpanKind.CONSUMER, attributes },
    parentContext,
  );
  try {
    const outcome = await context.with(trace.setSpan(parentContext, span), run);
    span.setAttribute("protoevents.delivery.result", outcome.result);
    if (outcome.error !== undefined) {
      markFailed(span, outcome.error);
    }
    return outcome.result;
  } catch (error) {
    markFailed(span, error);
    throw error;
  } finally {
    span.end();
  }
}
