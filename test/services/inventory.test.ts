import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { PubSub } from "@google-cloud/pubsub";
import pg from "pg";
import { describe, expect, inject, it } from "vitest";
import {
  createOrderSagaServicePublisher,
  type OrderSagaServicePublisher,
  subscribeOrderSagaServiceAtLeastOnce,
} from "../../generated/checkout/v1/applications_pe.js";
import { CancellationReason } from "../../generated/checkout/v1/common_pb.js";
import type {
  InventoryReleasedValid,
  InventoryReservationFailedValid,
  InventoryReservedValid,
} from "../../generated/checkout/v1/inventory_events_pe.js";
import type {
  OrderCancelledInput,
  OrderPlacedInput,
} from "../../generated/checkout/v1/order_events_pe.js";
import { registry } from "../../generated/protoevents_registry.js";
import { Code, isProtoeventsError, provision } from "../../runtime/src/index.js";
import {
  decideReservation,
  MAX_REASON_LENGTH,
  parseStockLevels,
  shortageReason,
  totalsByProduct,
  unavailableItems,
} from "../../services/inventory/reservation.js";
import { definition, type InventoryTables } from "../../services/inventory/service.js";
import {
  type RunningService,
  type ServiceDefinition,
  startService,
} from "../../services/lib/run-service.js";
import { afterThisTest, tempDir } from "../helpers/cleanup.js";
import { validOrderPlaced } from "../helpers/orders.js";
import { testPubSub } from "../helpers/pubsub.js";
import { PG_URL, uniqueName } from "../helpers/stores.js";
import { waitFor } from "../helpers/wait.js";

/** The demo stock of `services/inventory/stock.json`. */
const DEMO_STOCK = {
  "sku-headset": 300,
  "sku-keyboard": 1000,
  "sku-limited": 3,
  "sku-monitor": 500,
  "sku-mouse": 1000,
};

/** What the order saga would see from inventory. */
interface Observed {
  readonly reserved: InventoryReservedValid[];
  readonly failed: InventoryReservationFailedValid[];
  readonly released: InventoryReleasedValid[];
}

interface World {
  readonly pubsub: PubSub;
  readonly saga: OrderSagaServicePublisher;
  readonly seen: Observed;
  readonly dataDir: string;
}

/** A fresh emulator project with the order saga's subscriptions observed, and a data directory. */
async function world(): Promise<World> {
  const pubsub = testPubSub("inventory");
  afterThisTest(() => pubsub.close());
  await provision(pubsub, registry, { dryRun: false });
  const dataDir = await tempDir("inventory-service");
  const seen: Observed = { reserved: [], failed: [], released: [] };
  const observer = subscribeOrderSagaServiceAtLeastOnce(pubsub, {
    onPaymentProcessed: () => {},
    onPaymentFailed: () => {},
    onPaymentRefunded: () => {},
    onInventoryReserved: (event) => {
      seen.reserved.push(event);
    },
    onInventoryReservationFailed: (event) => {
      seen.failed.push(event);
    },
    onInventoryReleased: (event) => {
      seen.released.push(event);
    },
  });
  afterThisTest(() => observer.close());
  return { pubsub, saga: createOrderSagaServicePublisher(pubsub), seen, dataDir };
}

/** Start the inventory service in-process in `w`; stopped after the test. */
async function startInventory(
  w: World,
  env: Record<string, string> = {},
  service: ServiceDefinition<InventoryTables> = definition,
): Promise<RunningService<InventoryTables>> {
  const running = await startService(service, {
    PUBSUB_EMULATOR_HOST: inject("emulatorHost"),
    PUBSUB_PROJECT_ID: w.pubsub.projectId,
    PROTOEVENTS_DATA_DIR: w.dataDir,
    PROTOEVENTS_LOG_LEVEL: "silent",
    ...env,
  });
  afterThisTest(() => running.stop());
  return running;
}

async function stockLevels(
  service: RunningService<InventoryTables>,
): Promise<Record<string, number>> {
  const rows = await service.context.store.db
    .selectFrom("stock")
    .select(["product_id", "available"])
    .orderBy("product_id")
    .execute();
  return Object.fromEntries(rows.map((row) => [row.product_id, Number(row.available)]));
}

