/**
 * OpenTelemetry beyond spans: the application's propagators, protoevents'
 * metrics for a run whose every outcome is known, and log lines that carry
 * the active span's ids. Registers in-memory exporters for this file only
 * (vitest runs each file in its own module graph).
 */
import type { Message } from "@google-cloud/pubsub";
import {
  type Attributes,
  context,
  metrics,
  propagation,
  type TextMapPropagator,
  trace,
} from "@opentelemetry/api";
import { AsyncHooksContextManager } from "@opentelemetry/context-async-hooks";
import {
  CompositePropagator,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from "@opentelemetry/core";
import {
  AggregationTemporality,
  type DataPoint,
  type Histogram,
  MeterProvider,
  MetricReader,
} from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createOrderSagaServicePublisher } from "../../generated/checkout/v1/applications_pe.js";
import { OrderPlacedEvent } from "../../generated/checkout/v1/order_events_pe.js";
import { bindHandler, type DeliveryOutcome, startConsumer } from "../../runtime/src/consumer.js";
import { createOutboxSink, startOutboxRelay } from "../../runtime/src/outbox.js";
import { provision } from "../../runtime/src/provision.js";
import { createEventPublisher } from "../../runtime/src/publisher.js";
import { afterThisTest, cleanUpNow } from "../helpers/cleanup.js";
import { captureLogs } from "../helpers/logs.js";
import { validOrderPlaced } from "../helpers/orders.js";
import { testPubSub } from "../helpers/pubsub.js";
import { testStoreLocation } from "../helpers/stores.js";
import {
  chargesMigrations,
  fastSubscription,
  registryWith,
  type TestDatabase,
} from "../helpers/test-contracts.js";
import { waitFor } from "../helpers/wait.js";

/** A fake propagator of the application's own: writes and reads `x-fake-trace`. */
const fakePropagator: TextMapPropagator = {
  inject(ctx, carrier, setter) {
    const span = trace.getSpanContext(ctx);
    if (span !== undefined) {
      setter.set(carrier, "x-fake-trace", `fake:${span.traceId}`);
    }
  },
  extract: (ctx) => ctx,
  fields: () => ["x-fake-trace"],
};

/** A reader the test collects from when it wants, cumulatively. */
class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

const spans = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({
  spanProcessors: [new SimpleSpanProcessor(spans)],
});
const reader = new TestReader();
const meterProvider = new MeterProvider({ readers: [reader] });

beforeAll(() => {
  context.setGlobalContextManager(new AsyncHooksContextManager().enable());
  trace.setGlobalTracerProvider(tracerProvider);
  metrics.setGlobalMeterProvider(meterProvider);
  propagation.setGlobalPropagator(
    new CompositePropagator({
      propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator(), fakePropagator],
    }),
  );
});

afterAll(async () => {
  trace.disable();
  metrics.disable();
  propagation.disable();
  context.disable();
  await tracerProvider.shutdown();
  await meterProvider.shutdown();
});

afterEach(async () => {
  await cleanUpNow();
  spans.reset();
});

/** The data points of metric `name` now, those whose attributes include `where`. */
async function points(name: string, where: Attributes): Promise<Array<DataPoint<unknown>>> {
  const { resourceMetrics } = await reader.collect();
  const metric = resourceMetrics.scopeMetrics
    .filter((scope) => scope.scope.name === "protoevents")
    .flatMap((scope) => scope.metrics)
    .find((m) => m.descriptor.name === name);
  return (metric?.dataPoints ?? []).filter((p) =>
    Object.entries(where).every(([k, v]) => p.attributes[k] === v),
  );
}

/** The sum of a counter's points matching `where`. */
async function counted(name: string, where: Attributes): Promise<number> {
  return (await points(name, where)).reduce((n, p) => n + (p.value as number), 0);
}

