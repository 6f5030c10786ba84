/**
 * W3C trace context on events, with OpenTelemetry (`@opentelemetry/api`).
 *
 * Producers write the `traceparent` attribute from the active context;
 * consumers continue that trace in a CONSUMER span around the handler, with
 * the span active while the handler runs, so what the handler publishes
 * carries the same trace. Nothing of this does any work until an
 * OpenTelemetry tracer provider is registered (`trace.setGlobalTracerProvider`).
 */
import {
  type Attributes,
  context,
  isSpanContextValid,
  ProxyTracerProvider,
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

/**
 * The `traceparent` of the span active in the current OpenTelemetry context,
 * or undefined when there is none (or no tracer provider is registered).
 * The publisher and the outbox write it on every event.
 */
export function activeTraceparent(): string | undefined {
  if (getTracer() === undefined) {
    return undefined;
  }
  const spanContext = trace.getSpanContext(context.active());
  return spanContext !== undefined && isSpanContextValid(spanContext)
    ? formatTraceparent(spanContext)
    : undefined;
}

/** What a delivery span records besides the subscription. */
export interface DeliverySpanInfo {
  /** The Pub/Sub subscription id. */
  readonly subscription: string;
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
 * child of the producer's span (from the message's `traceparent`; a new trace
 * without one), with the span active for `run`. The span carries
 * `messaging.*` and `cloudevents.*` attributes and the delivery result; it is
 * marked as an error when the delivery failed.
 *
 * @internal Called by the consumer after {@link getTracer} returned a tracer.
 */
export async function traceDelivery<R extends string>(
  tracer: Tracer,
  info: DeliverySpanInfo,
  run: () => Promise<TracedOutcome<R>>,
): Promise<R> {
  const a = info.attributes;
  const parent = parseTraceparent(a.traceparent);
  const parentContext =
    parent === undefined ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, parent);
  const attributes: Attributes = {
    "messaging.system": "gcp_pubsub",
    "messaging.operation.type": "process",
    "messaging.operation.name": "process",
    "messaging.destination.subscription.name": info.subscription,
    "messaging.message.id": info.messageId,
    "messaging.gcp_pubsub.message.delivery_attempt": info.deliveryAttempt,
  };
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
  const span: Span = tracer.startSpan(
    `${info.subscription} process`,
    { kind: SpanKind.CONSUMER, attributes },
    parentContext,
  );
  try {
    const outcome = await context.with(trace.setSpan(parentContext, span), run);
    span.setAttribute("protoevents.delivery.result", outcome.result);
    if (outcome.error !== undefined) {
      span.recordException(outcome.error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error.message });
    }
    return outcome.result;
  } catch (error) {
    span.recordException(error as Error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
    throw error;
  } finally {
    span.end();
  }
}
