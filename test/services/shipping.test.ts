import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { PubSub } from "@google-cloud/pubsub";
import { describe, expect, inject, it } from "vitest";
import {
  createOrderSagaServicePublisher,
  type OrderSagaServicePublisher,
  subscribeNotificationServiceAtLeastOnce,
} from "../../generated/checkout/v1/applications_pe.js";
import type { OrderConfirmedInput } from "../../generated/checkout/v1/order_events_pe.js";
import type { OrderReadyForShippingValid } from "../../generated/checkout/v1/shipping_events_pe.js";
import { registry } from "../../generated/protoevents_registry.js";
import { provision } from "../../runtime/src/index.js";
import { orderScopedId } from "../../services/lib/order-scoped-id.js";
import { type RunningService, startService } from "../../services/lib/run-service.js";
import { definition, type ShippingTables } from "../../services/shipping/service.js";
import { afterThisTest, tempDir } from "../helpers/cleanup.js";
import { testPubSub } from "../helpers/pubsub.js";
import { waitFor } from "../helpers/wait.js";

interface Harness {
  readonly pubsub: PubSub;
  readonly service: RunningService<ShippingTables>;
  readonly saga: OrderSagaServicePublisher;
  /** OrderReadyForShipping as notification receives it. */
  readonly ready: OrderReadyForShippingValid[];
}

/**
 * The shipping service running in-process on a fresh emulator project and
 * SQLite file, with notification's shipping-notice subscription observed.
 */
async function startShipping(): Promise<Harness> {
  const pubsub = testPubSub("shipping");
  afterThisTest(() => pubsub.close());
  await provision(pubsub, registry, { dryRun: false });
  const dataDir = await tempDir("shipping-service");
  const service = await startService(definition, {
    PUBSUB_EMULATOR_HOST: inject("emulatorHost"),
    PUBSUB_PROJECT_ID: pubsub.projectId,
    PROTOEVENTS_DATA_DIR: dataDir,
    PROTOEVENTS_LOG_LEVEL: "silent",
  });
  afterThisTest(() => service.stop());
  const ready: OrderReadyForShippingValid[] = [];
  const observer = subscribeNotificationServiceAtLeastOnce(pubsub, {
    sendConfirmation: () => {},
    sendCancellation: () => {},
    sendShippingNotice: (event) => {
      ready.push(event);
    },
  });
  afterThisTest(() => observer.close());
  return { pubsub, service, saga: createOrderSagaServicePublisher(pubsub), ready };
}

/** Resolve once the service committed its handling of event `eventId`. */
async function handled(harness: Harness, eventId: string): Promise<void> {
  await waitFor(`shipping.prepare-shipment to handle ${eventId}`, async () => {
    const claim = await harness.service.context.store.db
      .selectFrom("protoevents_inbox")
      .select("event_id")
      .where("subscription", "=", "shipping.prepare-shipment")
      .where("event_id", "=", eventId)
      .executeTakeFirst();
    return claim !== undefined;
  });
}

function confirmed(orderId: string): OrderConfirmedInput {
  return {
    orderId,
    customerId: "cust-42",
    customerEmail: "ada@example.com",
    total: { currencyCode: "EUR", amountMinor: 12_980n },
    paymentId: orderScopedId("pay", orderId),
    reservationId: orderScopedId("res", orderId),
    items: [
      {
        productId: "sku-keyboard",
        productName: "Keyboard",
        quantity: 1,
        unitPrice: { currencyCode: "EUR", amountMinor: 7_990n },
      },
      {
        productId: "sku-mouse",
        quantity: 2,
        unitPrice: { currencyCode: "EUR", amountMinor: 2_495n },
      },
    ],
    shippingAddress: {
      recipientName: "Ada Lovelace",
      line1: "12 St James's Square",
      city: "London",
      postalCode: "SW1Y 4JH",
      countryCode: "GB",
    },
    confirmedAt: timestampFromDate(new Date("2026-11-26T10:00:02Z")),
  };
}

