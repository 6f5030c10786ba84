import { create } from "@bufbuild/protobuf";
import type { PubSub } from "@google-cloud/pubsub";
import { describe, expect, it } from "vitest";
import { AddressSchema } from "../../generated/checkout/v1/common_pb.js";
import { OrderPlacedSchema } from "../../generated/checkout/v1/order_events_pb.js";
import {
  encodeOrderPlaced,
  OrderPlacedEvent,
  type OrderPlacedInput,
} from "../../generated/checkout/v1/order_events_pe.js";
import {
  bindHandler,
  type Consumer,
  type DeliveryOutcome,
  startConsumer,
} from "../../runtime/src/consumer.js";
import { createOutboxSink, startOutboxRelay } from "../../runtime/src/outbox.js";
import { provision } from "../../runtime/src/provision.js";
import { createEventPublisher } from "../../runtime/src/publisher.js";
import { activeTraceparent } from "../../runtime/src/tracing.js";
import { afterThisTest } from "../helpers/cleanup.js";
import { captureLogs } from "../helpers/logs.js";
import { validOrderPlaced } from "../helpers/orders.js";
import { testPubSub } from "../helpers/pubsub.js";
import { testStoreLocation } from "../helpers/stores.js";
import { fastSubscription, registryWith } from "../helpers/test-contracts.js";
import { waitFor } from "../helpers/wait.js";

/** Personal data of the test orders: none of it may ever reach a log line. */
const PII = ["jane.doe@example.com", "tok_secret_4242", "Jane Doe", "221B Baker Street", "NW1 6XE"];

function order(orderId: string): OrderPlacedInput {
  const base = validOrderPlaced(orderId);
  return {
    ...base,
    customerEmail: "jane.doe@example.com",
    paymentToken: "tok_secret_4242",
    shippingAddress: create(AddressSchema, {
      recipientName: "Jane Doe",
      line1: "221B Baker Street",
      city: "London",
      postalCode: "NW1 6XE",
      countryCode: "GB",
    }),
  };
}

async function provisioned(name: string): Promise<{ pubsub: PubSub; name: string }> {
  const pubsub = testPubSub("logs");
  afterThisTest(() => pubsub.close());
  await provision(pubsub, registryWith(fastSubscription(name)), { dryRun: false });
  return { pubsub, name };
}

function track(consumer: Consumer): Consumer {
  afterThisTest(() => consumer.close());
  return consumer;
}

