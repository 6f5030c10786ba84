/**
 * The catalog service (application `catalog`): product management behind the
 * Connect API `ProductService`. Every change is stored with the product's next
 * version and published as ProductUpdated through the outbox, in one
 * transaction, so the order service's catalog view never misses or reorders a
 * change. Seeded from `products.json` at start.
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code as ConnectCode, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { Logger, Store } from "@protoevents/runtime";
import { Code, ProtoeventsError } from "@protoevents/runtime";
import type { Kysely } from "kysely";
import { catalogServiceOutbox } from "../../generated/checkout/v1/applications_pe.js";
import { type ProductSchema, ProductService } from "../../generated/checkout/v1/catalog_api_pb.js";
import { apiAccessFromEnv, portFromEnv, startConnectServer } from "../lib/connect-server.js";
import type { ServiceDefinition } from "../lib/run-service.js";
import { type ProductFields, parseSeed, sameProduct, validateUpsertRequest } from "./products.js";

/**
 * One row per product: its current state and version. Keyed by product id,
 * the business key, so an upsert is a read-modify-write of one row.
 */
export interface ProductsTable {
  readonly product_id: string;
  readonly name: string;
  /** ISO 4217 code of the price. */
  readonly price_currency: string;
  /** The price in minor units. */
  readonly price_amount_minor: number;
  /** 1 when the product can be ordered, 0 when it is off sale. */
  readonly active: number;
  /** 1 for a new product, +1 with every change. */
  readonly version: number;
  /** When it last changed, Unix milliseconds. */
  readonly updated_at: number;
}

/** The catalog service's own tables. */
export interface CatalogTables {
  readonly products: ProductsTable;
}

/** A product as stored. */
export type StoredProduct = ProductsTable;

/** The catalog service's migrations (portable SQLite/PostgreSQL types). */
export const migrations = {
  "0001_products": {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable("products")
        .addColumn("product_id", "text", (c) => c.primaryKey())
        .addColumn("name", "text", (c) => c.notNull())
        .addColumn("price_currency", "text", (c) => c.notNull())
        .addColumn("price_amount_minor", "bigint", (c) => c.notNull())
        .addColumn("active", "integer", (c) => c.notNull())
        .addColumn("version", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
    },
  },
};

/** `PRODUCT_API_PORT` when unset. */
export const DEFAULT_PRODUCT_API_PORT = 8081;

/** The seed file next to this module, used when `CATALOG_SEED_FILE` is unset. */
export const DEFAULT_SEED_FILE = fileURLToPath(new URL("./products.json", import.meta.url));

/** What an upsert did. */
export interface UpsertOutcome {
  /** The product after the upsert. */
  readonly product: StoredProduct;
  /** False when the request matched what was stored: no new version, nothing published. */
  readonly changed: boolean;
}

/**
 * Two replicas created the same new product at the same moment and this one
 * lost; its transaction is rolled back and run again, now finding the row.
 */
class LostCreateRace extends Error {
  override name = "LostCreateRace";
}

/** How often an upsert is retried after losing a creation race; one retry always finds the row. */
const CREATE_RACE_ATTEMPTS = 3;

/**
 * Create or change a product in one store transaction: read its row (locked
 * `FOR UPDATE` on PostgreSQL, where replicas run side by side; SQLite
 * serialises writers anyway), and unless nothing changes, write version + 1
 * (1 for a new product) and publish ProductUpdated through the outbox.
 *
 * @param fields already validated by {@link validateUpsertRequest}.
 * @param now Unix milliseconds of the change.
 */
export async function upsertProduct(
  store: Store<CatalogTables>,
  fields: ProductFields,
  now: () => number = Date.now,
): Promise<UpsertOutcome> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await store.transaction(async (tx) => {
        let select = tx.db
          .selectFrom("products")
          .selectAll()
          .where("product_id", "=", fields.productId);
        if (store.dialect === "postgres") {
          select = select.forUpdate();
        }
        const current = await select.executeTakeFirst();
        if (current !== undefined && sameProduct(current, fields)) {
          return { product: current, changed: false };
        }
        const product: StoredProduct = {
          product_id: fields.productId,
          name: fields.name,
          price_currency: fields.currencyCode,
          price_amount_minor: Number(fields.amountMinor),
          active: fields.active ? 1 : 0,
          version: (current?.version ?? 0) + 1,
          updated_at: now(),
        };
        if (current === undefined) {
          const inserted = await tx.db
            .insertInto("products")
            .values(product)
            .onConflict((conflict) => conflict.column("product_id").doNothing())
            .executeTakeFirst();
          if (inserted.numInsertedOrUpdatedRows === 0n) {
            throw new LostCreateRace(fields.productId);
          }
        } else {
          await tx.db
            .updateTable("products")
            .set(product)
            .where("product_id", "=", fields.productId)
            .execute();
        }
        await catalogServiceOutbox(tx).publishProductUpdated(
          {
            productId: product.product_id,
            version: BigInt(product.version),
            name: product.name,
            price: { currencyCode: product.price_currency, amountMinor: fields.amountMinor },
            active: fields.active,
            updatedAt: timestampFromMs(product.updated_at),
          },
          { time: new Date(product.updated_at) },
        );
        return { product, changed: true };
      });
    } catch (error) {
      if (error instanceof LostCreateRace && attempt < CREATE_RACE_ATTEMPTS) {
        continue;
      }
      throw error;
    }
  }
}

