import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import type { PubSub } from "@google-cloud/pubsub";
import { describe, expect, inject, it } from "vitest";
import { subscribeCatalogViewServiceAtLeastOnce } from "../../generated/checkout/v1/applications_pe.js";
import {
  ProductService,
  UpsertProductRequestSchema,
} from "../../generated/checkout/v1/catalog_api_pb.js";
import type { ProductUpdatedValid } from "../../generated/checkout/v1/catalog_events_pe.js";
import { registry } from "../../generated/protoevents_registry.js";
import { createLogger, provision } from "../../runtime/src/index.js";
import {
  type ProductFields,
  parseSeed,
  sameProduct,
  validateUpsertRequest,
} from "../../services/catalog/products.js";
import {
  type CatalogTables,
  DEFAULT_SEED_FILE,
  definition,
  listProducts,
  migrations,
  productApiPort,
  upsertProduct,
} from "../../services/catalog/service.js";
import { type RunningService, startService } from "../../services/lib/run-service.js";
import { afterThisTest, tempDir } from "../helpers/cleanup.js";
import { testPubSub } from "../helpers/pubsub.js";
import { testStoreLocation } from "../helpers/stores.js";
import { waitFor } from "../helpers/wait.js";

const quiet = createLogger({ test: "catalog" });
quiet.level = "silent";

const EMPTY_SEED = JSON.stringify({ products: [] });

interface Harness {
  readonly pubsub: PubSub;
  readonly dataDir: string;
  /** ProductUpdated as the order service's catalog view receives it, by ce-id. */
  readonly updates: Map<string, ProductUpdatedValid>;
  /** Start (or restart) the catalog on the same data directory. */
  start(): Promise<{
    running: RunningService<CatalogTables>;
    client: Client<typeof ProductService>;
  }>;
}

/**
 * A fresh emulator project and data directory, the catalog view's
 * subscription observed at least once, and the catalog service on a free port.
 * `seed` is the seed file's content; undefined uses the real products.json.
 */
async function harness(seed: string | undefined): Promise<Harness> {
  const pubsub = testPubSub("catalog");
  afterThisTest(() => pubsub.close());
  await provision(pubsub, registry, { dryRun: false });
  const dataDir = await tempDir("catalog-service");
  const seedFile = join(dataDir, "seed.json");
  if (seed !== undefined) {
    await writeFile(seedFile, seed);
  }
  const updates = new Map<string, ProductUpdatedValid>();
  const view = subscribeCatalogViewServiceAtLeastOnce(
    pubsub,
    {
      applyProductUpdated(event, context) {
        updates.set(context.envelope.id, event);
      },
    },
    { logger: quiet },
  );
  afterThisTest(() => view.close());
  return {
    pubsub,
    dataDir,
    updates,
    async start() {
      const running = await startService(definition, {
        PUBSUB_EMULATOR_HOST: inject("emulatorHost"),
        PUBSUB_PROJECT_ID: pubsub.projectId,
        PROTOEVENTS_DATA_DIR: dataDir,
        PROTOEVENTS_LOG_LEVEL: "silent",
        PRODUCT_API_PORT: "0",
        ...(seed === undefined ? {} : { CATALOG_SEED_FILE: seedFile }),
      });
      afterThisTest(() => running.stop());
      const client = createClient(
        ProductService,
        createConnectTransport({
          baseUrl: `http://127.0.0.1:${String(running.ready.port)}`,
          httpVersion: "1.1",
        }),
      );
      return { running, client };
    },
  };
}

async function outboxCount(running: RunningService<CatalogTables>): Promise<number> {
  return (await running.context.store.db.selectFrom("protoevents_outbox").select("id").execute())
    .length;
}

function updatesOf(h: Harness, productId: string): ProductUpdatedValid[] {
  return [...h.updates.values()]
    .filter((u) => u.productId === productId)
    .sort((a, b) => Number(a.version - b.version));
}

async function rejection(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error("expected the call to fail");
}

