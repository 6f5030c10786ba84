/**
 * The order service's own tables and their migrations. Written once for
 * SQLite and PostgreSQL: text, integer and bigint columns only, times as
 * Unix milliseconds, money as minor units (bigint) next to a currency code.
 */

import type { ProtoeventsTables } from "@protoevents/runtime";
import type { Kysely, Migration } from "kysely";

/**
 * One row per order: the row the saga locks before it reads and extends the
 * order's event log, and the key that makes a retried PlaceOrder idempotent.
 */
export interface OrdersTable {
  readonly order_id: string;
  /** The client's idempotency key; unique when given, null otherwise. */
  readonly request_id: string | null;
  /** Who placed it; a retried request_id must come from the same customer. */
  readonly customer_id: string;
  /** Unix milliseconds. */
  readonly created_at: number;
}

/**
 * The event log of every order: its state is the fold of its rows in
 * sequence order. Primary key (order_id, sequence); (order_id, event_id) is
 * unique, so one event is recorded at most once per order.
 */
export interface OrderEventsTable {
  readonly order_id: string;
  /** Position in the order's history, from 1, without gaps. */
  readonly sequence: number;
  /** The event's ce-id. */
  readonly event_id: string;
  /** The event's ce-type, e.g. `checkout.v1.OrderPlaced`. */
  readonly event_type: string;
  /** The event's ce-time, Unix milliseconds. */
  readonly occurred_at: number;
  /** The event as proto3 JSON, personal data included (redacted only when shown). */
  readonly payload: string;
}

/**
 * The order service's copy of the catalog, fed by ProductUpdated: the latest
 * version of each product it has seen.
 */
export interface CatalogViewTable {
  readonly product_id: string;
  /** The product's version; an update is applied only if its version is higher. */
  readonly version: number;
  readonly name: string;
  /** ISO 4217 code of the unit price. */
  readonly price_currency: string;
  /** Unit price in the currency's minor unit. */
  readonly price_minor: number;
  /** 1 when the product can be ordered, 0 when it is off sale. */
  readonly active: number;
  /** The update's `updated_at`, Unix milliseconds. */
  readonly updated_at: number;
}

/** The order service's tables, as Kysely sees them. */
export interface OrderTables {
  readonly orders: OrdersTable;
  readonly order_events: OrderEventsTable;
  readonly catalog_view: CatalogViewTable;
}

/** Kysely on the order store (or bound to one of its transactions). */
export type OrderDb = Kysely<OrderTables & ProtoeventsTables>;

/** The order service's migrations, applied in name order when the service starts. */
export const migrations: Readonly<Record<string, Migration>> = {
  "0001_order_tables": {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable("orders")
        .addColumn("order_id", "text", (c) => c.primaryKey())
        .addColumn("request_id", "text")
        .addColumn("customer_id", "text", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .execute();
      // NULLs are distinct in unique indexes on both databases, so orders
      // without a request_id never collide.
      await db.schema
        .createIndex("orders_request_id_unique")
        .on("orders")
        .column("request_id")
        .unique()
        .execute();
      await db.schema
        .createTable("order_events")
        .addColumn("order_id", "text", (c) => c.notNull())
        .addColumn("sequence", "integer", (c) => c.notNull())
        .addColumn("event_id", "text", (c) => c.notNull())
        .addColumn("event_type", "text", (c) => c.notNull())
        .addColumn("occurred_at", "bigint", (c) => c.notNull())
        .addColumn("payload", "text", (c) => c.notNull())
        .addPrimaryKeyConstraint("order_events_pk", ["order_id", "sequence"])
        .execute();
      await db.schema
        .createIndex("order_events_event_unique")
        .on("order_events")
        .columns(["order_id", "event_id"])
        .unique()
        .execute();
      await db.schema
        .createTable("catalog_view")
        .addColumn("product_id", "text", (c) => c.primaryKey())
        .addColumn("version", "bigint", (c) => c.notNull())
        .addColumn("name", "text", (c) => c.notNull())
        .addColumn("price_currency", "text", (c) => c.notNull())
        .addColumn("price_minor", "bigint", (c) => c.notNull())
        .addColumn("active", "integer", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
    },
  },
};