describe("structured per-message logs", () => {
  it("should log publish, receive, ack, nack and dead-letter with event id, type, subscription and subject, and never a pii field", async () => {
    const { pubsub, name } = await provisioned("test.logs");
    const { logger, text, lines } = captureLogs("debug");
    const outcomes: DeliveryOutcome[] = [];
    let failOnce = true;
    track(
      startConsumer(
        pubsub,
        [
          bindHandler(fastSubscription(name), (event, context) => {
            if (event.orderId === "ord-flaky" && failOnce) {
              failOnce = false;
              throw new Error("payment gateway timed out");
            }
            // What a handler logs through its context carries the event's fields too.
            context.log.info({ op: "charge" }, "charged");
          }),
        ],
        { logger, onDelivery: (o) => outcomes.push(o) },
      ),
    );

    // Straight to Pub/Sub.
    const publisher = createEventPublisher(pubsub, { source: "order", logger });
    const ok = await publisher.publish(OrderPlacedEvent, order("ord-log"));
    const flaky = await publisher.publish(OrderPlacedEvent, order("ord-flaky"));
    // Through a store's outbox and its relay.
    const location = await testStoreLocation("sqlite");
    afterThisTest(() => location.remove());
    const store = await location.open();
    afterThisTest(() => store.close());
    const relay = startOutboxRelay(pubsub, store, { logger });
    afterThisTest(() => relay.stop());
    const outboxed = await store.transaction((tx) =>
      createOutboxSink(tx, "order").publish(OrderPlacedEvent, order("ord-outbox")),
    );
    // An event that breaks a field rule, full of personal data: dead-lettered.
    const invalid = encodeOrderPlaced(
      create(OrderPlacedSchema, { ...order("ord-invalid"), items: [] }),
      {
        source: "raw",
      },
    );
    await pubsub.topic("checkout.order-placed").publishMessage(invalid);

    await waitFor(
      "every delivery to end",
      () =>
        outcomes.filter((o) => o.result === "acked").length === 3 &&
        outcomes.some((o) => o.result === "nacked") &&
        outcomes.some((o) => o.result === "dead-lettered"),
      45_000,
    );
    await relay.drain();
    logger.flush();

    const all = lines();
    const of = (op: string, eventId: string) =>
      all.filter((l) => l.op === op && l.eventId === eventId);
    const event = { eventType: "checkout.v1.OrderPlaced" };

    expect(of("publish", ok.id)).toEqual([
      expect.objectContaining({
        level: 20,
        msg: "published",
        ...event,
        topic: "checkout.order-placed",
        subject: "ord-log",
        messageId: expect.any(String),
      }),
    ]);
    expect(of("publish", outboxed.id)).toEqual([
      expect.objectContaining({
        level: 20,
        ...event,
        topic: "checkout.order-placed",
        subject: "ord-outbox",
        outboxRow: expect.any(Number),
      }),
    ]);
    for (const [id, subject] of [
      [ok.id, "ord-log"],
      [outboxed.id, "ord-outbox"],
    ] as const) {
      expect(of("receive", id)).toEqual([
        expect.objectContaining({
          level: 20,
          subscription: name,
          ...event,
          subject,
          deliveryAttempt: 1,
        }),
      ]);
      expect(of("ack", id)).toEqual([
        expect.objectContaining({
          level: 20,
          result: "acked",
          subscription: name,
          ...event,
          subject,
        }),
      ]);
      expect(of("charge", id)).toEqual([
        expect.objectContaining({ level: 30, msg: "charged", subscription: name, subject }),
      ]);
    }
    expect(of("nack", flaky.id)).toEqual([
      expect.objectContaining({
        level: 40,
        msg: "handler failed; nacked for redelivery",
        subscription: name,
        ...event,
        subject: "ord-flaky",
        deliveryAttempt: 1,
        err: expect.objectContaining({
          code: "handler_failed",
          rawMessage: "payment gateway timed out",
        }),
      }),
    ]);
    expect(of("receive", flaky.id).map((l) => l.deliveryAttempt)).toEqual([1, 2]);
    expect(of("ack", flaky.id)).toHaveLength(1);
    const invalidId = invalid.attributes["ce-id"] as string;
    expect(of("dead-letter", invalidId)).toEqual([
      expect.objectContaining({
        level: 40,
        msg: "dead-lettered",
        subscription: name,
        ...event,
        subject: "ord-invalid",
        reason: "validation_failed",
        detail: expect.stringContaining("items must have at least 1 item (min_items)"),
        deadLetterTopic: `${name}.dead-letter`,
      }),
    ]);

    const logged = text();
    for (const value of PII) {
      expect(logged, `the log must not contain ${value}`).not.toContain(value);
    }
  });

  it("should write no per-message line below debug and no traceparent without a tracer provider", async () => {
    const { pubsub, name } = await provisioned("test.quiet");
    const { logger, lines } = captureLogs("info");
    const traceparents: Array<string | undefined> = [];
    const outcomes: DeliveryOutcome[] = [];
    track(
      startConsumer(
        pubsub,
        [
          bindHandler(fastSubscription(name), (_event, { envelope }) => {
            traceparents.push(envelope.traceparent);
          }),
        ],
        { logger, onDelivery: (o) => outcomes.push(o) },
      ),
    );
    const published = await createEventPublisher(pubsub, { source: "order", logger }).publish(
      OrderPlacedEvent,
      order("ord-quiet"),
    );
    await waitFor("the ack", () => outcomes.some((o) => o.eventId === published.id));
    logger.flush();
    expect(lines().filter((l) => l.eventId === published.id)).toEqual([]);
    expect(lines().map((l) => l.msg)).toEqual(["consuming"]);
    // No tracer provider is registered in this file: nothing is propagated.
    expect(activeTraceparent()).toBeUndefined();
    expect(traceparents).toEqual([undefined]);
  });
});