const keyboard = {
  productId: "sku-test-keyboard",
  name: "Test keyboard",
  price: { currencyCode: "EUR", amountMinor: 7990n },
  active: true,
};

// ---- the API over HTTP ----------------------------------------------------------------

describe("catalog ProductService", () => {
  it("should publish version 1, then 2, and nothing for an unchanged upsert when a product is created, changed and resent", async () => {
    const h = await harness(EMPTY_SEED);
    const { running, client } = await h.start();
    expect(running.ready.port).toBeGreaterThan(0);

    const created = await client.upsertProduct(keyboard);
    expect(created.product?.version).toBe(1n);
    await waitFor("ProductUpdated v1", () => updatesOf(h, keyboard.productId).length === 1);
    const v1 = updatesOf(h, keyboard.productId)[0];
    expect(v1).toMatchObject({
      productId: "sku-test-keyboard",
      version: 1n,
      name: "Test keyboard",
      active: true,
      price: { currencyCode: "EUR", amountMinor: 7990n },
    });

    const changed = await client.upsertProduct({
      ...keyboard,
      price: { currencyCode: "EUR", amountMinor: 6990n },
    });
    expect(changed.product?.version).toBe(2n);
    expect(changed.product?.price?.amountMinor).toBe(6990n);
    await waitFor("ProductUpdated v2", () => updatesOf(h, keyboard.productId).length === 2);
    expect(updatesOf(h, keyboard.productId)[1]).toMatchObject({
      version: 2n,
      price: { amountMinor: 6990n },
    });

    const unchanged = await client.upsertProduct({
      ...keyboard,
      price: { currencyCode: "EUR", amountMinor: 6990n },
    });
    expect(unchanged.product?.version).toBe(2n);
    expect(unchanged.product?.updatedAt).toEqual(changed.product?.updatedAt);
    expect(await outboxCount(running)).toBe(2);

    // A later change still arrives, and nothing came in between.
    await client.upsertProduct({ ...keyboard, active: false });
    await waitFor("ProductUpdated v3", () => updatesOf(h, keyboard.productId).length === 3);
    expect(updatesOf(h, keyboard.productId).map((u) => u.version)).toEqual([1n, 2n, 3n]);
    expect(updatesOf(h, keyboard.productId)[2]?.active).toBe(false);
  });

  it("should list every product ordered by id when several exist", async () => {
    const h = await harness(EMPTY_SEED);
    const { client } = await h.start();
    for (const productId of ["sku-b", "sku-C", "sku-a"]) {
      await client.upsertProduct({ ...keyboard, productId });
    }
    const listed = await client.listProducts({});
    expect(listed.products.map((p) => [p.productId, p.version])).toEqual([
      ["sku-C", 1n],
      ["sku-a", 1n],
      ["sku-b", 1n],
    ]);
  });

  it("should fail with InvalidArgument naming the field and publish nothing when a request is invalid", async () => {
    const h = await harness(EMPTY_SEED);
    const { running, client } = await h.start();
    const bad: Array<[string, typeof keyboard | Omit<typeof keyboard, "price">]> = [
      ["product_id: is required", { ...keyboard, productId: "" }],
      [
        "product_id: must be at most 64 characters, got 65",
        { ...keyboard, productId: "x".repeat(65) },
      ],
      ["name: is required", { ...keyboard, name: "  " }],
      ["name: must be at most 200 characters, got 201", { ...keyboard, name: "n".repeat(201) }],
      ["price: is required", { productId: keyboard.productId, name: keyboard.name, active: true }],
      [
        'price.currency_code: must be three capital letters, got "euro"',
        { ...keyboard, price: { currencyCode: "euro", amountMinor: 100n } },
      ],
      [
        "price.amount_minor: must not be negative, got -1",
        { ...keyboard, price: { currencyCode: "EUR", amountMinor: -1n } },
      ],
    ];
    for (const [message, request] of bad) {
      const error = await rejection(client.upsertProduct(request));
      expect(error.code, message).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toBe(message);
    }
    expect(await outboxCount(running)).toBe(0);
    expect((await client.listProducts({})).products).toEqual([]);
  });

  it("should publish the seed once and nothing more when the service restarts", async () => {
    const h = await harness(undefined);
    const first = await h.start();
    expect(first.running.ready).toMatchObject({ products: 5, seeded: 5 });
    await waitFor("five seeded ProductUpdated", () => h.updates.size === 5);
    expect(
      [...h.updates.values()].map((u) => [u.productId, u.version, u.price.amountMinor]).sort(),
    ).toEqual([
      ["sku-headset", 1n, 4900n],
      ["sku-keyboard", 1n, 7990n],
      ["sku-limited", 1n, 14900n],
      ["sku-monitor", 1n, 19900n],
      ["sku-mouse", 1n, 2495n],
    ]);
    await first.running.stop();

    const second = await h.start();
    expect(second.running.ready).toMatchObject({ products: 5, seeded: 0 });
    expect(await outboxCount(second.running)).toBe(5);
    const listed = await second.client.listProducts({});
    expect(listed.products.map((p) => [p.productId, p.name, p.version])).toEqual([
      ["sku-headset", "Headset", 1n],
      ["sku-keyboard", "Mechanical keyboard", 1n],
      ["sku-limited", "Limited edition keyboard", 1n],
      ["sku-monitor", "27-inch monitor", 1n],
      ["sku-mouse", "Wireless mouse", 1n],
    ]);
    // A marker published after the restart arrives; nothing else did.
    await second.client.upsertProduct(keyboard);
    await waitFor("the marker's ProductUpdated", () => h.updates.size >= 6);
    expect(h.updates.size).toBe(6);
  });

  it("should publish only the products that differ when the seed file changed between starts", async () => {
    const seed = await readFile(DEFAULT_SEED_FILE, "utf8");
    const h = await harness(seed);
    await (await h.start()).running.stop();
    const changed = JSON.parse(seed) as { products: Array<{ productId: string; price: unknown }> };
    for (const product of changed.products) {
      if (product.productId === "sku-mouse") {
        product.price = { currencyCode: "EUR", amountMinor: 1995 };
      }
    }
    await writeFile(join(h.dataDir, "seed.json"), JSON.stringify(changed));

    const { running } = await h.start();
    expect(running.ready).toMatchObject({ products: 5, seeded: 1 });
    expect(await outboxCount(running)).toBe(6);
    await waitFor("sku-mouse v2", () => updatesOf(h, "sku-mouse").length === 2);
    expect(updatesOf(h, "sku-mouse")[1]).toMatchObject({
      version: 2n,
      price: { amountMinor: 1995n },
    });
  });

  it("should refuse to start when the seed file has an invalid product", async () => {
    const h = await harness(
      JSON.stringify({
        products: [
          { productId: "sku-x", name: "X", price: { currencyCode: "eur", amountMinor: 1 } },
        ],
      }),
    );
    await expect(h.start()).rejects.toThrow(
      /products\[0\]\.price\.currency_code: must be three capital letters, got "eur"/,
    );
  });
});

