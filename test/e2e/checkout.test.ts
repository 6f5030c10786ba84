import { join } from "node:path";
import { fromBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Message } from "@google-cloud/pubsub";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createCatalogServicePublisher } from "../../generated/checkout/v1/applications_pe.js";
import {
  NotificationKind,
  NotificationSentSchema,
} from "../../generated/checkout/v1/notification_events_pb.js";
import type { PlaceOrderRequestSchema } from "../../generated/checkout/v1/order_api_pb.js";
import { OrderStatus, StepStatus } from "../../generated/checkout/v1/order_api_pb.js";
import { OrderPlacedSchema } from "../../generated/checkout/v1/order_events_pb.js";

/** A PlaceOrder request as an init object (no message instance). */
type PlaceOrderInit = Exclude<
  MessageInitShape<typeof PlaceOrderRequestSchema>,
  { $typeName: string }
>;

import { type Checkout, startCheckout } from "../helpers/checkout.js";
import { waitFor } from "../helpers/wait.js";

/**
 * The checkout end to end: every service its own process, on the real
 * emulator, driven through the order service's Connect API.
 */
let checkout: Checkout;

beforeAll(async () => {
  checkout = await startCheckout(inject("emulatorHost"));
}, 180_000);

afterAll(async () => {
  await checkout?.close();
});

let counter = 0;
function request(overrides: PlaceOrderInit = {}): PlaceOrderInit {
  counter++;
  return {
    customerId: `cust-${counter}`,
    customerEmail: `customer${counter}@example.com`,
    lines: [
      { productId: "sku-keyboard", quantity: 1 },
      { productId: "sku-mouse", quantity: 2 },
    ],
    shippingAddress: {
      recipientName: "Ada Lovelace",
      line1: "12 St James's Square",
      city: "London",
      postalCode: "SW1Y 4JH",
      countryCode: "GB",
    },
    paymentToken: "tok_visa_4242",
    ...overrides,
  };
}