describe("propagation through the application's propagators", () => {
  it("should carry trace context, baggage and a custom propagator's field, and drop an oversized baggage", async () => {
    const pubsub = testPubSub("propagate");
    afterThisTest(() => pubsub.close());
    const subscription = fastSubscription("propagate.charge");
    // A second subscription read raw, to see the attributes as they travel.
    const raw = fastSubscription("propagate.raw");
    await provision(pubsub, registryWith(subscription, raw), { dryRun: false });
    const seen: Array<{
      tenant: string | undefined;
      orderId: string;
      traceId: string | undefined;
    }> = [];
    const consumer = startConsumer(pubsub, [
      bindHandler(subscription, (event) => {
        seen.push({
          tenant: propagation.getBaggage(context.active())?.getEntry("tenant")?.value,
          orderId: event.orderId,
          traceId: trace.getActiveSpan()?.spanContext().traceId,
        });
      }),
    ]);
    afterThisTest(() => consumer.close());
    const travelled: Array<Record<string, string>> = [];
    const rawSubscription = pubsub.subscription(raw.name);
    rawSubscription.on("message", (message: Message) => {
      travelled.push({ ...message.attributes });
      message.ack();
    });
    afterThisTest(() => rawSubscription.close());
    const publisher = createOrderSagaServicePublisher(pubsub);
    const tracer = trace.getTracer("test");
    const withBaggage = (tenant: string) =>
      propagation.setBaggage(
        context.active(),
        propagation.createBaggage({ tenant: { value: tenant } }),
      );
    let traceId = "";
    await context.with(withBaggage("acme"), () =>
      tracer.startActiveSpan("checkout", async (span) => {
        traceId = span.spanContext().traceId;
        await publisher.publishOrderPlaced(validOrderPlaced("ord-baggage"));
        span.end();
      }),
    );
    await context.with(withBaggage("x".repeat(2_000)), () =>
      publisher.publishOrderPlaced(validOrderPlaced("ord-big-baggage")),
    );
    await waitFor("both deliveries", () => seen.length >= 2 && travelled.length >= 2);
    const first = seen.find((s) => s.orderId === "ord-baggage");
    const second = seen.find((s) => s.orderId === "ord-big-baggage");
    const attributesOf = (subject: string) => travelled.find((a) => a["ce-subject"] === subject);
    expect(first?.tenant).toBe("acme");
    expect(first?.traceId).toBe(traceId);
    expect(attributesOf("ord-baggage")).toMatchObject({
      baggage: "tenant=acme",
      "x-fake-trace": expect.stringMatching(new RegExp(`^fake:${traceId}$`)),
      traceparent: expect.stringMatching(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`)),
    });
    // Pub/Sub refuses attribute values over 1,024 bytes: the baggage stays behind, the event goes.
    expect(attributesOf("ord-big-baggage")).not.toHaveProperty("baggage");
    expect(attributesOf("ord-big-baggage")).toHaveProperty("traceparent");
    expect(second?.tenant).toBeUndefined();
  });
});

describe("metrics of a known run", () => {
  it("should count what was published, acked, retried, suppressed as duplicate and dead-lettered", async () => {
    const pubsub = testPubSub("metrics");
    afterThisTest(() => pubsub.close());
    const subscription = fastSubscription("metrics.charge");
    await provision(pubsub, registryWith(subscription), { dryRun: false });
    const where = await testStoreLocation("sqlite");
    afterThisTest(() => where.remove());
    const store = await where.open<TestDatabase>(chargesMigrations);
    afterThisTest(() => store.close());
    const outcomes: DeliveryOutcome[] = [];
    let failOnce = true;
    const consumer = startConsumer(
      pubsub,
      [
        bindHandler(subscription, (event) => {
          if (event.orderId === "ord-flaky" && failOnce) {
            failOnce = false;
            throw new Error("gateway down");
          }
        }),
      ],
      { store, onDelivery: (o) => outcomes.push(o) },
    );
    afterThisTest(() => consumer.close());
    const publisher = createEventPublisher(pubsub, { source: "test" });
    const topic = { "messaging.destination.name": OrderPlacedEvent.topic };
    const sentBefore = await counted("messaging.client.sent.messages", topic);

    await publisher.publish(OrderPlacedEvent, validOrderPlaced("ord-ok"));
    await publisher.publish(OrderPlacedEvent, validOrderPlaced("ord-flaky"));
    // One event sent twice with one ce-id: the inbox suppresses the second.
    await publisher.publish(OrderPlacedEvent, validOrderPlaced("ord-twice"), { id: "evt-twice" });
    await publisher.publish(OrderPlacedEvent, validOrderPlaced("ord-twice"), { id: "evt-twice" });
    // Garbage from a foreign client: dead-lettered at once.
    await pubsub.topic(OrderPlacedEvent.topic).publishMessage({
      data: Buffer.from("not an event"),
      attributes: { "ce-type": OrderPlacedEvent.type },
    });
    await waitFor("six deliveries", () => outcomes.length >= 6, 60_000);

    const results = outcomes.map((o) => o.result).sort();
    expect(results).toEqual(["acked", "acked", "acked", "dead-lettered", "duplicate", "nacked"]);
    const bySubscription = { "messaging.destination.subscription.name": subscription.name };
    const consumed = (result: string) =>
      counted("messaging.client.consumed.messages", {
        ...bySubscription,
        "protoevents.delivery.result": result,
        // The contract's type, whatever the message said.
        "cloudevents.event_type": OrderPlacedEvent.type,
      });
    expect(await consumed("acked")).toBe(3);
    expect(await consumed("nacked")).toBe(1);
    expect(await consumed("duplicate")).toBe(1);
    expect(await consumed("dead-lettered")).toBe(1);
    const durations = await points("messaging.process.duration", bySubscription);
    expect(durations.reduce((n, p) => n + (p.value as Histogram).count, 0)).toBe(6);
    expect(await counted("messaging.client.sent.messages", topic)).toBe(sentBefore + 4);

    // The outbox: two rows wait, the gauge says so; relayed, it says 0 and the lag is recorded.
    await store.transaction(async (tx) => {
      const sink = createOutboxSink(tx, "test");
      await sink.publish(OrderPlacedEvent, validOrderPlaced("ord-outbox-1"));
      await sink.publish(OrderPlacedEvent, validOrderPlaced("ord-outbox-2"));
    });
    const relay = startOutboxRelay(pubsub, store, { storeName: "metrics-test" });
    afterThisTest(() => relay.stop());
    const backlog = async () =>
      (await points("protoevents.outbox.backlog", { "protoevents.store": "metrics-test" }))[0]
        ?.value;
    await relay.drain();
    expect(await backlog()).toBe(0);
    const lag = await points("protoevents.outbox.lag", topic);
    expect(lag.reduce((n, p) => n + (p.value as Histogram).count, 0)).toBe(2);
    expect(await counted("messaging.client.sent.messages", topic)).toBe(sentBefore + 6);
    await relay.stop();
    await store.transaction(async (tx) => {
      await createOutboxSink(tx, "test").publish(OrderPlacedEvent, validOrderPlaced("ord-left"));
    });
    // With no relay running, the store's own count sees the row that waits.
    expect(await store.outboxBacklog()).toBe(1);
  });

  it("should report the outbox backlog while rows wait", async () => {
    const pubsub = testPubSub("backlog");
    afterThisTest(() => pubsub.close());
    await provision(pubsub, registryWith(fastSubscription("backlog.charge")), { dryRun: false });
    const where = await testStoreLocation("sqlite");
    afterThisTest(() => where.remove());
    const store = await where.open<TestDatabase>(chargesMigrations);
    afterThisTest(() => store.close());
    // A relay that cannot take the outbox lease (another holds it) leaves rows waiting.
    let release = (): void => {};
    const held = store.lockOutbox(() => new Promise<void>((resolve) => (release = resolve)));
    afterThisTest(async () => {
      release();
      await held;
    });
    await store.transaction(async (tx) => {
      const sink = createOutboxSink(tx, "test");
      for (const id of ["a", "b", "c"]) {
        await sink.publish(OrderPlacedEvent, validOrderPlaced(`ord-${id}`));
      }
    });
    const relay = startOutboxRelay(pubsub, store, { storeName: "backlog-test" });
    afterThisTest(() => relay.stop());
    const [point] = await points("protoevents.outbox.backlog", {
      "protoevents.store": "backlog-test",
    });
    expect(point?.value).toBe(3);
  });
});

describe("log correlation", () => {
  it("should put the delivery span's trace and span ids on the handler's log lines", async () => {
    const pubsub = testPubSub("logs");
    afterThisTest(() => pubsub.close());
    const subscription = fastSubscription("logs.charge");
    await provision(pubsub, registryWith(subscription), { dryRun: false });
    const logs = captureLogs("info");
    const consumer = startConsumer(
      pubsub,
      [bindHandler(subscription, (_event, { log }) => log.info("charging"))],
      { logger: logs.logger },
    );
    afterThisTest(() => consumer.close());
    await createEventPublisher(pubsub, { source: "test" }).publish(
      OrderPlacedEvent,
      validOrderPlaced("ord-logs"),
    );
    await waitFor("the handler's line", () => logs.lines().some((l) => l.msg === "charging"));
    await waitFor("its span", () =>
      spans.getFinishedSpans().some((s) => s.name === "logs.charge process"),
    );
    const line = logs.lines().find((l) => l.msg === "charging");
    const span = spans.getFinishedSpans().find((s) => s.name === "logs.charge process");
    expect(line).toMatchObject({
      trace_id: span?.spanContext().traceId,
      span_id: span?.spanContext().spanId,
    });
    // Outside a span, no ids.
    logs.logger.info("idle");
    expect(logs.lines().find((l) => l.msg === "idle")).not.toHaveProperty("trace_id");
  });
});
