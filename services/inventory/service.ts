/**
 * The inventory service (application `inventory`): holds stock for placed
 * orders, all items or none, and puts it back on sale when the saga cancels
 * an order.
 *
 * `stock` has one row per product; `reservations` has one row per order id,
 * whatever event created it. That key makes every effect happen once per
 * order across different events: a second OrderPlaced finds the reservation
 * (or the failed attempt) and does nothing, a second OrderCancelled finds it
 * released, and a cancellation that overtakes its OrderPlaced leaves a
 * `cancelled` row (a tombstone) that the late OrderPlaced finds instead of
 * reserving. On PostgreSQL the stock rows an order touches are locked with
 * FOR UPDATE in product id order, so replicas reserving concurrently neither
 * oversell nor deadlock; a CHECK keeps `available` from ever going negative.
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  Code,
  type Migration,
  PermanentError,
  ProtoeventsError,
  reasonToString,
  type Store,
  type StoreDialect,
  type StoreTransaction,
} from "@protoevents/runtime";
import { type Kysely, type Selectable, sql } from "kysely";
import {
  type InventoryServiceContext,
  type InventoryServiceHandlers,
  subscribeInventoryService,
} from "../../generated/checkout/v1/applications_pe.js";
import { orderScopedId } from "../lib/order-scoped-id.js";
import type { ServiceDefinition } from "../lib/run-service.js";
import {
  decideReservation,
  parseStockLevels,
  type RequestedLine,
  shortageReason,
  totalsByProduct,
  unavailableItems,
} from "./reservation.js";

/** Environment variable naming the stock file to seed from instead of `stock.json`. */
export const STOCK_FILE_ENV = "INVENTORY_STOCK_FILE";

/** The stock file next to this module: the demo catalog's products. */
export const DEFAULT_STOCK_FILE = fileURLToPath(new URL("./stock.json", import.meta.url));

/** Units on sale per product. */
export interface StockTable {
  readonly product_id: string;
  /** Units not held for any order; never negative (CHECK). */
  readonly available: number;
}

/**
 * Where an order's reservation stands.
 *
 * - `reserved`: its units are held; a release may follow.
 * - `failed`: the stock did not cover it; nothing was held.
 * - `released`: held, then put back after a cancellation.
 * - `cancelled`: the cancellation (with `release_required`) arrived before the
 *   order's OrderPlaced; nothing is ever reserved for it.
 */
export type ReservationStatus = "reserved" | "failed" | "released" | "cancelled";

/** One row per order: the reservation, the failed attempt, or the tombstone. */
export interface ReservationsTable {
  /** The business key: at most one reservation and one release per order. */
  readonly order_id: string;
  readonly status: ReservationStatus;
  /** `res_<order_id>`; set when reserved (kept after the release). */
  readonly reservation_id: string | null;
  /**
   * The order's lines as JSON, `[{"productId":"sku-mouse","quantity":2}]`, in
   * the order's order: what was held (or asked for). Null on a tombstone
   * until the OrderPlaced arrives.
   */
  readonly items: string | null;
  /** When the row was written: the reservation or failure, or the tombstone. Unix ms. */
  readonly created_at: number;
  /** Last change. Unix ms. */
  readonly updated_at: number;
  /** When the stock was put back. Unix ms. */
  readonly released_at: number | null;
}

/** The inventory service's own tables. */
export interface InventoryTables {
  readonly stock: StockTable;
  readonly reservations: ReservationsTable;
}

/** The inventory service's migrations, portable between SQLite and PostgreSQL. */
export const migrations: Readonly<Record<string, Migration>> = {
  "0001_stock_reservations": {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable("stock")
        .addColumn("product_id", "text", (col) => col.primaryKey())
        .addColumn("available", "integer", (col) => col.notNull().check(sql`available >= 0`))
        .execute();
      await db.schema
        .createTable("reservations")
        .addColumn("order_id", "text", (col) => col.primaryKey())
        .addColumn("status", "text", (col) => col.notNull())
        .addColumn("reservation_id", "text")
        .addColumn("items", "text")
        .addColumn("created_at", "bigint", (col) => col.notNull())
        .addColumn("updated_at", "bigint", (col) => col.notNull())
        .addColumn("released_at", "bigint")
        .execute();
    },
  },
};

/** Rows per INSERT when seeding: far below both databases' parameter limits. */
const SEED_CHUNK = 500;

/**
 * Insert the products of `levels` that `stock` does not have yet, and leave
 * the others alone: a restart must not undo the reservations made since the
 * first start. Returns how many were inserted.
 */