/** Resolve once the service committed its handling of event `eventId`. */
async function handled(
  service: RunningService<InventoryTables>,
  subscription: string,
  eventId: string,
): Promise<void> {
  await waitFor(`${subscription} to handle ${eventId}`, async () => {
    const claim = await service.context.store.db
      .selectFrom("protoevents_inbox")
      .select("event_id")
      .where("subscription", "=", subscription)
      .where("event_id", "=", eventId)
      .executeTakeFirst();
    return claim !== undefined;
  });
}

/** How many events of `type` the service wrote to its outbox, i.e. ever published. */
async function published(service: RunningService<InventoryTables>, type: string): Promise<number> {
  const rows = await service.context.store.db
    .selectFrom("protoevents_outbox")
    .select("event_id")
    .where("event_type", "=", type)
    .execute();
  return rows.length;
}

/** A valid OrderPlaced for `lines` of [product id, quantity], priced at 10.00 each. */
function orderOf(
  orderId: string,
  lines: ReadonlyArray<readonly [string, number]>,
): OrderPlacedInput {
  const total = lines.reduce((sum, [, quantity]) => sum + BigInt(quantity) * 1000n, 0n);
  return {
    orderId,
    customerId: "cust-42",
    customerEmail: "ada@example.com",
    shippingAddress: {
      recipientName: "Ada Lovelace",
      line1: "12 St James's Square",
      city: "London",
      countryCode: "GB",
    },
    paymentToken: "tok_visa_4242",
    placedAt: timestampFromDate(new Date("2026-11-26T10:00:00Z")),
    items: lines.map(([productId, quantity]) => ({
      productId,
      quantity,
      unitPrice: { currencyCode: "EUR", amountMinor: 1000n },
    })),
    total: { currencyCode: "EUR", amountMinor: total },
  };
}

function cancelled(orderId: string, releaseRequired = true): OrderCancelledInput {
  return {
    orderId,
    customerId: "cust-42",
    customerEmail: "ada@example.com",
    reason: CancellationReason.PAYMENT_DECLINED,
    detail: "the card issuer declined the charge",
    refundRequired: false,
    releaseRequired,
    cancelledAt: timestampFromDate(new Date("2026-11-26T10:00:05Z")),
  };
}

describe("totalsByProduct", () => {
  it("should sum the lines of one product and sort by product id when a product is on two lines", () => {
    const totals = totalsByProduct([
      { productId: "sku-mouse", quantity: 2 },
      { productId: "sku-keyboard", quantity: 1 },
      { productId: "sku-mouse", quantity: 3 },
    ]);
    expect([...totals]).toEqual([
      ["sku-keyboard", 1],
      ["sku-mouse", 5],
    ]);
  });
});

describe("decideReservation", () => {
  const stock = new Map([
    ["sku-keyboard", 10],
    ["sku-limited", 3],
  ]);

  it("should reserve every product's total when the stock covers all of them", () => {
    expect(
      decideReservation(
        [
          { productId: "sku-limited", quantity: 3 },
          { productId: "sku-keyboard", quantity: 10 },
        ],
        stock,
      ),
    ).toEqual({
      kind: "reserved",
      totals: new Map([
        ["sku-keyboard", 10],
        ["sku-limited", 3],
      ]),
    });
  });

  it("should refuse the whole order and list only the short products when one falls short", () => {
    expect(
      decideReservation(
        [
          { productId: "sku-keyboard", quantity: 1 },
          { productId: "sku-limited", quantity: 4 },
        ],
        stock,
      ),
    ).toEqual({
      kind: "unavailable",
      shortages: [{ productId: "sku-limited", requested: 4, available: 3 }],
    });
  });

  it("should refuse when two lines of one product together exceed its stock", () => {
    expect(
      decideReservation(
        [
          { productId: "sku-limited", quantity: 2 },
          { productId: "sku-limited", quantity: 2 },
        ],
        stock,
      ),
    ).toEqual({
      kind: "unavailable",
      shortages: [{ productId: "sku-limited", requested: 4, available: 3 }],
    });
  });

  it("should report 0 available when the product is unknown", () => {
    expect(decideReservation([{ productId: "sku-ghost", quantity: 1 }], stock)).toEqual({
      kind: "unavailable",
      shortages: [{ productId: "sku-ghost", requested: 1, available: 0 }],
    });
  });
});

