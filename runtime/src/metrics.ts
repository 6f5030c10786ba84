/**
 * protoevents' metrics, through `@opentelemetry/api`: nothing is recorded
 * until the application registers a meter provider
 * (`metrics.setGlobalMeterProvider`). Names follow the OpenTelemetry
 * messaging conventions where they have one:
 *
 * - `messaging.client.sent.messages` (counter): events published, directly
 *   or by the outbox relay; with `error.type` when Pub/Sub refused one.
 * - `messaging.client.consumed.messages` (counter): deliveries handled, by
 *   `protoevents.delivery.result`: `acked` (processed), `duplicate` (the
 *   inbox suppressed a redelivery), `nacked` (to be retried),
 *   `dead-lettered`.
 * - `messaging.process.duration` (histogram, s): handler runs.
 * - `protoevents.outbox.backlog` (gauge, rows): outbox rows not yet
 *   published, read when the metrics are collected.
 * - `protoevents.outbox.lag` (histogram, s): from a row's commit to
 *   Pub/Sub accepting it.
 *
 * Every label comes from the contracts (topic, subscription, the event type
 * the subscription declares) or a short fixed set (results, error codes),
 * never from a message: a hostile `ce-type` cannot grow the label sets.
 */
import {
  type Attributes,
  type Counter,
  createNoopMeter,
  type Histogram,
  type Meter,
  type MeterProvider,
  metrics,
} from "@opentelemetry/api";
import type { DeliveryResult } from "./consumer.js";
import { errorType } from "./tracing.js";

/** The name of protoevents' meter (instrumentation scope). */
export const METER_NAME = "protoevents";

interface Instruments {
  /** False while no meter provider is registered: record nothing, build no attributes. */
  readonly enabled: boolean;
  readonly meter: Meter;
  readonly sent: Counter;
  readonly consumed: Counter;
  readonly processDuration: Histogram;
  readonly outboxLag: Histogram;
}

let lastProvider: MeterProvider | undefined;
let current: Instruments | undefined;

/** The API's no-op counter: every no-op meter hands out this one instance. */
const NOOP_COUNTER = createNoopMeter().createCounter("protoevents.noop");

/**
 * The instruments of the meter provider registered now. The metrics API has
 * no proxy: instruments made before a provider is registered stay no-ops, so
 * they are made again when the provider changes.
 */
function instruments(): Instruments {
  const provider = metrics.getMeterProvider();
  if (current === undefined || provider !== lastProvider) {
    lastProvider = provider;
    const meter = provider.getMeter(METER_NAME);
    const sent = meter.createCounter("messaging.client.sent.messages", {
      description: "Events published to Pub/Sub",
      unit: "{message}",
    });
    current = {
      enabled: sent !== NOOP_COUNTER,
      meter,
      sent,
      consumed: meter.createCounter("messaging.client.consumed.messages", {
        description: "Deliveries handled, by result",
        unit: "{message}",
      }),
      processDuration: meter.createHistogram("messaging.process.duration", {
        description: "Duration of handling one delivery",
        unit: "s",
      }),
      outboxLag: meter.createHistogram("protoevents.outbox.lag", {
        description: "Time from an outbox row's commit to Pub/Sub accepting it",
        unit: "s",
      }),
    };
  }
  return current;
}

/** Count one event published to `topic` (failed: with the error's type). */
export function recordSent(topic: string, eventType: string, error?: unknown): void {
  const { enabled, sent } = instruments();
  if (!enabled) {
    return;
  }
  const attributes: Attributes = {
    "messaging.system": "gcp_pubsub",
    "messaging.operation.name": "send",
    "messaging.destination.name": topic,
    "cloudevents.event_type": eventType,
  };
  if (error !== undefined) {
    attributes["error.type"] = errorType(error);
  }
  sent.add(1, attributes);
}

/**
 * Count one delivery of `subscription` (consuming events of `eventType`, the
 * type its contract declares) and how long handling it took.
 */
export function recordDelivery(
  subscription: string,
  eventType: string,
  result: DeliveryResult,
  seconds: number,
): void {
  const { enabled, consumed, processDuration } = instruments();
  if (!enabled) {
    return;
  }
  const attributes: Attributes = {
    "messaging.system": "gcp_pubsub",
    "messaging.operation.name": "process",
    "messaging.destination.subscription.name": subscription,
    "cloudevents.event_type": eventType,
    "protoevents.delivery.result": result,
  };
  consumed.add(1, attributes);
  processDuration.record(seconds, attributes);
}

/** Record how long an outbox row waited between its commit and its publish. */
export function recordOutboxLag(topic: string, eventType: string, seconds: number): void {
  const { enabled, outboxLag } = instruments();
  if (!enabled) {
    return;
  }
  outboxLag.record(seconds, {
    "messaging.destination.name": topic,
    "cloudevents.event_type": eventType,
  });
}

/**
 * Report `backlog()` as the `protoevents.outbox.backlog` gauge whenever the
 * registered meter provider collects. Returns the function that stops it.
 */
export function observeOutboxBacklog(store: string, backlog: () => Promise<number>): () => void {
  const { meter } = instruments();
  const gauge = meter.createObservableGauge("protoevents.outbox.backlog", {
    description: "Outbox rows not yet published",
    unit: "{row}",
  });
  const callback = async (result: { observe(value: number, attributes?: Attributes): void }) => {
    try {
      result.observe(await backlog(), { "protoevents.store": store });
    } catch {
      // A store that cannot answer reports nothing this time.
    }
  };
  gauge.addCallback(callback);
  return () => gauge.removeCallback(callback);
}
