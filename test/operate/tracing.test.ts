import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createClient, createRouterTransport } from "@connectrpc/connect";
import { context, SpanKind, trace } from "@opentelemetry/api";
import { AsyncHooksContextManager } from "@opentelemetry/context-async-hooks";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import {
  CatalogViewServiceSubscriptions,
  createCatalogServicePublisher,
  PaymentServiceSubscriptions,
} from "../../generated/checkout/v1/applications_pe.js";
import { OrderService } from "../../generated/checkout/v1/order_api_pb.js";
import { registry } from "../../generated/protoevents_registry.js";
import { bindHandler, startConsumer } from "../../runtime/src/consumer.js";
import { provision } from "../../runtime/src/provision.js";
import {
  activeTraceparent,
  formatTraceparent,
  parseTraceparent,
} from "../../runtime/src/tracing.js";
import { type RunningService, startService } from "../../services/lib/run-service.js";
import { createOrderServiceImpl } from "../../services/order/order-api.js";
import { definition as orderDefinition } from "../../services/order/service.js";
import type { OrderTables } from "../../services/order/tables.js";
import { definition as paymentDefinition } from "../../services/payment/service.js";
import { afterThisTest, cleanUpNow } from "../helpers/cleanup.js";
import { validOrderPlaced } from "../helpers/orders.js";
import { testPubSub } from "../helpers/pubsub.js";
import { waitFor } from "../helpers/wait.js";

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const contextManager = new AsyncHooksContextManager();

beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
  trace.setGlobalTracerProvider(provider);
});

afterAll(async () => {
  trace.disable();
  context.disable();
  await provider.shutdown();
});

afterEach(async () => {
  await cleanUpNow();
  exporter.reset();
});

const spansNamed = (name: string): ReadableSpan[] =>
  exporter.getFinishedSpans().filter((s) => s.name === name);