describe("unavailableItems", () => {
  it("should cap requested at the contract's 1000 when several lines add up to more", () => {
    expect(unavailableItems([{ productId: "sku-a", requested: 1500, available: 1200 }])).toEqual([
      { productId: "sku-a", requestedQuantity: 1000, availableQuantity: 1200 },
    ]);
  });
});

describe("shortageReason", () => {
  it("should name each short product with its numbers when there are few", () => {
    expect(
      shortageReason([
        { productId: "sku-ghost", requested: 1, available: 0 },
        { productId: "sku-limited", requested: 5, available: 3 },
      ]),
    ).toBe(
      "out of stock: sku-ghost (1 requested, 0 available), sku-limited (5 requested, 3 available)",
    );
  });

  it("should stay within 500 characters and count the rest when 100 products are short", () => {
    const shortages = Array.from({ length: 100 }, (_, i) => ({
      productId: `sku-${"x".repeat(50)}-${i}`,
      requested: 1000,
      available: 999,
    }));
    const reason = shortageReason(shortages);
    expect(reason.length).toBeLessThanOrEqual(MAX_REASON_LENGTH);
    expect(reason).toMatch(/, and \d+ more$/);
  });
});

describe("parseStockLevels", () => {
  it("should read product ids and units when the file is an object of whole numbers", () => {
    expect([...parseStockLevels('{"sku-a": 5, "sku-b": 0}', "stock.json")]).toEqual([
      ["sku-a", 5],
      ["sku-b", 0],
    ]);
  });

  it.each([
    ["[1, 2]", "must be an object"],
    ['{"sku-a": -1}', "units of sku-a"],
    ['{"sku-a": 1.5}', "units of sku-a"],
    ['{"sku-a": "5"}', "units of sku-a"],
    ["{", "not JSON"],
  ])("should refuse the file naming what is wrong when it is %s", (json, message) => {
    let error: unknown;
    try {
      parseStockLevels(json, "stock.json");
    } catch (e) {
      error = e;
    }
    expect(isProtoeventsError(error) && error.code === Code.InvalidArgument).toBe(true);
    expect(String(error)).toContain("stock.json");
    expect(String(error)).toContain(message);
  });
});

