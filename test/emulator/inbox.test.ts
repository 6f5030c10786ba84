import { create } from "@bufbuild/protobuf";
import type { PubSub } from "@google-cloud/pubsub";
import { describe, expect, it } from "vitest";
import {
  createOrderSagaServicePublisher,
  orderSagaServiceOutbox,
  paymentServiceOutbox,
  subscribeOrderSagaServiceAtLeastOnce,
  subscribePaymentService,
} from "../../generated/checkout/v1/applications_pe.js";
import { OrderPlacedSchema } from "../../generated/checkout/v1/order_events_pb.js";
import { encodeOrderPlaced } from "../../generated/checkout/v1/order_events_pe.js";
import { registry } from "../../generated/protoevents_registry.js";
import {
  bindHandler,
  type DeliveryOutcome,
  startConsumer,
  type TransactionContext,
} from "../../runtime/src/consumer.js";
import { Code } from "../../runtime/src/errors.js";
import { createLogger } from "../../runtime/src/logger.js";
import { startOutboxRelay } from "../../runtime/src/outbox.js";
import { provision } from "../../runtime/src/provision.js";
import type { Store, StoreDialect } from "../../runtime/src/store/store.js";
import { afterThisTest } from "../helpers/cleanup.js";
import { validOrderPlaced } from "../helpers/orders.js";
import { testPubSub } from "../helpers/pubsub.js";
import { type TestStoreLocation, testStoreLocation } from "../helpers/stores.js";
import { startTcpProxy } from "../helpers/tcp-proxy.js";
import {
  chargesMigrations,
  fastSubscription,
  registryWith,
  type TestDatabase,
} from "../helpers/test-contracts.js";
import { waitFor } from "../helpers/wait.js";

const quiet = createLogger({ test: "inbox" });
quiet.level = "silent";

async function location(dialect: StoreDialect): Promise<TestStoreLocation> {
  const where = await testStoreLocation(dialect);
  afterThisTest(() => where.remove());
  return where;
}

async function opened(
  where: TestStoreLocation,
  connectionString?: string,
): Promise<Store<TestDatabase>> {
  const store = await where.open<TestDatabase>(chargesMigrations, connectionString);
  afterThisTest(() => store.close());
  return store;
}

async function provisioned(...names: string[]): Promise<PubSub> {
  const pubsub = testPubSub("inbox");
  afterThisTest(() => pubsub.close());
  await provision(pubsub, registryWith(...names.map((n) => fastSubscription(n))), {
    dryRun: false,
  });
  return pubsub;
}

async function charges(
  store: Store<TestDatabase>,
): Promise<Array<{ event_id: string; order_id: string }>> {
  return store.db
    .selectFrom("charges")
    .select(["event_id", "order_id"])
    .orderBy("order_id")
    .execute();
}

