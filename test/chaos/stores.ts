/**
 * Reading the services' stores as they are, beside the running services:
 * the SQLite files opened read-only, or the PostgreSQL schemas queried over
 * a connection of the run's own (not through the proxy the faults cut).
 */
import { join } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { SERVICES, type ServiceName } from "./schedule.js";

/** One entry of an order's event log. */
export interface OrderLogRow {
  readonly type: string;
  readonly eventId: string;
  /** The event as proto3 JSON. */
  readonly payload: string;
}

/** A row of payment's `payments`. */
export interface PaymentRow {
  readonly status: string;
  readonly amountMinor: number | null;
  readonly currencyCode: string | null;
  readonly paymentId: string | null;
  readonly declineCode: string | null;
  readonly refundId: string | null;
}

/** A row of inventory's `reservations`. */
export interface ReservationRow {
  readonly status: string;
  readonly items: ReadonlyArray<{ readonly productId: string; readonly quantity: number }> | null;
}

/** Everything the invariants read, at one moment. */
export interface StoreSnapshot {
  /** Order id → its event log in sequence order. */
  readonly orders: ReadonlyMap<string, readonly OrderLogRow[]>;
  readonly payments: ReadonlyMap<string, PaymentRow>;
  readonly reservations: ReadonlyMap<string, ReservationRow>;
  /** Product id → units available. */
  readonly stock: ReadonlyMap<string, number>;
  /** Order id → shipments (the table allows one; counted to prove it). */
  readonly shipments: ReadonlyMap<string, number>;
  /** Order id → notice kind → sent (the e-mail went out) or only claimed. */
  readonly notifications: ReadonlyMap<string, ReadonlyMap<string, { readonly sent: boolean }>>;
  /** Service → outbox rows not yet published. */
  readonly pendingOutbox: ReadonlyMap<ServiceName, number>;
  /** Subscription → the event ids its inbox claimed (handled once). */
  readonly claims: ReadonlyMap<string, ReadonlySet<string>>;
}

type Row = Record<string, unknown>;

/** Reads the stores of every service. */
export interface StoreReader {
  read(): Promise<StoreSnapshot>;
  close(): Promise<void>;
}

const num = (value: unknown): number => Number(value);
const numOrNull = (value: unknown): number | null =>
  value === null || value === undefined ? null : Number(value);
const strOrNull = (value: unknown): string | null =>
  value === null || value === undefined ? null : String(value);

/** Build the snapshot from a query function; `table(service, name)` names a table. */
async function snapshot(
  query: (service: ServiceName, sql: string) => Promise<Row[]>,
  table: (service: ServiceName, name: string) => string,
): Promise<StoreSnapshot> {
  const orders = new Map<string, OrderLogRow[]>();
  for (const row of await query(
    "order",
    `select order_id, event_type, event_id, payload from ${table("order", "order_events")} order by order_id, sequence`,
  )) {
    const id = String(row.order_id);
    const log = orders.get(id) ?? [];
    log.push({
      type: String(row.event_type).replace(/^checkout\.v1\./, ""),
      eventId: String(row.event_id),
      payload: String(row.payload),
    });
    orders.set(id, log);
  }
  const payments = new Map<string, PaymentRow>();
  for (const row of await query(
    "payment",
    `select order_id, status, amount_minor, currency_code, payment_id, decline_code, refund_id from ${table("payment", "payments")}`,
  )) {
    payments.set(String(row.order_id), {
      status: String(row.status),
      amountMinor: numOrNull(row.amount_minor),
      currencyCode: strOrNull(row.currency_code),
      paymentId: strOrNull(row.payment_id),
      declineCode: strOrNull(row.decline_code),
      refundId: strOrNull(row.refund_id),
    });
  }
  const reservations = new Map<string, ReservationRow>();
  for (const row of await query(
    "inventory",
    `select order_id, status, items from ${table("inventory", "reservations")}`,
  )) {
    reservations.set(String(row.order_id), {
      status: String(row.status),
      items:
        row.items === null
          ? null
          : (JSON.parse(String(row.items)) as Array<{ productId: string; quantity: number }>),
    });
  }
  const stock = new Map<string, number>();
  for (const row of await query(
    "inventory",
    `select product_id, available from ${table("inventory", "stock")}`,
  )) {
    stock.set(String(row.product_id), num(row.available));
  }
  const shipments = new Map<string, number>();
  for (const row of await query(
    "shipping",
    `select order_id, count(*) as n from ${table("shipping", "shipments")} group by order_id`,
  )) {
    shipments.set(String(row.order_id), num(row.n));
  }
  const notifications = new Map<string, Map<string, { sent: boolean }>>();
  for (const row of await query(
    "notification",
    `select order_id, kind, sent_at from ${table("notification", "notifications")}`,
  )) {
    const id = String(row.order_id);
    const kinds = notifications.get(id) ?? new Map<string, { sent: boolean }>();
    kinds.set(String(row.kind), { sent: row.sent_at !== null });
    notifications.set(id, kinds);
  }
  const pendingOutbox = new Map<ServiceName, number>();
  const claims = new Map<string, Set<string>>();
  for (const service of SERVICES) {
    const [pending] = await query(
      service,
      `select count(*) as n from ${table(service, "protoevents_outbox")} where sent_at is null`,
    );
    pendingOutbox.set(service, num(pending?.n ?? 0));
    for (const row of await query(
      service,
      `select subscription, event_id from ${table(service, "protoevents_inbox")}`,
    )) {
      const subscription = String(row.subscription);
      const ids = claims.get(subscription) ?? new Set<string>();
      ids.add(String(row.event_id));
      claims.set(subscription, ids);
    }
  }
  return {
    orders,
    payments,
    reservations,
    stock,
    shipments,
    notifications,
    pendingOutbox,
    claims,
  };
}

/** The SQLite files `<dataDir>/<service>.sqlite`, each opened read-only for one read. */
export function sqliteReader(dataDir: string): StoreReader {
  return {
    async read() {
      const open = new Map<ServiceName, Database.Database>();
      try {
        return await snapshot(
          async (service, sql) => {
            let db = open.get(service);
            if (db === undefined) {
              db = new Database(join(dataDir, `${service}.sqlite`), {
                readonly: true,
                fileMustExist: true,
              });
              open.set(service, db);
            }
            return db.prepare(sql).all() as Row[];
          },
          (_service, name) => name,
        );
      } finally {
        for (const db of open.values()) {
          db.close();
        }
      }
    },
    async close() {},
  };
}

/** The schemas named after the services in the run's PostgreSQL database. */
export function postgresReader(connectionString: string): StoreReader {
  const client = new pg.Client({ connectionString });
  let connected: Promise<void> | undefined;
  return {
    async read() {
      connected ??= client.connect().then(() => undefined);
      await connected;
      // One snapshot of all schemas: a repeatable-read transaction.
      await client.query("begin isolation level repeatable read read only");
      try {
        return await snapshot(
          async (_service, sql) => (await client.query(sql)).rows as Row[],
          (service, name) => `"${service}"."${name}"`,
        );
      } finally {
        await client.query("rollback");
      }
    },
    async close() {
      if (connected !== undefined) {
        await client.end().catch(() => undefined);
      }
    },
  };
}