/** Wait until the order is confirmed or cancelled; returns its final state. */
async function finalState(orderId: string) {
  let order = (await checkout.orders.getOrder({ orderId })).order;
  const deadline = Date.now() + 60_000;
  while (order?.status === OrderStatus.PLACED) {
    if (Date.now() > deadline) {
      throw new Error(`order ${orderId} still placed after 60 s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    order = (await checkout.orders.getOrder({ orderId })).order;
  }
  return order;
}

/** Poll the order's history until `check` passes. */
async function historyUntil(
  orderId: string,
  check: (types: string[]) => boolean,
): Promise<string[]> {
  let types: string[] = [];
  const deadline = Date.now() + 60_000;
  for (;;) {
    const { entries } = await checkout.orders.getOrderHistory({ orderId });
    types = entries.map((e) => e.eventType.replace("checkout.v1.", ""));
    if (check(types) || Date.now() > deadline) {
      return types;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function mailFor(orderId: string, kind: string): Promise<string | undefined> {
  let mail: string | undefined;
  const deadline = Date.now() + 60_000;
  while (mail === undefined && Date.now() < deadline) {
    mail = [...(await checkout.mails()).entries()].find(
      ([file]) => file === `${orderId}-${kind}.eml`,
    )?.[1];
    if (mail === undefined) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return mail;
}

describe("the checkout, end to end", () => {
  it("should confirm an order, make it ready for shipping and e-mail the confirmation", async () => {
    const placed = await checkout.orders.placeOrder(request());
    const orderId = placed.order?.orderId ?? "";
    expect(orderId).toMatch(/^ord_/);
    expect(placed.order?.total).toMatchObject({ currencyCode: "EUR", amountMinor: 12980n });

    const order = await finalState(orderId);
    expect(order?.status).toBe(OrderStatus.CONFIRMED);
    expect(order?.payment).toBe(StepStatus.SUCCEEDED);
    expect(order?.inventory).toBe(StepStatus.SUCCEEDED);

    const confirmation = await mailFor(orderId, "confirmation");
    expect(confirmation).toMatch(/^To: customer\d+@example\.com$/m);
    expect(confirmation).toContain(orderId);
    expect(await mailFor(orderId, "shipping")).toContain(orderId);

    const { entries } = await checkout.orders.getOrderHistory({ orderId });
    const types = entries.map((e) => e.eventType);
    expect(types[0]).toBe("checkout.v1.OrderPlaced");
    expect(types.slice(1, 3).sort()).toEqual([
      "checkout.v1.InventoryReserved",
      "checkout.v1.PaymentProcessed",
    ]);
    expect(types[3]).toBe("checkout.v1.OrderConfirmed");
    expect(entries.map((e) => Number(e.sequence))).toEqual(entries.map((_, i) => i + 1));
    expect(entries[0]?.payloadJson).not.toContain("@example.com");
  });

  it("should cancel an order whose payment is declined, release its stock and e-mail the cancellation", async () => {
    const before = await stockOf("sku-headset");
    const placed = await checkout.orders.placeOrder(
      request({ paymentToken: "tok_declined", lines: [{ productId: "sku-headset", quantity: 2 }] }),
    );
    const orderId = placed.order?.orderId ?? "";
    const order = await finalState(orderId);
    expect(order?.status).toBe(OrderStatus.CANCELLED);
    expect(order?.payment).toBe(StepStatus.FAILED);
    // Inventory either reserved and then released, or saw the cancellation
    // before the OrderPlaced (its subscriptions race) and never reserved.
    let reservation: string | undefined;
    await waitFor("inventory to settle the cancelled order", () => {
      reservation = rowStatusOf("inventory", "reservations", orderId);
      return reservation === "released" || reservation === "cancelled";
    });
    if (reservation === "released") {
      const types = await historyUntil(orderId, (t) => t.includes("InventoryReleased"));
      expect(types).toContain("InventoryReleased");
      expect(types).not.toContain("PaymentRefunded");
    } else {
      const types = await historyUntil(orderId, () => true);
      expect(types).not.toContain("InventoryReserved");
      expect(types).not.toContain("PaymentRefunded");
    }
    expect(await stockOf("sku-headset")).toBe(before);
    expect(await mailFor(orderId, "cancellation")).toMatch(/declined/i);
  });

  it("should cancel an order that is out of stock and refund its payment", async () => {
    // sku-limited starts with 3: the first order takes them all.
    const first = await checkout.orders.placeOrder(
      request({ lines: [{ productId: "sku-limited", quantity: 3 }] }),
    );
    expect((await finalState(first.order?.orderId ?? ""))?.status).toBe(OrderStatus.CONFIRMED);
    const second = await checkout.orders.placeOrder(
      request({ lines: [{ productId: "sku-limited", quantity: 1 }] }),
    );
    const orderId = second.order?.orderId ?? "";
    const order = await finalState(orderId);
    expect(order?.status).toBe(OrderStatus.CANCELLED);
    expect(order?.inventory).toBe(StepStatus.FAILED);
    // Payment either charged and then refunded, or saw the cancellation
    // before the OrderPlaced (its subscriptions race) and never charged.
    let payment: string | undefined;
    await waitFor("payment to settle the cancelled order", () => {
      payment = rowStatusOf("payment", "payments", orderId);
      return payment === "refunded" || payment === "cancelled";
    });
    if (payment === "refunded") {
      const types = await historyUntil(orderId, (t) => t.includes("PaymentRefunded"));
      expect(types.filter((t) => t === "PaymentRefunded")).toHaveLength(1);
    } else {
      const types = await historyUntil(orderId, () => true);
      expect(types).not.toContain("PaymentProcessed");
      expect(types).not.toContain("PaymentRefunded");
    }
    expect(await mailFor(orderId, "cancellation")).toBeDefined();
  });

  it("should price later orders from a newer ProductUpdated and ignore a stale one", async () => {
    const { products } = await checkout.products.listProducts({});
    const mouse = products.find((p) => p.productId === "sku-mouse");
    expect(mouse).toBeDefined();
    const updated = await checkout.products.upsertProduct({
      productId: "sku-mouse",
      name: mouse?.name ?? "",
      active: true,
      price: { currencyCode: "EUR", amountMinor: 1999n },
    });
    const version = updated.product?.version ?? 0n;
    expect(version).toBe((mouse?.version ?? 0n) + 1n);
    const priceOf = async () => {
      const placed = await checkout.orders.placeOrder(
        request({ lines: [{ productId: "sku-mouse", quantity: 1 }] }),
      );
      return placed.order?.total?.amountMinor;
    };
    await waitFor(
      "the new price in the order service",
      async () => (await priceOf()) === 1999n,
      60_000,
      200,
    );

    // A stale version (published late, by a replayed event) changes nothing.
    await createCatalogServicePublisher(checkout.pubsub).publishProductUpdated({
      productId: "sku-mouse",
      version: version - 1n,
      name: "stale",
      price: { currencyCode: "EUR", amountMinor: 1n },
      active: true,
      updatedAt: { seconds: 1_700_000_000n },
    });
    // Wait until the stale event was consumed: a marker update after it.
    await createCatalogServicePublisher(checkout.pubsub).publishProductUpdated({
      productId: "sku-marker",
      version: 1n,
      name: "marker",
      price: { currencyCode: "EUR", amountMinor: 100n },
      active: true,
      updatedAt: { seconds: 1_700_000_000n },
    });
    await waitFor(
      "the marker product",
      async () => {
        try {
          await checkout.orders.placeOrder(
            request({ lines: [{ productId: "sku-marker", quantity: 1 }] }),
          );
          return true;
        } catch {
          return false;
        }
      },
      60_000,
      200,
    );
    expect(await priceOf()).toBe(1999n);
  });

  it("should refuse bad requests with a Connect error naming the field, publishing nothing", async () => {
    const watched = checkout.pubsub.topic("checkout.order-placed");
    const [probe] = await watched.createSubscription(`probe-${Date.now()}`);
    // Customer ids of every OrderPlaced seen from now on (earlier tests'
    // orders may still arrive; they have other customers).
    const seen: string[] = [];
    probe.on("message", (m: Message) => {
      seen.push(fromBinary(OrderPlacedSchema, m.data).customerId);
      m.ack();
    });
    probe.on("error", () => {});
    try {
      const bad: Array<[PlaceOrderInit, RegExp]> = [
        [
          request({ lines: [{ productId: "sku-nope", quantity: 1 }] }),
          /lines\[0\]\.product_id.*sku-nope/,
        ],
        [request({ lines: [{ productId: "sku-keyboard", quantity: 0 }] }), /lines\[0\]\.quantity/],
        [omitAddress(request()), /shipping_address/],
      ];
      for (const [init, message] of bad) {
        const error = await checkout.orders.placeOrder(init).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ConnectError);
        expect((error as ConnectError).code).toBe(Code.InvalidArgument);
        expect((error as ConnectError).rawMessage).toMatch(message);
      }
      // A valid order afterwards is seen; the refused ones never are.
      const good = request();
      await checkout.orders.placeOrder(good);
      await waitFor("the valid order's OrderPlaced", () => seen.includes(good.customerId ?? ""));
      const refused = bad.map(([init]) => init.customerId);
      expect(seen.filter((customer) => refused.includes(customer))).toEqual([]);
    } finally {
      await probe.close();
      await probe.delete();
    }
  });

  it("should complete orders while notification is down and send exactly their e-mails when it returns", async () => {
    await checkout.stop("notification");
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) {
      ids.push((await checkout.orders.placeOrder(request())).order?.orderId ?? "");
    }
    for (const id of ids) {
      expect((await finalState(id))?.status).toBe(OrderStatus.CONFIRMED);
    }
    const confirmations = async () =>
      [...(await checkout.mails()).keys()].filter((f) =>
        ids.some((id) => f === `${id}-confirmation.eml`),
      );
    expect(await confirmations()).toEqual([]);

    // Every NotificationSent from now on: files are named per order and kind,
    // so a second e-mail would overwrite the first; the events would not hide it.
    const [probe] = await checkout.pubsub
      .topic("checkout.notification-sent")
      .createSubscription(`probe-sent-${Date.now()}`);
    const sent: string[] = [];
    probe.on("message", (m: Message) => {
      const notice = fromBinary(NotificationSentSchema, m.data);
      if (notice.kind === NotificationKind.CONFIRMATION && ids.includes(notice.orderId)) {
        sent.push(notice.orderId);
      }
      m.ack();
    });
    probe.on("error", () => {});
    try {
      await checkout.start("notification");
      await waitFor(
        "50 confirmation e-mails",
        async () => (await confirmations()).length === 50,
        60_000,
        200,
      );
      await waitFor("50 NotificationSent", () => sent.length >= 50);
      // One more order's confirmation e-mail marks the backlog as drained.
      const last = (await checkout.orders.placeOrder(request())).order?.orderId ?? "";
      expect(await mailFor(last, "confirmation")).toBeDefined();
      expect((await confirmations()).length).toBe(50);
      expect(sent.sort()).toEqual([...ids].sort());
    } finally {
      await probe.close();
      await probe.delete();
    }
  });
});

function omitAddress(init: PlaceOrderInit): PlaceOrderInit {
  const { shippingAddress: _omitted, ...rest } = init;
  return rest;
}

/** Available stock as the inventory service's own store says (read-only, beside the running service). */
/** The status of the order's row in a service's table (`reservations`, `payments`), if it has one. */
function rowStatusOf(
  service: "inventory" | "payment",
  table: "reservations" | "payments",
  orderId: string,
): string | undefined {
  const db = new Database(join(checkout.dataDir, `${service}.sqlite`), {
    readonly: true,
    fileMustExist: true,
  });
  try {
    const row = db.prepare(`select status from ${table} where order_id = ?`).get(orderId) as
      | { status: string }
      | undefined;
    return row?.status;
  } finally {
    db.close();
  }
}

async function stockOf(productId: string): Promise<number> {
  const db = new Database(join(checkout.dataDir, "inventory.sqlite"), {
    readonly: true,
    fileMustExist: true,
  });
  try {
    const row = db.prepare("select available from stock where product_id = ?").get(productId) as
      | { available: number }
      | undefined;
    if (row === undefined) {
      throw new Error(`inventory has no stock row for ${productId}`);
    }
    return row.available;
  } finally {
    db.close();
  }
}
