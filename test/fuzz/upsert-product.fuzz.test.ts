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
import {
  ProductService,
  UpsertProductRequestSchema,
} from "../../generated/checkout/v1/catalog_api_pb.js";
import { ProductUpdatedEvent } from "../../generated/checkout/v1/catalog_events_pe.js";
import { decodeValidEvent } from "../../runtime/src/envelope.js";
import { createStore } from "../../runtime/src/store/index.js";
import type { Store } from "../../runtime/src/store/store.js";
import {
  type CatalogTables,
  createProductService,
  migrations,
} from "../../services/catalog/service.js";
import { captureLogs } from "../helpers/logs.js";
import { fuzzOptions } from "./options.js";

const text = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 80 }) },
  { weight: 1, arbitrary: fc.nat({ max: 400 }).map((n) => "x".repeat(n)) },
  { weight: 1, arbitrary: fc.constantFrom("", " ", "\u0000", "sku-a", "sku-b") },
);

/** Amounts around every edge: negative, safe, past 2^53, the int64 ends. */
const amount = fc.oneof(
  fc.bigInt({ min: 0n, max: 100_000n }),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.constantFrom(-1n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n - 1n, -(2n ** 63n)),
);

const requests = fc.record(
  {
    productId: text,
    name: text,
    price: fc.option(
      fc.record({
        currencyCode: fc.oneof(fc.constantFrom("EUR", "USD", "eur", "EURO", ""), text),
        amountMinor: amount,
      }),
      { nil: undefined },
    ),
    active: fc.boolean(),
  },
  { requiredKeys: [] },
);

describe("UpsertProduct under careless and hostile requests", () => {
  let dir = "";
  let store: Store<CatalogTables>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "protoevents-fuzz-catalog-"));
    store = await createStore<CatalogTables>(
      { kind: "sqlite", file: join(dir, "catalog.sqlite") },
      { migrations },
    );
  });

  afterAll(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("should refuse naming each broken field, or store the product exactly and publish a valid ProductUpdated (seeded)", async () => {
    const { logger } = captureLogs("silent");
    const client = createClient(
      ProductService,
      createRouterTransport(({ service }) => {
        service(ProductService, createProductService(store, logger));
      }),
    );
    const outcomes = { stored: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(requests, async (init) => {
        let product: Awaited<ReturnType<typeof client.upsertProduct>>["product"];
        try {
          ({ product } = await client.upsertProduct(create(UpsertProductRequestSchema, init)));
        } catch (error) {
          const e = ConnectError.from(error);
          expect(e.code, e.message).toBe(ConnectCode.InvalidArgument);
          // Each problem names its field: `price.currency_code: …`.
          for (const violation of e.rawMessage.split("; ")) {
            expect(violation).toMatch(/^(product_id|name|price|price\.[a-z_]+): \S/);
          }
          outcomes.refused++;
          return;
        }
        // Stored exactly as asked: no amount rounded on its way through.
        expect(product?.productId).toBe(init.productId);
        expect(product?.price?.amountMinor).toBe(init.price?.amountMinor);
        // Its last event is the product as stored, and every consumer accepts it.
        const row = await store.db
          .selectFrom("protoevents_outbox")
          .selectAll()
          .where("ordering_key", "=", init.productId ?? "")
          .orderBy("id", "desc")
          .executeTakeFirstOrThrow();
        const { event } = decodeValidEvent(ProductUpdatedEvent, {
          data: row.data,
          attributes: JSON.parse(row.attributes) as Record<string, string>,
        });
        expect(event.productId).toBe(init.productId);
        expect(event.version).toBe(product?.version);
        expect(event.price?.amountMinor).toBe(init.price?.amountMinor);
        outcomes.stored++;
      }),
      fuzzOptions(250),
    );
    // The generator must reach both ends, or the property proves little.
    expect(outcomes.stored).toBeGreaterThan(0);
    expect(outcomes.refused).toBeGreaterThan(0);
  });
});
