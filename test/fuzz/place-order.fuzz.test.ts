import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import {
  Code as ConnectCode,
  ConnectError,
  createClient,
  createRouterTransport,
} from "@connectrpc/connect";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OrderService, PlaceOrderRequestSchema } from "../../generated/checkout/v1/order_api_pb.js";
import { OrderPlacedEvent } from "../../generated/checkout/v1/order_events_pe.js";
import { decodeValidEvent } from "../../runtime/src/envelope.js";
import { createStore } from "../../runtime/src/store/index.js";
import type { Store } from "../../runtime/src/store/store.js";
import { createOrderServiceImpl } from "../../services/order/order-api.js";
import { MAX_ORDER_TOTAL_MINOR } from "../../services/order/price-order.js";
import { migrations, type OrderTables } from "../../services/order/tables.js";
import { captureLogs } from "../helpers/logs.js";
import { fuzzOptions } from "./options.js";

/** The catalog view the requests draw from: cheap, dear, another currency, off sale. */
const PRODUCTS = [
  { product_id: "sku-a", price_currency: "EUR", price_minor: 7990, active: 1 },
  { product_id: "sku-dear", price_currency: "EUR", price_minor: 2 ** 50, active: 1 },
  { product_id: "sku-usd", price_currency: "USD", price_minor: 100, active: 1 },
  { product_id: "sku-off", price_currency: "EUR", price_minor: 100, active: 0 },
];

const text = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 80 }) },
  { weight: 1, arbitrary: fc.nat({ max: 400 }).map((n) => "x".repeat(n)) },
);

const word = fc.string({ minLength: 1, maxLength: 20 }).filter((w) => w.trim() !== "");

/** A request the service should accept: the base the hostile ones bend. */
const plausible = fc.record({
  requestId: fc.oneof(fc.constant(""), fc.uuid()),
  customerId: word,
  customerEmail: fc.constantFrom("ada@example.com", "grace.hopper@navy.mil", "x@y.io"),
  lines: fc.array(
    fc.record({
      productId: fc.constantFrom("sku-a", "sku-a", "sku-dear"),
      quantity: fc.integer({ min: 1, max: 1000 }),
    }),
    { minLength: 1, maxLength: 5 },
  ),
  shippingAddress: fc.record({
    recipientName: word,
    line1: word,
    city: word,
    countryCode: fc.constantFrom("DE", "GB"),
  }),
  paymentToken: fc.constantFrom("tok_visa_4242", "tok_declined"),
});

/** Values a careless or hostile client puts in a field. */
const hostileField = fc.oneof(
  fc.record({ requestId: text }),
  fc.record({ customerId: text }),
  fc.record({
    customerEmail: fc.oneof(
      fc.emailAddress(),
      text,
      fc.nat({ max: 20_000 }).map((n) => `a@${".".repeat(n)} `),
    ),
  }),
  fc.record({
    lines: fc.array(
      fc.record({
        productId: fc.constantFrom("sku-a", "sku-dear", "sku-usd", "sku-off", "sku-nope", ""),
        quantity: fc.integer({ min: -3, max: 1200 }),
      }),
      { maxLength: 103 },
    ),
  }),
  fc.record({
    shippingAddress: fc.option(
      fc.record({
        recipientName: text,
        line1: text,
        line2: text,
        city: text,
        postalCode: text,
        countryCode: fc.constantFrom("DE", "GB", "gb", "", "USA", "ZZ"),
      }),
      { nil: undefined },
    ),
  }),
  fc.record({ paymentToken: text }),
);

/** PlaceOrder requests: plausible ones, and plausible ones with one or two fields gone bad. */
const requests = fc.oneof(
  plausible,
  fc
    .tuple(plausible, hostileField, fc.option(hostileField, { nil: undefined }))
    .map(([base, a, b]) => ({ ...base, ...a, ...(b ?? {}) })),
);

describe("PlaceOrder under careless and hostile requests", () => {
  let dir = "";
  let store: Store<OrderTables>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "protoevents-fuzz-order-"));
    store = await createStore<OrderTables>(
      { kind: "sqlite", file: join(dir, "order.sqlite") },
      { migrations },
    );
    await store.db
      .insertInto("catalog_view")
      .values(PRODUCTS.map((p) => ({ ...p, version: 1, name: p.product_id, updated_at: 0 })))
      .execute();
  });

  afterAll(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("should refuse with a clear message or place an order whose OrderPlaced every consumer accepts and payment can decide (seeded)", async () => {
    const { logger } = captureLogs("silent");
    const client = createClient(
      OrderService,
      createRouterTransport(({ service }) => {
        service(OrderService, createOrderServiceImpl({ store, log: logger }));
      }),
    );
    const outcomes = { placed: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(requests, async (init) => {
        let orderId: string;
        try {
          const { order } = await client.placeOrder(create(PlaceOrderRequestSchema, init));
          orderId = order?.orderId ?? "";
        } catch (error) {
          const e = ConnectError.from(error);
          expect([ConnectCode.InvalidArgument, ConnectCode.AlreadyExists], e.message).toContain(
            e.code,
          );
          // Each problem names its field: `lines[0].quantity: …`.
          expect(e.rawMessage).toMatch(/^[a-z_]+(\[\d+\])?(\.[a-z0-9_]+)*: \S/);
          outcomes.refused++;
          return;
        }
        const row = await store.db
          .selectFrom("protoevents_outbox")
          .selectAll()
          .where("ordering_key", "=", orderId)
          .executeTakeFirstOrThrow();
        const { event } = decodeValidEvent(OrderPlacedEvent, {
          data: row.data,
          attributes: JSON.parse(row.attributes) as Record<string, string>,
        });
        expect(event.orderId).toBe(orderId);
        expect(event.total?.amountMinor ?? -1n).toBeGreaterThan(0n);
        expect(event.total?.amountMinor ?? -1n).toBeLessThanOrEqual(MAX_ORDER_TOTAL_MINOR);
        outcomes.placed++;
      }),
      fuzzOptions(250),
    );
    // The generator must reach both ends, or the property proves little.
    expect(outcomes.placed).toBeGreaterThan(0);
    expect(outcomes.refused).toBeGreaterThan(0);
  });
});