describe("trace propagation across services", () => {
  it("should link one order's spans from PlaceOrder through payment to the order saga into one trace", async () => {
    const pubsub = testPubSub("trace");
    afterThisTest(() => pubsub.close());
    await provision(pubsub, registry, { dryRun: false });
    const dataDir = await mkdtemp(join(tmpdir(), "protoevents-trace-"));
    afterThisTest(() => rm(dataDir, { recursive: true, force: true }));
    const env = {
      PUBSUB_EMULATOR_HOST: inject("emulatorHost"),
      PUBSUB_PROJECT_ID: pubsub.projectId,
      PROTOEVENTS_DATA_DIR: dataDir,
      PROTOEVENTS_LOG_LEVEL: "silent",
      ORDER_API_PORT: "0",
    };
    const order: RunningService<OrderTables> = await startService(orderDefinition, env);
    afterThisTest(() => order.stop());
    const payment = await startService(paymentDefinition, env);
    afterThisTest(() => payment.stop());

    // The order service prices from its catalog view: feed it the two products.
    const catalog = createCatalogServicePublisher(pubsub);
    const updates = await Promise.all(
      [
        ["sku-keyboard", 7990n],
        ["sku-mouse", 2495n],
      ].map(([productId, amountMinor]) =>
        catalog.publishProductUpdated({
          productId: productId as string,
          version: 1n,
          name: `Product ${productId}`,
          price: { currencyCode: "EUR", amountMinor: amountMinor as bigint },
          active: true,
          updatedAt: timestampFromDate(new Date()),
        }),
      ),
    );
    await waitFor("the catalog view to apply both products", () =>
      updates.every((u) =>
        spansNamed(`${CatalogViewServiceSubscriptions.applyProductUpdated.name} process`).some(
          (s) => s.attributes["cloudevents.event_id"] === u.id,
        ),
      ),
    );

    // The API as its server would run it with HTTP instrumentation: the
    // request handled inside a SERVER span.
    const tracer = trace.getTracer("checkout-api");
    const impl = createOrderServiceImpl({ store: order.context.store, log: order.context.log });
    const client = createClient(
      OrderService,
      createRouterTransport(({ service }) =>
        service(OrderService, {
          ...impl,
          placeOrder: (request, handlerContext) =>
            tracer.startActiveSpan("PlaceOrder", { kind: SpanKind.SERVER }, async (span) => {
              try {
                return await impl.placeOrder(request, handlerContext);
              } finally {
                span.end();
              }
            }),
        }),
      ),
    );
    const placed = validOrderPlaced();
    const { order: created } = await client.placeOrder({
      customerId: placed.customerId,
      customerEmail: placed.customerEmail,
      lines: [
        { productId: "sku-keyboard", quantity: 1 },
        { productId: "sku-mouse", quantity: 2 },
      ],
      shippingAddress: placed.shippingAddress,
      paymentToken: placed.paymentToken,
    });
    const orderId = created?.orderId ?? "";
    expect(orderId).toMatch(/^ord_/);

    const sagaSpan = `order.on-payment-processed process`;
    await waitFor("the saga to handle the order's PaymentProcessed", () =>
      spansNamed(sagaSpan).some((s) => s.attributes["cloudevents.event_subject"] === orderId),
    );
    const [root] = spansNamed("PlaceOrder");
    const charge = spansNamed(`${PaymentServiceSubscriptions.chargeOrder.name} process`).find(
      (s) => s.attributes["cloudevents.event_subject"] === orderId,
    );
    const saga = spansNamed(sagaSpan).find(
      (s) => s.attributes["cloudevents.event_subject"] === orderId,
    );
    expect(root).toBeDefined();
    expect(charge).toBeDefined();
    expect(saga).toBeDefined();
    const traceId = root?.spanContext().traceId;
    expect(charge?.spanContext().traceId).toBe(traceId);
    expect(saga?.spanContext().traceId).toBe(traceId);
    // PlaceOrder writes OrderPlaced to the outbox; the relay sends it in a
    // PRODUCER span continuing PlaceOrder's trace; payment's handler runs in a
    // CONSUMER span under that send, writes PaymentProcessed, whose send is
    // under the handler's span, and the saga's span under that send.
    const sendOf = (topic: string, parent: ReadableSpan | undefined) =>
      spansNamed(`send ${topic}`).find(
        (s) =>
          s.parentSpanContext?.spanId === parent?.spanContext().spanId &&
          s.attributes["cloudevents.event_subject"] === orderId,
      );
    const sendPlaced = sendOf("checkout.order-placed", root);
    expect(sendPlaced?.kind).toBe(SpanKind.PRODUCER);
    expect(charge?.parentSpanContext?.spanId).toBe(sendPlaced?.spanContext().spanId);
    expect(charge?.parentSpanContext?.isRemote).toBe(true);
    const sendProcessed = sendOf("checkout.payment-processed", charge);
    expect(sendProcessed).toBeDefined();
    expect(saga?.parentSpanContext?.spanId).toBe(sendProcessed?.spanContext().spanId);
    expect(sendPlaced?.attributes).toMatchObject({
      "messaging.system": "gcp_pubsub",
      "messaging.operation.type": "send",
      "messaging.operation.name": "send",
      "messaging.destination.name": "checkout.order-placed",
      "messaging.message.id": expect.stringMatching(/^\d+$/),
      "cloudevents.event_type": "checkout.v1.OrderPlaced",
      "cloudevents.event_subject": orderId,
    });
    expect(sendPlaced?.instrumentationScope.name).toBe("protoevents");
    expect(charge?.kind).toBe(SpanKind.CONSUMER);
    expect(charge?.instrumentationScope.name).toBe("protoevents");
    expect(charge?.attributes).toMatchObject({
      "messaging.system": "gcp_pubsub",
      "messaging.operation.type": "process",
      "messaging.destination.name": "checkout.order-placed",
      "messaging.destination.subscription.name": "payment.charge-order",
      "cloudevents.event_type": "checkout.v1.OrderPlaced",
      "cloudevents.event_source": "order",
      "cloudevents.event_subject": orderId,
      "protoevents.delivery.result": "acked",
    });
    expect(saga?.attributes).toMatchObject({
      "cloudevents.event_type": "checkout.v1.PaymentProcessed",
      "cloudevents.event_source": "payment",
      "protoevents.delivery.result": "acked",
    });
    // Nothing else of this order started a trace of its own.
    const ofOrder = exporter
      .getFinishedSpans()
      .filter((s) => s.attributes["cloudevents.event_subject"] === orderId);
    expect(new Set(ofOrder.map((s) => s.spanContext().traceId))).toEqual(new Set([traceId]));
  });

  it("should mark the span as an error when the handler fails, and send under the active span", async () => {
    const pubsub = testPubSub("trace-error");
    afterThisTest(() => pubsub.close());
    await provision(pubsub, registry, { dryRun: false });
    const seen: Array<string | undefined> = [];
    const consumer = startConsumer(pubsub, [
      bindHandler(PaymentServiceSubscriptions.chargeOrder, (_event, { envelope }) => {
        seen.push(envelope.traceparent);
        // The consumer's span is active in the handler.
        expect(trace.getActiveSpan()?.spanContext().traceId).toBe(
          parseTraceparent(envelope.traceparent)?.traceId,
        );
        throw new Error("gateway down");
      }),
    ]);
    afterThisTest(() => consumer.close());
    const { createOrderSagaServicePublisher } = await import(
      "../../generated/checkout/v1/applications_pe.js"
    );
    const tracer = trace.getTracer("test");
    let traceparent: string | undefined;
    await tracer.startActiveSpan("checkout", async (span) => {
      traceparent = activeTraceparent();
      await createOrderSagaServicePublisher(pubsub).publishOrderPlaced(validOrderPlaced("ord-t"));
      span.end();
    });
    const [checkoutSpan] = spansNamed("checkout");
    expect(checkoutSpan).toBeDefined();
    expect(traceparent).toBe(formatTraceparent((checkoutSpan as ReadableSpan).spanContext()));
    await waitFor(
      "a failed delivery span",
      () => spansNamed("payment.charge-order process").length > 0,
    );
    // The event carries the context of its send span, child of "checkout".
    const [send] = spansNamed("send checkout.order-placed");
    expect(send?.parentSpanContext?.spanId).toBe(checkoutSpan?.spanContext().spanId);
    expect(seen[0]).toBe(formatTraceparent((send as ReadableSpan).spanContext()));
    const [failed] = spansNamed("payment.charge-order process");
    expect(failed?.status).toMatchObject({ code: 2, message: "[handler_failed] gateway down" });
    expect(failed?.attributes["error.type"]).toBe("handler_failed");
    expect(failed?.attributes["protoevents.delivery.result"]).toBe("nacked");
    expect(failed?.events.map((e) => e.name)).toContain("exception");
  });
});

describe("traceparent values", () => {
  it("should parse what it formats and refuse invalid values", () => {
    const value = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const parsed = parseTraceparent(value);
    expect(parsed).toEqual({
      traceId: "0af7651916cd43dd8448eb211c80319c",
      spanId: "b7ad6b7169203331",
      traceFlags: 1,
      isRemote: true,
    });
    expect(formatTraceparent(parsed as NonNullable<typeof parsed>)).toBe(value);
    // A future version may append fields; version 00 may not.
    expect(parseTraceparent(`01-${value.slice(3)}-extra`)?.spanId).toBe("b7ad6b7169203331");
    for (const bad of [
      undefined,
      "",
      `${value}-extra`,
      `ff-${value.slice(3)}`,
      "00-00000000000000000000000000000000-b7ad6b7169203331-01",
      "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
      "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01",
    ]) {
      expect(parseTraceparent(bad), String(bad)).toBeUndefined();
    }
  });
});