export async function seedStock(
  store: Store<InventoryTables>,
  levels: ReadonlyMap<string, number>,
): Promise<number> {
  const rows = [...levels].map(([product_id, available]) => ({ product_id, available }));
  return store.transaction(async (tx) => {
    let inserted = 0;
    for (let start = 0; start < rows.length; start += SEED_CHUNK) {
      const result = await tx.db
        .insertInto("stock")
        .values(rows.slice(start, start + SEED_CHUNK))
        .onConflict((oc) => oc.column("product_id").doNothing())
        .executeTakeFirst();
      inserted += Number(result.numInsertedOrUpdatedRows ?? 0n);
    }
    return inserted;
  });
}

async function readStockFile(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `cannot read the stock file ${file} (${STOCK_FILE_ENV} names another): ${reasonToString(error)}`,
      { cause: error },
    );
  }
}

/** What the inventory handlers need besides the event. */
export interface InventoryHandlerOptions {
  /** The store's dialect: rows are locked with FOR UPDATE on PostgreSQL only. */
  readonly dialect: StoreDialect;
  /** Clock in Unix milliseconds. @default Date.now */
  readonly now?: () => number;
}

type Tx = StoreTransaction<InventoryTables>;

/** A reservation row's `items`, read back. */
function parseItems(orderId: string, json: string | null): RequestedLine[] {
  const parsed: unknown = json === null ? null : JSON.parse(json);
  if (
    !Array.isArray(parsed) ||
    !parsed.every(
      (item: unknown) =>
        typeof item === "object" &&
        item !== null &&
        typeof (item as RequestedLine).productId === "string" &&
        Number.isInteger((item as RequestedLine).quantity),
    )
  ) {
    throw new PermanentError(`order ${orderId}: its reservation's items are not readable`);
  }
  return parsed as RequestedLine[];
}

/**
 * The business logic of application `inventory`.
 *
 * - `reserveStock` (OrderPlaced): locks the stock of the order's products,
 *   and when it covers every product's total, takes it, records `reserved`
 *   (`res_<order_id>`) and publishes InventoryReserved with the order's
 *   lines; otherwise records `failed` and publishes InventoryReservationFailed
 *   with every product short of stock (unknown products have 0). An order
 *   that already has a row is not reserved again; one that finds a
 *   `cancelled` tombstone only records its lines.
 * - `releaseStock` (OrderCancelled with `release_required`): a `reserved` row
 *   gives back exactly what it took, becomes `released` and publishes
 *   InventoryReleased; no row yet → a `cancelled` tombstone; `failed`,
 *   `released` or `cancelled` → nothing. Without `release_required` it does
 *   nothing at all.
 */