/**
 * Every product, ordered by id. Sorted here by code unit rather than in SQL:
 * PostgreSQL's collation would order ids differently from SQLite's.
 */
export async function listProducts(store: Store<CatalogTables>): Promise<StoredProduct[]> {
  const rows = await store.db.selectFrom("products").selectAll().execute();
  return rows.sort((a, b) =>
    a.product_id < b.product_id ? -1 : a.product_id > b.product_id ? 1 : 0,
  );
}

/** A stored product as the API returns it. */
export function toProductMessage(row: StoredProduct): MessageInitShape<typeof ProductSchema> {
  return {
    productId: row.product_id,
    name: row.name,
    price: {
      currencyCode: row.price_currency,
      amountMinor: BigInt(row.price_amount_minor),
    },
    active: row.active === 1,
    version: BigInt(row.version),
    updatedAt: timestampFromMs(row.updated_at),
  };
}

/**
 * A store failure as the API reports it: `unavailable` (the client may
 * retry) when the store could not be reached or commit, `internal` otherwise.
 * The message never carries SQL or driver details; the log has them.
 */
function apiError(error: unknown, log: Logger, op: string): ConnectError {
  if (error instanceof ConnectError) {
    return error;
  }
  const normalised = ProtoeventsError.from(error);
  log.error({ op, err: normalised }, "product API call failed");
  return normalised.code === Code.StoreUnavailable
    ? new ConnectError("the catalog's store is unavailable; try again", ConnectCode.Unavailable)
    : new ConnectError("the catalog could not handle the request", ConnectCode.Internal);
}

/**
 * The `ProductService` implementation.
 *
 * - `UpsertProduct`: invalid requests fail with `invalid_argument` and a
 *   message naming each broken field (nothing stored, nothing published);
 *   otherwise {@link upsertProduct}. An upsert that changes nothing returns
 *   the stored product with its current version.
 * - `ListProducts`: every product, ordered by id.
 */
export function createProductService(
  store: Store<CatalogTables>,
  log: Logger,
  now: () => number = Date.now,
): ServiceImpl<typeof ProductService> {
  return {
    async upsertProduct(request) {
      const validation = validateUpsertRequest(request);
      if (!validation.ok) {
        throw new ConnectError(validation.violations.join("; "), ConnectCode.InvalidArgument);
      }
      let outcome: UpsertOutcome;
      try {
        outcome = await upsertProduct(store, validation.fields, now);
      } catch (error) {
        throw apiError(error, log, "upsert_product");
      }
      const { product, changed } = outcome;
      log.info(
        { op: "upsert_product", productId: product.product_id, version: product.version, changed },
        changed ? "product updated" : "product unchanged",
      );
      return { product: toProductMessage(product) };
    },
    async listProducts() {
      try {
        return { products: (await listProducts(store)).map(toProductMessage) };
      } catch (error) {
        throw apiError(error, log, "list_products");
      }
    },
  };
}

/**
 * Bring the catalog in line with the seed file: upsert every product that is
 * missing or differs, leave the rest alone. A restart with the same file
 * therefore publishes nothing; a product changed through the API since is
 * set back to the file's values (with a new version).
 *
 * @throws ProtoeventsError `invalid_argument` when the file cannot be read or
 *   an entry is not a listable product (the service does not start).
 */
export async function seedCatalog(
  store: Store<CatalogTables>,
  file: string,
  log: Logger,
  now: () => number = Date.now,
): Promise<{ readonly products: number; readonly changed: number }> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new ProtoeventsError(Code.InvalidArgument, `cannot read the catalog seed ${file}`, {
      cause: error,
    });
  }
  const products = parseSeed(text, file);
  let changed = 0;
  for (const fields of products) {
    const outcome = await upsertProduct(store, fields, now);
    if (outcome.changed) {
      changed++;
      log.info(
        { op: "seed", productId: fields.productId, version: outcome.product.version },
        "product seeded",
      );
    }
  }
  return { products: products.length, changed };
}

/** `PRODUCT_API_PORT` as a port number. */
export function productApiPort(env: Readonly<Record<string, string | undefined>>): number {
  return portFromEnv(env, "PRODUCT_API_PORT", DEFAULT_PRODUCT_API_PORT);
}

/**
 * The catalog service. Environment: `PRODUCT_API_PORT` (default 8081; 0: a
 * free port, reported as `port` in the "service ready" line), `API_HOST` and
 * `API_TOKEN` (see startConnectServer) and
 * `CATALOG_SEED_FILE` (default `services/catalog/products.json`).
 */
export const definition: ServiceDefinition<CatalogTables> = {
  name: "catalog",
  migrations,
  async start({ store, log, env }) {
    const port = productApiPort(env);
    const seedFile =
      env.CATALOG_SEED_FILE === undefined || env.CATALOG_SEED_FILE === ""
        ? DEFAULT_SEED_FILE
        : env.CATALOG_SEED_FILE;
    // Seed before serving, so the API never answers from a half-seeded catalog.
    const seeded = await seedCatalog(store, seedFile, log);
    const service = createProductService(store, log);
    const server = await startConnectServer({
      port,
      ...apiAccessFromEnv(env),
      routes: (router) => {
        router.service(ProductService, service);
      },
    });
    return {
      closables: [server],
      ready: { port: server.port, products: seeded.products, seeded: seeded.changed },
    };
  },
};