describe.each(["sqlite", "postgres"] as const)(
  "exactly-once effects with the %s inbox",
  (dialect) => {
    it("should run the handler once when one event is published three times with one ce-id", async () => {
      const store = await opened(await location(dialect));
      const name = `inbox.${dialect}.three-times`;
      const pubsub = await provisioned(name);
      const outcomes: DeliveryOutcome[] = [];
      const consumer = startConsumer(
        pubsub,
        [
          bindHandler(
            fastSubscription(name),
            async (event, context: TransactionContext<TestDatabase>) => {
              await context.tx.db
                .insertInto("charges")
                .values({ event_id: "x", order_id: event.orderId, worker: "w" })
                .execute();
            },
          ),
        ],
        { store, onDelivery: (o) => outcomes.push(o) },
      );
      afterThisTest(() => consumer.close());
      const message = encodeOrderPlaced(create(OrderPlacedSchema, validOrderPlaced("ord-3x")), {
        source: "test",
        id: "evt-three-times",
      });
      const topic = pubsub.topic("checkout.order-placed");
      for (let i = 0; i < 3; i++) {
        await topic.publishMessage(message);
      }
      await waitFor("three deliveries", () => outcomes.length === 3);
      expect(outcomes.map((o) => o.result).sort()).toEqual(["acked", "duplicate", "duplicate"]);
      expect(await charges(store)).toEqual([{ event_id: "x", order_id: "ord-3x" }]);
    });

    it("should roll back a failed handler's writes and outbox rows and produce them once on retry", async () => {
      const store = await opened(await location(dialect));
      const name = `inbox.${dialect}.fails-once`;
      const pubsub = await provisioned(name);
      let attempts = 0;
      const outcomes: DeliveryOutcome[] = [];
      const consumer = startConsumer(
        pubsub,
        [
          bindHandler(
            fastSubscription(name),
            async (event, context: TransactionContext<TestDatabase>) => {
              attempts++;
              await context.tx.db
                .insertInto("charges")
                .values({ event_id: "c", order_id: event.orderId, worker: String(attempts) })
                .execute();
              await paymentServiceOutbox(context.tx).publishPaymentProcessed({
                orderId: event.orderId,
                paymentId: `pay-${event.orderId}`,
                amount: event.total ?? { currencyCode: "EUR", amountMinor: 0n },
                processedAt: { seconds: 1_700_000_000n },
              });
              if (attempts === 1) {
                throw new Error("gateway timeout after the write");
              }
            },
          ),
        ],
        { store, onDelivery: (o) => outcomes.push(o) },
      );
      afterThisTest(() => consumer.close());
      await createOrderSagaServicePublisher(pubsub).publishOrderPlaced(
        validOrderPlaced("ord-retry"),
      );
      await waitFor("the retry to succeed", () => outcomes.some((o) => o.result === "acked"));
      expect(outcomes.map((o) => o.result)).toEqual(["nacked", "acked"]);
      expect(outcomes[0]?.error?.rawMessage).toBe("gateway timeout after the write");
      expect(await charges(store)).toEqual([{ event_id: "c", order_id: "ord-retry" }]);
      const pending = await store.pendingOutbox(10);
      expect(pending.map((row) => [row.eventType, row.topic, row.orderingKey])).toEqual([
        ["checkout.v1.PaymentProcessed", "checkout.payment-processed", "ord-retry"],
      ]);
    });
  },
);

describe("generated consumer with a store", () => {
  it("should hand handlers the transaction and an outbox publisher, and relay what committed once", async () => {
    const store = await opened(await location("sqlite"));
    const pubsub = testPubSub("generated-store");
    afterThisTest(() => pubsub.close());
    await provision(pubsub, registry, { dryRun: false });
    const relay = startOutboxRelay(pubsub, store, { pollIntervalMs: 100, logger: quiet });
    afterThisTest(() => relay.stop());
    const charged: string[] = [];
    const payments = subscribePaymentService(
      pubsub,
      {
        async chargeOrder(event, context) {
          // context.tx.db is typed with the store's tables.
          await context.tx.db
            .insertInto("charges")
            .values({ event_id: context.envelope.id, order_id: event.orderId, worker: "payment" })
            .execute();
          const result = await context.publisher.publishPaymentProcessed({
            orderId: event.orderId,
            paymentId: `pay-${event.orderId}`,
            amount: event.total,
            processedAt: { seconds: 1_700_000_000n },
          });
          expect(result.messageId).toBeUndefined();
          charged.push(event.orderId);
        },
        refundOrder() {},
      },
      { store, logger: quiet },
    );
    afterThisTest(() => payments.close());
    const processed: string[] = [];
    const saga = subscribeOrderSagaServiceAtLeastOnce(
      pubsub,
      {
        onPaymentProcessed(event, context) {
          processed.push(`${event.orderId}/${context.envelope.source}`);
        },
        onPaymentFailed() {},
        onPaymentRefunded() {},
        onInventoryReserved() {},
        onInventoryReservationFailed() {},
        onInventoryReleased() {},
      },
      { logger: quiet },
    );
    afterThisTest(() => saga.close());

    const message = encodeOrderPlaced(create(OrderPlacedSchema, validOrderPlaced("ord-gen")), {
      source: "order",
      id: "evt-generated",
    });
    const topic = pubsub.topic("checkout.order-placed");
    await Promise.all([topic.publishMessage(message), topic.publishMessage(message)]);

    await waitFor("the relayed PaymentProcessed", () => processed.length > 0);
    await relay.drain();
    expect(charged).toEqual(["ord-gen"]);
    expect(await charges(store)).toEqual([{ event_id: "evt-generated", order_id: "ord-gen" }]);
    expect(processed).toEqual(["ord-gen/payment"]);
    expect(await store.pendingOutbox(10)).toEqual([]);
  });
});