export function createInventoryHandlers(
  options: InventoryHandlerOptions,
): InventoryServiceHandlers<InventoryServiceContext<InventoryTables>> {
  const now = options.now ?? Date.now;
  const locking = options.dialect === "postgres";
  const lockReservation = (tx: Tx, orderId: string) =>
    tx.db
      .selectFrom("reservations")
      .selectAll()
      .where("order_id", "=", orderId)
      .$if(locking, (qb) => qb.forUpdate())
      .executeTakeFirst();
  // Every path locks stock rows through this one query, in the database's
  // product id order, so two transactions never wait on each other crosswise.
  const lockStock = async (tx: Tx, productIds: readonly string[]) => {
    const rows = await tx.db
      .selectFrom("stock")
      .select(["product_id", "available"])
      .where("product_id", "in", productIds)
      .orderBy("product_id")
      .$if(locking, (qb) => qb.forUpdate())
      .execute();
    return new Map(rows.map((row) => [row.product_id, Number(row.available)]));
  };
  const insertIfNew = async (tx: Tx, row: Selectable<ReservationsTable>): Promise<boolean> => {
    const result = await tx.db
      .insertInto("reservations")
      .values(row)
      .onConflict((oc) => oc.column("order_id").doNothing())
      .executeTakeFirst();
    return result.numInsertedOrUpdatedRows === 1n;
  };

  return {
    async reserveStock(event, { tx, publisher, log }) {
      const orderId = event.orderId;
      const lines: RequestedLine[] = event.items.map((item) => ({
        productId: item.productId,
        quantity: item.quantity,
      }));
      const at = now();
      const onKnownOrder = async (known: Selectable<ReservationsTable> | undefined) => {
        if (known?.status === "cancelled") {
          if (known.items === null) {
            await tx.db
              .updateTable("reservations")
              .set({ items: JSON.stringify(lines), updated_at: at })
              .where("order_id", "=", orderId)
              .execute();
          }
          log.info(
            { orderId, op: "reserve" },
            "not reserved: the order was cancelled before it was placed",
          );
          return;
        }
        log.info(
          { orderId, op: "reserve", status: known?.status },
          "not reserved again: the order already has a reservation",
        );
      };

      const known = await lockReservation(tx, orderId);
      if (known !== undefined) {
        await onKnownOrder(known);
        return;
      }
      const totals = totalsByProduct(lines);
      const stock = await lockStock(tx, [...totals.keys()]);
      const decision = decideReservation(lines, stock);
      const reservationId = orderScopedId("res", orderId);
      // Insert before touching stock: if a cancellation on another replica
      // tombstoned the order since the read above, this is where we learn it.
      const inserted = await insertIfNew(tx, {
        order_id: orderId,
        status: decision.kind === "reserved" ? "reserved" : "failed",
        reservation_id: decision.kind === "reserved" ? reservationId : null,
        items: JSON.stringify(lines),
        created_at: at,
        updated_at: at,
        released_at: null,
      });
      if (!inserted) {
        await onKnownOrder(await lockReservation(tx, orderId));
        return;
      }
      switch (decision.kind) {
        case "reserved":
          for (const [productId, quantity] of decision.totals) {
            const taken = await tx.db
              .updateTable("stock")
              .set((eb) => ({ available: eb("available", "-", quantity) }))
              .where("product_id", "=", productId)
              .where("available", ">=", quantity)
              .executeTakeFirst();
            if (taken.numUpdatedRows !== 1n) {
              // The rows are locked, so this means the stock changed under us:
              // roll back and let the redelivery decide again.
              throw new Error(`order ${orderId}: stock of ${productId} changed while reserving`);
            }
          }
          await publisher.publishInventoryReserved({
            orderId,
            reservationId,
            items: lines,
            reservedAt: timestampFromMs(at),
          });
          log.info(
            { orderId, op: "reserve", reservationId, products: decision.totals.size },
            "reserved",
          );
          return;
        case "unavailable": {
          const reason = shortageReason(decision.shortages);
          await publisher.publishInventoryReservationFailed({
            orderId,
            unavailableItems: unavailableItems(decision.shortages),
            reason,
            failedAt: timestampFromMs(at),
          });
          log.info({ orderId, op: "reserve", reason }, "not reserved: out of stock");
          return;
        }
      }
    },

    async releaseStock(event, { tx, publisher, log }) {
      const orderId = event.orderId;
      if (!event.releaseRequired) {
        log.debug({ orderId, op: "release" }, "no release required");
        return;
      }
      const at = now();
      const tombstoned = await insertIfNew(tx, {
        order_id: orderId,
        status: "cancelled",
        reservation_id: null,
        items: null,
        created_at: at,
        updated_at: at,
        released_at: null,
      });
      if (tombstoned) {
        log.info(
          { orderId, op: "release" },
          "cancelled before it was reserved: nothing will be reserved for the order",
        );
        return;
      }
      const reservation = await lockReservation(tx, orderId);
      if (reservation?.status !== "reserved") {
        log.info({ orderId, op: "release", status: reservation?.status }, "nothing to release");
        return;
      }
      const reservationId = reservation.reservation_id;
      if (reservationId === null) {
        throw new PermanentError(`order ${orderId}: its reservation is held but has no id`);
      }
      const lines = parseItems(orderId, reservation.items);
      const totals = totalsByProduct(lines);
      await lockStock(tx, [...totals.keys()]);
      for (const [productId, quantity] of totals) {
        const returned = await tx.db
          .updateTable("stock")
          .set((eb) => ({ available: eb("available", "+", quantity) }))
          .where("product_id", "=", productId)
          .executeTakeFirst();
        if (returned.numUpdatedRows !== 1n) {
          throw new PermanentError(
            `order ${orderId}: product ${productId} of its reservation is no longer in stock`,
          );
        }
      }
      await tx.db
        .updateTable("reservations")
        .set({ status: "released", released_at: at, updated_at: at })
        .where("order_id", "=", orderId)
        .execute();
      await publisher.publishInventoryReleased({
        orderId,
        reservationId,
        items: lines,
        releasedAt: timestampFromMs(at),
      });
      log.info({ orderId, op: "release", reservationId, products: totals.size }, "released");
    },
  };
}

/**
 * The inventory service: seeds `stock` from `INVENTORY_STOCK_FILE` (default
 * `services/inventory/stock.json`), then consumes `inventory.reserve-stock`
 * and `inventory.release-stock` with exactly-once effects.
 */
export const definition: ServiceDefinition<InventoryTables> = {
  name: "inventory",
  migrations,
  async start({ pubsub, store, log, env }) {
    const file = env[STOCK_FILE_ENV]?.trim() || DEFAULT_STOCK_FILE;
    const seeded = await seedStock(store, parseStockLevels(await readStockFile(file), file));
    const consumer = subscribeInventoryService(
      pubsub,
      createInventoryHandlers({ dialect: store.dialect }),
      { store, logger: log },
    );
    return {
      closables: [consumer],
      ready: { subscriptions: consumer.subscriptions, stockFile: file, productsSeeded: seeded },
    };
  },
};