describe("shipping service", () => {
  it("should publish one OrderReadyForShipping with what the notice needs when an order is confirmed", async () => {
    const harness = await startShipping();
    await harness.saga.publishOrderConfirmed(confirmed("ord-ship-1"));
    await waitFor("OrderReadyForShipping", () => harness.ready.length === 1);
    const [event] = harness.ready;
    expect(event?.orderId).toBe("ord-ship-1");
    expect(event?.shipmentId).toBe("shp_ord-ship-1");
    expect(event?.customerId).toBe("cust-42");
    expect(event?.customerEmail).toBe("ada@example.com");
    expect(event?.shippingAddress.recipientName).toBe("Ada Lovelace");
    expect(event?.shippingAddress.postalCode).toBe("SW1Y 4JH");
    expect(event?.items.map((i) => [i.productId, i.productName, i.quantity])).toEqual([
      ["sku-keyboard", "Keyboard", 1],
      ["sku-mouse", "", 2],
    ]);
    expect(event?.readyAt.seconds).toBeGreaterThan(0n);

    const row = await harness.service.context.store.db
      .selectFrom("shipments")
      .selectAll()
      .where("order_id", "=", "ord-ship-1")
      .executeTakeFirstOrThrow();
    expect(row.shipment_id).toBe("shp_ord-ship-1");
    expect(row.customer_id).toBe("cust-42");
    expect(JSON.parse(row.address)).toMatchObject({ city: "London", countryCode: "GB" });
    expect(JSON.parse(row.items)).toEqual([
      {
        productId: "sku-keyboard",
        productName: "Keyboard",
        quantity: 1,
        unitPrice: { currencyCode: "EUR", amountMinor: "7990" },
      },
      {
        productId: "sku-mouse",
        quantity: 2,
        unitPrice: { currencyCode: "EUR", amountMinor: "2495" },
      },
    ]);
  });

  it("should prepare one shipment when OrderConfirmed arrives twice with different ce-ids", async () => {
    const harness = await startShipping();
    const first = await harness.saga.publishOrderConfirmed(confirmed("ord-ship-twice"));
    const second = await harness.saga.publishOrderConfirmed(confirmed("ord-ship-twice"));
    expect(second.id).not.toBe(first.id);
    await handled(harness, first.id);
    await handled(harness, second.id);
    await harness.service.relay.drain();
    await waitFor("OrderReadyForShipping", () => harness.ready.length === 1);
    const outbox = await harness.service.context.store.db
      .selectFrom("protoevents_outbox")
      .select("event_type")
      .execute();
    expect(outbox).toEqual([{ event_type: "checkout.v1.OrderReadyForShipping" }]);
    const shipments = await harness.service.context.store.db
      .selectFrom("shipments")
      .select("order_id")
      .execute();
    expect(shipments).toEqual([{ order_id: "ord-ship-twice" }]);
  });

  it("should prepare one shipment per order when several orders are confirmed", async () => {
    const harness = await startShipping();
    const orderIds = ["ord-ship-a", "ord-ship-b", "ord-ship-c"];
    await Promise.all(orderIds.map((id) => harness.saga.publishOrderConfirmed(confirmed(id))));
    await waitFor("three notices", () => harness.ready.length === 3);
    expect(harness.ready.map((e) => e.shipmentId).sort()).toEqual(
      orderIds.map((id) => `shp_${id}`),
    );
  });

  it("should publish a shipment id within the contract's 64 characters when the order id is 64 long", async () => {
    const harness = await startShipping();
    const orderId = `ord-${"9".repeat(60)}`;
    await harness.saga.publishOrderConfirmed(confirmed(orderId));
    await waitFor("OrderReadyForShipping", () => harness.ready.length === 1);
    expect(harness.ready[0]?.shipmentId).toMatch(/^shp_[0-9a-f]{60}$/);
  });
});