describe("store failures", () => {
  it("should nack while PostgreSQL refuses connections and process every event once after it returns", async () => {
    const proxy = await startTcpProxy(5432);
    afterThisTest(() => proxy.down());
    const where = await location("postgres");
    const store = await opened(where, `postgres://postgres@127.0.0.1:${proxy.port}/test`);
    const reader = await opened(where); // straight to PostgreSQL, for the assertions
    const name = "inbox.postgres.store-down";
    const pubsub = await provisioned(name);
    const outcomes: DeliveryOutcome[] = [];
    const consumer = startConsumer(
      pubsub,
      [
        bindHandler(
          fastSubscription(name),
          async (event, context: TransactionContext<TestDatabase>) => {
            await context.tx.db
              .insertInto("charges")
              .values({ event_id: "e", order_id: event.orderId, worker: "w" })
              .execute();
          },
        ),
      ],
      // Every failed delivery logs at error level; the test reads outcomes instead.
      { store, onDelivery: (o) => outcomes.push(o), logger: quiet },
    );
    afterThisTest(() => consumer.close());

    await proxy.down();
    const publisher = createOrderSagaServicePublisher(pubsub);
    const orderIds = Array.from({ length: 20 }, (_, i) => `ord-down-${String(i).padStart(2, "0")}`);
    await Promise.all(orderIds.map((id) => publisher.publishOrderPlaced(validOrderPlaced(id))));
    await waitFor("every event to be tried while the store is down", () => {
      const tried = new Set(outcomes.map((o) => o.eventId));
      return tried.size === 20;
    });
    expect(outcomes.every((o) => o.result === "nacked")).toBe(true);
    expect(outcomes.every((o) => o.error?.code === Code.StoreUnavailable)).toBe(true);
    expect(await charges(reader)).toEqual([]);

    await proxy.up();
    await waitFor(
      "every event to be processed after the store returned",
      () => {
        const acked = new Set(outcomes.filter((o) => o.result === "acked").map((o) => o.eventId));
        return acked.size === 20;
      },
      45_000,
    );
    const rows = await charges(reader);
    expect(rows.map((r) => r.order_id)).toEqual(orderIds);
  });
});

describe("outbox relay", () => {
  it("should publish rows an earlier process committed and never relayed", async () => {
    const where = await location("sqlite");
    const name = "outbox.relay.restart";
    const pubsub = await provisioned(name);
    // The first process commits two events, then dies before its relay ran.
    const first = await where.open<TestDatabase>(chargesMigrations);
    const ids: string[] = [];
    for (const orderId of ["ord-r1", "ord-r2"]) {
      await first.transaction(async (tx) => {
        ids.push(
          (await orderSagaServiceOutbox(tx).publishOrderPlaced(validOrderPlaced(orderId))).id,
        );
      });
    }
    await first.close();

    const received: string[] = [];
    const consumer = startConsumer(pubsub, [
      bindHandler(fastSubscription(name), (_event, context) => {
        received.push(context.envelope.id);
      }),
    ]);
    afterThisTest(() => consumer.close());
    const second = await opened(where);
    const relay = startOutboxRelay(pubsub, second, { logger: quiet });
    afterThisTest(() => relay.stop());
    await waitFor("both events", () => received.length === 2);
    expect(received.sort()).toEqual(ids.sort());
  });

  it("should publish committed outbox rows and mark them sent", async () => {
    const store = await opened(await location("sqlite"));
    const name = "outbox.relay.simple";
    const pubsub = await provisioned(name);
    const relay = startOutboxRelay(pubsub, store, { pollIntervalMs: 50 });
    afterThisTest(() => relay.stop());
    const received: string[] = [];
    const consumer = startConsumer(pubsub, [
      bindHandler(fastSubscription(name), (event, context) => {
        received.push(`${event.orderId}:${context.envelope.id}`);
      }),
    ]);
    afterThisTest(() => consumer.close());
    const ids: string[] = [];
    for (const orderId of ["ord-a", "ord-b", "ord-c"]) {
      await store.transaction(async (tx) => {
        const result = await orderSagaServiceOutbox(tx).publishOrderPlaced(
          validOrderPlaced(orderId),
        );
        expect(result.messageId).toBeUndefined();
        ids.push(`${orderId}:${result.id}`);
      });
    }
    await waitFor("three relayed events", () => received.length === 3);
    expect(received.sort()).toEqual(ids.sort());
    await relay.drain();
    expect(await store.pendingOutbox(10)).toEqual([]);
  });
});