// ---- upserts on both stores -------------------------------------------------------------

describe("upsertProduct", () => {
  it.each(["sqlite", "postgres"] as const)(
    "should give every concurrent change its own version when replicas upsert one new product at once on %s",
    async (dialect) => {
      const where = await testStoreLocation(dialect);
      afterThisTest(() => where.remove());
      const store = await where.open<CatalogTables>(migrations);
      afterThisTest(() => store.close());
      const fields = (amountMinor: bigint): ProductFields => ({
        productId: "sku-race",
        name: "Race",
        currencyCode: "EUR",
        amountMinor,
        active: true,
      });
      const outcomes = await Promise.all(
        [100n, 200n, 300n, 400n, 500n].map((amount) => upsertProduct(store, fields(amount))),
      );
      expect(outcomes.map((o) => o.product.version).sort()).toEqual([1, 2, 3, 4, 5]);
      expect(outcomes.every((o) => o.changed)).toBe(true);
      const outbox = await store.db.selectFrom("protoevents_outbox").select("id").execute();
      expect(outbox).toHaveLength(5);
      const [row] = await listProducts(store);
      expect(row?.version).toBe(5);
    },
  );
});

// ---- the pure rules ------------------------------------------------------------------------

describe("validateUpsertRequest", () => {
  it("should report every broken field when several are wrong", () => {
    const result = validateUpsertRequest(
      create(UpsertProductRequestSchema, {
        productId: "",
        name: "",
        price: { currencyCode: "EURO", amountMinor: -5n },
      }),
    );
    expect(result).toEqual({
      ok: false,
      violations: [
        "product_id: is required",
        "name: is required",
        'price.currency_code: must be three capital letters, got "EURO"',
        "price.amount_minor: must not be negative, got -5",
      ],
    });
  });

  it("should accept a free product and count characters, not UTF-16 units, when checking lengths", () => {
    const result = validateUpsertRequest(
      create(UpsertProductRequestSchema, {
        productId: "😀".repeat(64),
        name: "Sticker",
        price: { currencyCode: "EUR", amountMinor: 0n },
      }),
    );
    expect(result.ok).toBe(true);
  });

  it("should refuse an amount the store cannot hold exactly when it exceeds 2^53 - 1", () => {
    const result = validateUpsertRequest(
      create(UpsertProductRequestSchema, {
        productId: "sku-gold",
        name: "Gold",
        price: { currencyCode: "EUR", amountMinor: 2n ** 53n },
      }),
    );
    expect(result.ok).toBe(false);
  });
});