describe("inventory service", () => {
  it("should seed the demo stock from stock.json when it starts on an empty store", async () => {
    const w = await world();
    const service = await startInventory(w);
    expect(await stockLevels(service)).toEqual(DEMO_STOCK);
    expect(service.ready).toMatchObject({ productsSeeded: 5 });
  });

  it("should decrement the stock and publish InventoryReserved when every item is in stock", async () => {
    const w = await world();
    const service = await startInventory(w);
    await w.saga.publishOrderPlaced(validOrderPlaced("ord-inv-ok"));
    await waitFor("InventoryReserved", () => w.seen.reserved.length === 1);
    const [event] = w.seen.reserved;
    expect(event?.orderId).toBe("ord-inv-ok");
    expect(event?.reservationId).toBe("res_ord-inv-ok");
    expect(event?.items.map((i) => [i.productId, i.quantity])).toEqual([
      ["sku-keyboard", 1],
      ["sku-mouse", 2],
    ]);
    expect(await stockLevels(service)).toEqual({
      ...DEMO_STOCK,
      "sku-keyboard": 999,
      "sku-mouse": 998,
    });
  });

  it("should reserve nothing and leave the stock unchanged when one item is short", async () => {
    const w = await world();
    const service = await startInventory(w);
    await w.saga.publishOrderPlaced(
      orderOf("ord-inv-short", [
        ["sku-keyboard", 1],
        ["sku-limited", 2],
        ["sku-limited", 2],
        ["sku-ghost", 1],
      ]),
    );
    await waitFor("InventoryReservationFailed", () => w.seen.failed.length === 1);
    const [event] = w.seen.failed;
    expect(event?.orderId).toBe("ord-inv-short");
    expect(
      event?.unavailableItems.map((i) => [i.productId, i.requestedQuantity, i.availableQuantity]),
    ).toEqual([
      ["sku-ghost", 1, 0],
      ["sku-limited", 4, 3],
    ]);
    expect(event?.reason).toContain("sku-limited (4 requested, 3 available)");
    expect(await stockLevels(service)).toEqual(DEMO_STOCK);
    expect(w.seen.reserved).toEqual([]);
  });

  it("should put back exactly the reserved units once when OrderCancelled arrives twice", async () => {
    const w = await world();
    const service = await startInventory(w);
    await w.saga.publishOrderPlaced(
      orderOf("ord-inv-release", [
        ["sku-limited", 1],
        ["sku-monitor", 7],
        ["sku-limited", 1],
      ]),
    );
    await waitFor("InventoryReserved", () => w.seen.reserved.length === 1);
    expect(await stockLevels(service)).toMatchObject({ "sku-limited": 1, "sku-monitor": 493 });

    await w.saga.publishOrderCancelled(cancelled("ord-inv-release"));
    await waitFor("InventoryReleased", () => w.seen.released.length === 1);
    const [event] = w.seen.released;
    expect(event?.reservationId).toBe("res_ord-inv-release");
    expect(event?.items.map((i) => [i.productId, i.quantity])).toEqual([
      ["sku-limited", 1],
      ["sku-monitor", 7],
      ["sku-limited", 1],
    ]);
    expect(await stockLevels(service)).toEqual(DEMO_STOCK);

    const again = await w.saga.publishOrderCancelled(cancelled("ord-inv-release"));
    await handled(service, "inventory.release-stock", again.id);
    await service.relay.drain();
    expect(await published(service, "checkout.v1.InventoryReleased")).toBe(1);
    expect(await stockLevels(service)).toEqual(DEMO_STOCK);
  });

  it("should reserve once when OrderPlaced arrives twice with different ce-ids", async () => {
    const w = await world();
    const service = await startInventory(w);
    const first = await w.saga.publishOrderPlaced(orderOf("ord-inv-twice", [["sku-limited", 2]]));
    await handled(service, "inventory.reserve-stock", first.id);
    const second = await w.saga.publishOrderPlaced(orderOf("ord-inv-twice", [["sku-limited", 2]]));
    await handled(service, "inventory.reserve-stock", second.id);
    await service.relay.drain();
    expect(await published(service, "checkout.v1.InventoryReserved")).toBe(1);
    expect(await published(service, "checkout.v1.InventoryReservationFailed")).toBe(0);
    expect((await stockLevels(service))["sku-limited"]).toBe(1);
  });

  it("should never reserve when OrderCancelled arrives before OrderPlaced", async () => {
    const w = await world();
    const service = await startInventory(w);
    const cancel = await w.saga.publishOrderCancelled(cancelled("ord-inv-early"));
    await handled(service, "inventory.release-stock", cancel.id);
    const placed = await w.saga.publishOrderPlaced(orderOf("ord-inv-early", [["sku-limited", 3]]));
    await handled(service, "inventory.reserve-stock", placed.id);
    await service.relay.drain();
    expect(await published(service, "checkout.v1.InventoryReserved")).toBe(0);
    expect(await published(service, "checkout.v1.InventoryReservationFailed")).toBe(0);
    expect(await published(service, "checkout.v1.InventoryReleased")).toBe(0);
    expect(await stockLevels(service)).toEqual(DEMO_STOCK);
    const row = await service.context.store.db
      .selectFrom("reservations")
      .selectAll()
      .where("order_id", "=", "ord-inv-early")
      .executeTakeFirst();
    expect(row).toMatchObject({ status: "cancelled", reservation_id: null });
    expect(JSON.parse(row?.items ?? "null")).toEqual([{ productId: "sku-limited", quantity: 3 }]);
  });

  it("should not release when the reservation had failed", async () => {
    const w = await world();
    const service = await startInventory(w);
    await w.saga.publishOrderPlaced(orderOf("ord-inv-failed", [["sku-limited", 4]]));
    await waitFor("InventoryReservationFailed", () => w.seen.failed.length === 1);
    const cancel = await w.saga.publishOrderCancelled(cancelled("ord-inv-failed"));
    await handled(service, "inventory.release-stock", cancel.id);
    await service.relay.drain();
    expect(await published(service, "checkout.v1.InventoryReleased")).toBe(0);
    expect(await stockLevels(service)).toEqual(DEMO_STOCK);
  });

  it("should reserve sku-limited for exactly three orders when eight arrive at once", async () => {
    const w = await world();
    const service = await startInventory(w);
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        w.saga.publishOrderPlaced(orderOf(`ord-inv-rush-${i}`, [["sku-limited", 1]])),
      ),
    );
    await waitFor("eight answers", () => w.seen.reserved.length + w.seen.failed.length === 8);
    expect(w.seen.reserved).toHaveLength(3);
    expect(w.seen.failed).toHaveLength(5);
    expect((await stockLevels(service))["sku-limited"]).toBe(0);
  });

  it("should keep reserved stock and add only new products when it restarts with a changed stock file", async () => {
    const w = await world();
    const stockFile = join(w.dataDir, "stock.json");
    await writeFile(stockFile, JSON.stringify({ "sku-a": 5 }));
    const env = { INVENTORY_STOCK_FILE: stockFile };
    const first = await startInventory(w, env);
    expect(await stockLevels(first)).toEqual({ "sku-a": 5 });
    await w.saga.publishOrderPlaced(orderOf("ord-inv-restart", [["sku-a", 2]]));
    await waitFor("InventoryReserved", () => w.seen.reserved.length === 1);
    await first.stop();

    await writeFile(stockFile, JSON.stringify({ "sku-a": 5, "sku-b": 7 }));
    const second = await startInventory(w, env);
    expect(second.ready).toMatchObject({ productsSeeded: 1 });
    expect(await stockLevels(second)).toEqual({ "sku-a": 3, "sku-b": 7 });
  });

  it("should refuse to start naming the file when INVENTORY_STOCK_FILE does not exist", async () => {
    const w = await world();
    const missing = join(w.dataDir, "missing.json");
    await expect(startInventory(w, { INVENTORY_STOCK_FILE: missing })).rejects.toThrow(missing);
  });

  it("should never oversell or go negative when two replicas on PostgreSQL reserve concurrently", async () => {
    const w = await world();
    // Its own schema (named after the service) in the shared test database.
    const name = uniqueName("inventory");
    afterThisTest(async () => {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
      } finally {
        await client.end();
      }
    });
    const replica = { ...definition, name };
    const env = { PROTOEVENTS_STORE_URL: PG_URL };
    const [a, b] = await Promise.all([
      startInventory(w, env, replica),
      startInventory(w, env, replica),
    ]);
    expect(a.context.store.dialect).toBe("postgres");
    // Overlapping products in different line orders, so lock order matters.
    const orders = Array.from({ length: 12 }, (_, i) =>
      orderOf(
        `ord-inv-pg-${i}`,
        i % 2 === 0
          ? [
              ["sku-limited", 1],
              ["sku-headset", 1],
            ]
          : [
              ["sku-headset", 1],
              ["sku-limited", 1],
            ],
      ),
    );
    await Promise.all(orders.map((order) => w.saga.publishOrderPlaced(order)));
    await waitFor("twelve answers", () => w.seen.reserved.length + w.seen.failed.length === 12);
    expect(w.seen.reserved).toHaveLength(3);
    expect(w.seen.failed).toHaveLength(9);
    const levels = await stockLevels(b);
    expect(levels["sku-limited"]).toBe(0);
    expect(levels["sku-headset"]).toBe(297);
  });
});