describe("sameProduct", () => {
  const fields: ProductFields = {
    productId: "sku-a",
    name: "A",
    currencyCode: "EUR",
    amountMinor: 100n,
    active: true,
  };
  const stored = { name: "A", price_currency: "EUR", price_amount_minor: 100, active: 1 };
  it.each([
    ["nothing differs", stored, true],
    ["the name differs", { ...stored, name: "B" }, false],
    ["the currency differs", { ...stored, price_currency: "USD" }, false],
    ["the amount differs", { ...stored, price_amount_minor: 101 }, false],
    ["the availability differs", { ...stored, active: 0 }, false],
  ])("should be right when %s", (_case, row, expected) => {
    expect(sameProduct(row, fields)).toBe(expected);
  });
});

describe("parseSeed", () => {
  it("should read the shipped products.json when it is unchanged", async () => {
    const products = parseSeed(await readFile(DEFAULT_SEED_FILE, "utf8"), "products.json");
    expect(products.map((p) => p.productId)).toEqual([
      "sku-keyboard",
      "sku-mouse",
      "sku-monitor",
      "sku-headset",
      "sku-limited",
    ]);
    expect(products.every((p) => p.active && p.currencyCode === "EUR")).toBe(true);
  });

  it("should refuse a product id that appears twice", () => {
    const entry = { productId: "sku-a", name: "A", price: { currencyCode: "EUR", amountMinor: 1 } };
    expect(() => parseSeed(JSON.stringify({ products: [entry, entry] }), "seed.json")).toThrow(
      /seed\.json: products\[1\]\.product_id: "sku-a" appears twice/,
    );
  });

  it("should name the file when it is not a products list", () => {
    expect(() => parseSeed("[]", "seed.json")).toThrow(/seed\.json: expected an object/);
    expect(() => parseSeed("{", "seed.json")).toThrow(/seed\.json: not JSON/);
  });
});

describe("productApiPort", () => {
  it("should default to 8081 and refuse what is not a port", () => {
    expect(productApiPort({})).toBe(8081);
    expect(productApiPort({ PRODUCT_API_PORT: "0" })).toBe(0);
    expect(() => productApiPort({ PRODUCT_API_PORT: "http" })).toThrow(/PRODUCT_API_PORT/);
    expect(() => productApiPort({ PRODUCT_API_PORT: "70000" })).toThrow(/PRODUCT_API_PORT/);
  });
});
