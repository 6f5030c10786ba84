/**
 * What the SQLite and PostgreSQL stores share: every query (written once on
 * Kysely), the protoevents tables' migration, running migrations, error
 * classification and the {@link Store} object itself. The dialect files only
 * open a connection and hand it here.
 *
 * @internal Not part of the public surface; import from `./index.js`.
 */
import { randomUUID } from "node:crypto";
import {
  type ColumnDataType,
  type ColumnDefinitionBuilder,
  CompiledQuery,
  type ControlledTransaction,
  type Kysely,
  type Migration,
  type MigrationProvider,
  Migrator,
  sql,
} from "kysely";
import { Code, isProtoeventsError, ProtoeventsError, reasonToString } from "../errors.js";
import { getDefaultLogger } from "../logger.js";
import type {
  OutboxEntry,
  PendingOutboxRow,
  ProtoeventsTables,
  Store,
  StoreDialect,
  StoreTransaction,
} from "./store.js";

/** Kysely's migration type, re-exported so services need not import kysely for it. */
export type { Migration } from "kysely";

/** Migration bookkeeping table of the protoevents tables. */
export const PROTOEVENTS_MIGRATION_TABLE = "protoevents_migration";
/** Migration bookkeeping table of the service's own migrations. */
export const SERVICE_MIGRATION_TABLE = "service_migration";

/**
 * Rows per INSERT / ids per `IN (...)`. Keeps every statement far below
 * SQLite's 32766 and PostgreSQL's 65535 bound-parameter limits (an outbox row
 * binds 7 parameters).
 */
const CHUNK_SIZE = 500;

/** Longest `last_error` kept; publish errors can carry whole stack traces. */
const MAX_ERROR_LENGTH = 2000;

// ---- errors ----------------------------------------------------------------

/** SQLSTATEs that mean "the database, not the statement, failed; try again". */
const transientSqlStates: ReadonlySet<string> = new Set([
  "40001", // serialization_failure
  "40P01", // deadlock_detected
  "57P01", // admin_shutdown (also pg_terminate_backend)
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now (starting up, shutting down)
  "53300", // too_many_connections
]);

/** Node socket errors of a connection that was refused, dropped or timed out. */
const transientErrnoCodes: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/**
 * Messages of pg / pg-pool / Kysely errors that carry no code but mean the
 * connection is gone (pg rejects a query on a dead socket with these).
 */
const transientMessages: readonly RegExp[] = [
  /^Connection terminated/,
  /not queryable/,
  /timeout exceeded when trying to connect/,
  /^Postgres connection has been discarded/,
];

/**
 * Whether an error says the database could not be reached or could not go on
 * with the transaction (rather than that a statement was wrong): a refused,
 * lost or timed-out connection, PostgreSQL connection exceptions (class 08),
 * administrator shutdown (57P01–57P03), serialization failures and deadlocks
 * (40001, 40P01), and SQLite's BUSY/LOCKED/IOERR/FULL/CANTOPEN. Follows
 * `cause` and AggregateError members.
 *
 * @internal
 */
export function isTransientStoreError(error: unknown, depth = 0): boolean {
  if (depth > 5 || typeof error !== "object" || error === null) {
    return false;
  }
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string") {
    if (transientSqlStates.has(code) || /^08[0-9A-Z]{3}$/.test(code)) {
      return true;
    }
    if (transientErrnoCodes.has(code)) {
      return true;
    }
    if (/^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|PROTOCOL)/.test(code)) {
      return true;
    }
  }
  if (error instanceof Error && transientMessages.some((re) => re.test(error.message))) {
    return true;
  }
  if (
    error instanceof AggregateError &&
    error.errors.some((e) => isTransientStoreError(e, depth + 1))
  ) {
    return true;
  }
  return isTransientStoreError((error as { cause?: unknown }).cause, depth + 1);
}

/**
 * Whether an error says an already open connection died (as opposed to a new
 * one being refused): worth retrying once more on another pooled connection
 * when nothing ran on it yet.
 *
 * @internal
 */
export function isStaleConnectionError(error: unknown): boolean {
  if (typeof error !== "object" || error === null) {
    return false;
  }
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string") {
    if (/^(57P0[1-3]|08[0-9A-Z]{3})$/.test(code) || code === "ECONNRESET" || code === "EPIPE") {
      return true;
    }
  }
  return (
    error instanceof Error &&
    /^Connection terminated unexpectedly|not queryable|^Postgres connection has been discarded/.test(
      error.message,
    )
  );
}

/** A readable reason, also for an AggregateError whose own message is empty. */
function describeCause(cause: unknown): string {
  if (cause instanceof AggregateError && cause.message === "") {
    const first: unknown = cause.errors[0];
    return first === undefined ? "AggregateError" : describeCause(first);
  }
  const text = reasonToString(cause);
  if (text !== "") {
    return text;
  }
  const code = (cause as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "unknown error";
}

/**
 * `store_unavailable` (retryable): `"<store>: <what failed>: <reason>"`.
 *
 * @internal
 */
export function storeUnavailable(store: string, what: string, cause: unknown): ProtoeventsError {
  return new ProtoeventsError(Code.StoreUnavailable, `${store}: ${what}: ${describeCause(cause)}`, {
    cause,
  });
}

/**
 * Classify a failure of a store operation: a database that cannot be reached
 * or is busy is `store_unavailable` (retried, logged as such); anything else
 * (a constraint the rows break, a bug) is `internal`, so it is not mistaken
 * for an outage. ProtoeventsErrors pass through.
 */
async function guard<T>(store: string, what: string, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    if (isProtoeventsError(error)) {
      throw error;
    }
    if (isTransientStoreError(error)) {
      throw storeUnavailable(store, what, error);
    }
    throw new ProtoeventsError(Code.Internal, `${store}: ${what}: ${describeCause(error)}`, {
      cause: error,
    });
  }
}

// ---- queries ---------------------------------------------------------------

/** Kysely over the protoevents tables, whatever else the database holds. */
type ProtoeventsDb = Kysely<ProtoeventsTables>;

function protoevents<DB>(db: Kysely<DB>): ProtoeventsDb {
  // Kysely<DB & ProtoeventsTables> is not assignable to Kysely<ProtoeventsTables>
  // (DB is invariant in Kysely's types), but every query here only names our tables.
  return db as unknown as ProtoeventsDb;
}

/**
 * Claim `(subscription, eventId)`: true when this statement inserted the row.
 * The unique key serialises concurrent claims: on PostgreSQL a second
 * inserter waits for the first transaction and then finds the conflict (or
 * inserts, if the first rolled back); on SQLite writers are serialised anyway.
 *
 * @internal
 */
export async function claimInbox(
  db: ProtoeventsDb,
  claim: CompiledQuery,
  subscription: string,
  eventId: string,
  now: number,
): Promise<boolean> {
  const result = await db.executeQuery(CompiledQuery.raw(claim.sql, [subscription, eventId, now]));
  return (result.numAffectedRows ?? 0n) > 0n;
}

/**
 * The claim, built and compiled once per store (it runs for every delivery);
 * {@link claimInbox} binds the subscription, event id and time, in this order.
 *
 * @internal
 */
export function compileClaim(db: ProtoeventsDb): CompiledQuery {
  return db
    .insertInto("protoevents_inbox")
    .values({ subscription: "", event_id: "", claimed_at: 0 })
    .onConflict((oc) => oc.columns(["subscription", "event_id"]).doNothing())
    .compile();
}

/** A Buffer over the same memory: both drivers bind Buffers as blobs/bytea. */
function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Append entries to the outbox. Multi-row INSERTs assign ids in VALUES order
 * on both databases, so ids follow the order of `entries`.
 *
 * @internal
 */
export async function enqueueOutbox(
  db: ProtoeventsDb,
  entries: readonly OutboxEntry[],
  now: number,
  dialect: StoreDialect,
): Promise<void> {
  if (dialect === "postgres") {
    // Row ids are the relay's order. Concurrent transactions that enqueue one
    // ordering key take turns until commit, so each key's ids grow in commit
    // order; keys are locked sorted, so two such transactions cannot deadlock
    // within one enqueue. SQLite has one writer at a time anyway.
    const keys = [
      ...new Set(
        entries.map((e) => e.orderingKey).filter((k): k is string => k !== undefined && k !== ""),
      ),
    ].sort();
    for (const key of keys) {
      await sql`SELECT pg_advisory_xact_lock(${ORDERING_KEY_LOCK_NAMESPACE}, hashtext(${key}))`.execute(
        db,
      );
    }
  }
  for (let start = 0; start < entries.length; start += CHUNK_SIZE) {
    const rows = entries.slice(start, start + CHUNK_SIZE).map((entry) => ({
      event_id: entry.eventId,
      event_type: entry.eventType,
      topic: entry.topic,
      ordering_key: entry.orderingKey ?? null,
      data: asBuffer(entry.data),
      attributes: JSON.stringify(entry.attributes),
      created_at: now,
      sent_at: null,
      last_error: null,
    }));
    await db.insertInto("protoevents_outbox").values(rows).execute();
  }
}

/** First half of the two-int4 advisory locks on ordering keys ("pevk"). */
const ORDERING_KEY_LOCK_NAMESPACE = 0x7065766b;

/** The lease the outbox relay works under. */
const OUTBOX_LEASE = "outbox";

/**
 * Take (or renew) a lease when it is free, expired, or already ours: one
 * atomic upsert. Resolves true when `holder` holds it until `now + ttlMs`.
 *
 * @internal
 */
export async function takeLease(
  db: ProtoeventsDb,
  name: string,
  holder: string,
  now: number,
  ttlMs: number,
): Promise<boolean> {
  const row = await db
    .insertInto("protoevents_lease")
    .values({ name, holder, expires_at: now + ttlMs })
    .onConflict((oc) =>
      oc
        .column("name")
        .doUpdateSet({ holder, expires_at: now + ttlMs })
        .where((eb) =>
          eb.or([
            eb("protoevents_lease.expires_at", "<=", now),
            eb("protoevents_lease.holder", "=", holder),
          ]),
        ),
    )
    .returning("holder")
    .executeTakeFirst();
  return row?.holder === holder;
}

/** Give a lease up (expire it now) if `holder` still holds it. @internal */
export async function releaseLease(db: ProtoeventsDb, name: string, holder: string): Promise<void> {
  await db
    .updateTable("protoevents_lease")
    .set({ expires_at: 0 })
    .where("name", "=", name)
    .where("holder", "=", holder)
    .execute();
}

/**
 * Unsent outbox rows, oldest (lowest id) first. Served by the
 * `(sent_at, id)` index, so sent rows waiting for prune cost nothing.
 *
 * @internal
 */
export async function selectPendingOutbox(
  db: ProtoeventsDb,
  limit: number,
): Promise<PendingOutboxRow[]> {
  const rows = await db
    .selectFrom("protoevents_outbox")
    .select([
      "id",
      "event_id",
      "event_type",
      "topic",
      "ordering_key",
      "data",
      "attributes",
      "created_at",
      "attempts",
    ])
    .where("sent_at", "is", null)
    .orderBy("id")
    .limit(limit)
    .execute();
  return rows.map((row) => ({
    id: Number(row.id),
    eventId: row.event_id,
    eventType: row.event_type,
    topic: row.topic,
    orderingKey: row.ordering_key ?? undefined,
    data: row.data,
    attributes: JSON.parse(row.attributes) as Record<string, string>,
    createdAt: Number(row.created_at),
    attempts: Number(row.attempts),
  }));
}

/**
 * Mark rows sent. A row already marked keeps its first `sent_at`.
 *
 * @internal
 */
export async function markOutboxSent(
  db: ProtoeventsDb,
  ids: readonly number[],
  sentAt: number,
): Promise<void> {
  for (let start = 0; start < ids.length; start += CHUNK_SIZE) {
    await db
      .updateTable("protoevents_outbox")
      .set({ sent_at: sentAt })
      .where("id", "in", ids.slice(start, start + CHUNK_SIZE))
      .where("sent_at", "is", null)
      .execute();
  }
}

/**
 * Count a failed publish attempt and keep its error (truncated).
 *
 * @internal
 */
export async function markOutboxFailed(
  db: ProtoeventsDb,
  id: number,
  error: string,
): Promise<void> {
  await db
    .updateTable("protoevents_outbox")
    .set((eb) => ({
      attempts: eb("attempts", "+", 1),
      last_error: error.length > MAX_ERROR_LENGTH ? error.slice(0, MAX_ERROR_LENGTH) : error,
    }))
    .where("id", "=", id)
    .execute();
}

/**
 * Delete claims made and rows sent before `olderThan`. Pending rows have a
 * null `sent_at`, which no comparison matches, so they are never deleted.
 *
 * @internal
 */
export async function pruneStore(
  db: ProtoeventsDb,
  olderThan: number,
): Promise<{ inbox: number; outbox: number }> {
  return db.transaction().execute(async (trx) => {
    const inbox = await trx
      .deleteFrom("protoevents_inbox")
      .where("claimed_at", "<", olderThan)
      .executeTakeFirst();
    const outbox = await trx
      .deleteFrom("protoevents_outbox")
      .where("sent_at", "is not", null)
      .where("sent_at", "<", olderThan)
      .executeTakeFirst();
    return { inbox: Number(inbox.numDeletedRows), outbox: Number(outbox.numDeletedRows) };
  });
}

// ---- migrations ------------------------------------------------------------

/**
 * The only DDL that differs between the dialects: the byte column type and
 * the auto-incrementing row id. Everything else in the migrations is shared.
 */
function dialectColumns(dialect: StoreDialect): {
  readonly bytes: ColumnDataType;
  readonly idType: ColumnDataType;
  readonly id: (col: ColumnDefinitionBuilder) => ColumnDefinitionBuilder;
} {
  switch (dialect) {
    case "sqlite":
      // AUTOINCREMENT: ids are never reused, even after prune deleted the newest rows.
      return { bytes: "blob", idType: "integer", id: (col) => col.primaryKey().autoIncrement() };
    case "postgres":
      return {
        bytes: "bytea",
        idType: "bigint",
        id: (col) => col.primaryKey().generatedAlwaysAsIdentity(),
      };
  }
}

/**
 * The protoevents tables, as Kysely migrations. Statements use IF NOT EXISTS:
 * Kysely runs SQLite migrations outside a transaction, so a crash half way
 * through must not make the next start fail.
 */
function protoeventsMigrations(dialect: StoreDialect): Record<string, Migration> {
  const columns = dialectColumns(dialect);
  return {
    "0001_inbox_outbox": {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable("protoevents_inbox")
          .ifNotExists()
          .addColumn("subscription", "text", (col) => col.notNull())
          .addColumn("event_id", "text", (col) => col.notNull())
          .addColumn("claimed_at", "bigint", (col) => col.notNull())
          .addPrimaryKeyConstraint("protoevents_inbox_pkey", ["subscription", "event_id"])
          .execute();
        await db.schema
          .createIndex("protoevents_inbox_claimed_at")
          .ifNotExists()
          .on("protoevents_inbox")
          .column("claimed_at")
          .execute();
        await db.schema
          .createTable("protoevents_outbox")
          .ifNotExists()
          .addColumn("id", columns.idType, columns.id)
          .addColumn("event_id", "text", (col) => col.notNull())
          .addColumn("event_type", "text", (col) => col.notNull())
          .addColumn("topic", "text", (col) => col.notNull())
          .addColumn("ordering_key", "text")
          .addColumn("data", columns.bytes, (col) => col.notNull())
          .addColumn("attributes", "text", (col) => col.notNull())
          .addColumn("created_at", "bigint", (col) => col.notNull())
          .addColumn("sent_at", "bigint")
          .addColumn("attempts", "integer", (col) => col.notNull().defaultTo(0))
          .addColumn("last_error", "text")
          .execute();
        // pendingOutbox reads `sent_at IS NULL ORDER BY id`; prune reads `sent_at < t`.
        await db.schema
          .createIndex("protoevents_outbox_sent_at_id")
          .ifNotExists()
          .on("protoevents_outbox")
          .columns(["sent_at", "id"])
          .execute();
      },
    },
    "0002_lease": {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable("protoevents_lease")
          .ifNotExists()
          .addColumn("name", "text", (col) => col.primaryKey())
          .addColumn("holder", "text", (col) => col.notNull())
          .addColumn("expires_at", "bigint", (col) => col.notNull())
          .execute();
      },
    },
  };
}

/** Where migrations run and how failures are named. @internal */
export interface MigrateOptions {
  readonly dialect: StoreDialect;
  /** The store's name for error messages. */
  readonly store: string;
  /** PostgreSQL schema holding the migration bookkeeping tables. */
  readonly schema?: string;
  /** The service's own migrations, applied after the protoevents tables. */
  readonly migrations?: Readonly<Record<string, Migration>>;
}

/**
 * Apply the protoevents migrations (bookkeeping in `protoevents_migration`),
 * then the service's (bookkeeping in `service_migration`). Kysely's Migrator
 * tolerates concurrent bookkeeping-table creation and, on PostgreSQL, runs
 * migrations under an advisory lock, so replicas starting together apply each
 * migration once.
 *
 * @internal
 */
export async function migrateStore<DB>(db: Kysely<DB>, options: MigrateOptions): Promise<void> {
  await runMigrator(
    db,
    options,
    PROTOEVENTS_MIGRATION_TABLE,
    protoeventsMigrations(options.dialect),
  );
  if (options.migrations !== undefined && Object.keys(options.migrations).length > 0) {
    await runMigrator(db, options, SERVICE_MIGRATION_TABLE, options.migrations);
  }
}

async function runMigrator<DB>(
  db: Kysely<DB>,
  options: MigrateOptions,
  table: string,
  migrations: Readonly<Record<string, Migration>>,
): Promise<void> {
  const provider: MigrationProvider = { getMigrations: async () => ({ ...migrations }) };
  const migrator = new Migrator({
    db,
    provider,
    migrationTableName: table,
    migrationLockTableName: `${table}_lock`,
    // Without a schema, Kysely looks for its bookkeeping table in every schema of
    // the database and would find another service's.
    ...(options.schema === undefined ? {} : { migrationTableSchema: options.schema }),
  });
  // On PostgreSQL the store's dialect limits Kysely's introspection to the
  // store's schema (see StoreDialect in postgres.ts), so schemas created and
  // dropped elsewhere in the database cannot fail this.
  const { error, results } = await migrator.migrateToLatest();
  if (error === undefined) {
    return;
  }
  const failed = results?.find((result) => result.status === "Error")?.migrationName;
  const what = failed === undefined ? `migrating ${table} failed` : `migration ${failed} failed`;
  if (isTransientStoreError(error)) {
    throw storeUnavailable(options.store, what, error);
  }
  throw new ProtoeventsError(Code.Internal, `${options.store}: ${what}: ${describeCause(error)}`, {
    cause: error,
  });
}

// ---- the store -------------------------------------------------------------

/** How long the outbox relay's lease lasts unless renewed: a hung relay is replaced after this. */
export const DEFAULT_OUTBOX_LEASE_MS = 30_000;

/** What a dialect hands to {@link createKyselyStore}. @internal */
export interface KyselyStoreOptions<DB> {
  readonly dialect: StoreDialect;
  /** Kysely on the opened, migrated database; destroyed by `close()`. */
  readonly db: Kysely<DB & ProtoeventsTables>;
  /** The store's name in error messages, e.g. `sqlite store /data/order.sqlite`. */
  readonly name: string;
  /** Clock in Unix milliseconds, for claims and outbox rows. */
  readonly now?: () => number;
  /**
   * How long the outbox relay's lease lasts without renewal (see
   * {@link Store.lockOutbox}). @default DEFAULT_OUTBOX_LEASE_MS
   */
  readonly outboxLeaseMs?: number;
  /**
   * How often to try BEGIN when the connection handed out was already dead
   * (see {@link isStaleConnectionError}); a pool's size + 1.
   *
   * @default 1
   */
  readonly beginAttempts?: number;
}

/**
 * The {@link Store} over an opened and migrated Kysely instance; identical for
 * both dialects.
 *
 * @internal
 */
export function createKyselyStore<DB>(options: KyselyStoreOptions<DB>): Store<DB> {
  const { db, name, dialect } = options;
  const now = options.now ?? Date.now;
  const leaseMs = options.outboxLeaseMs ?? DEFAULT_OUTBOX_LEASE_MS;
  const beginAttempts = options.beginAttempts ?? 1;
  const pe = protoevents(db);
  const claimQuery = compileClaim(pe);
  const listeners = new Set<() => void>();
  const inFlight = new Set<Promise<unknown>>();
  let closing: Promise<void> | undefined;

  /** Run an operation unless closed, and let close() wait for it. */
  function track<T>(operation: () => Promise<T>): Promise<T> {
    if (closing !== undefined) {
      return Promise.reject(new ProtoeventsError(Code.Closed, `${name}: the store is closed`));
    }
    const promise = operation();
    inFlight.add(promise);
    const forget = () => inFlight.delete(promise);
    promise.then(forget, forget);
    return promise;
  }

  function notifyOutboxCommit(): void {
    for (const listener of [...listeners]) {
      try {
        listener();
      } catch (error) {
        // The transaction committed; a listener cannot undo that, so only report it.
        getDefaultLogger().warn({ err: error, store: name }, "outbox commit listener threw");
      }
    }
  }

  /**
   * BEGIN, on another pooled connection when the one handed out turns out to
   * be dead (PostgreSQL restarted or terminated it while it sat idle, before
   * the pool noticed). Nothing ran on it yet, so retrying is safe; each dead
   * connection is dropped by the pool on release, so `beginAttempts` (pool
   * size + 1) attempts reach a fresh connection.
   */
  async function begin(): Promise<ControlledTransaction<DB & ProtoeventsTables>> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await db.startTransaction().execute();
      } catch (error) {
        if (attempt >= beginAttempts || !isStaleConnectionError(error)) {
          throw storeUnavailable(name, "could not begin a transaction", error);
        }
      }
    }
  }

  /**
   * Run `work` under the outbox lease, renewing it every third of its length,
   * or resolve undefined at once when another relay holds it.
   */
  async function lockOutbox<T>(work: () => Promise<T>): Promise<T | undefined> {
    // Every call is its own holder: two relays on one store object exclude each other too.
    const holder = randomUUID();
    const taken = await guard(name, "taking the outbox lease failed", () =>
      takeLease(pe, OUTBOX_LEASE, holder, now(), leaseMs),
    );
    if (!taken) {
      return undefined;
    }
    const renewal = setInterval(() => {
      takeLease(pe, OUTBOX_LEASE, holder, now(), leaseMs).then(
        (kept) => {
          if (!kept) {
            getDefaultLogger().warn(
              { store: name, op: "relay" },
              "the outbox lease went to another relay while this one worked",
            );
          }
        },
        () => {
          // Cannot reach the store: the lease expires, and another relay may take it.
        },
      );
    }, leaseMs / 3);
    renewal.unref();
    try {
      return await work();
    } finally {
      clearInterval(renewal);
      await releaseLease(pe, OUTBOX_LEASE, holder).catch(() => undefined);
    }
  }

  async function runTransaction<T>(work: (tx: StoreTransaction<DB>) => Promise<T>): Promise<T> {
    const trx = await begin();
    const rollback = async (): Promise<void> => {
      if (trx.isCommitted || trx.isRolledBack) {
        return;
      }
      try {
        await trx.rollback().execute();
      } catch {
        // The connection is gone (the server rolled back) or there was no open
        // transaction left; either way nothing was committed. Kysely releases
        // (and on PostgreSQL discards) the connection regardless.
      }
    };
    let enqueued = false;
    const tx: StoreTransaction<DB> = {
      db: trx,
      claim: (subscription, eventId) =>
        guard(name, "claim failed", () =>
          claimInbox(protoevents(trx), claimQuery, subscription, eventId, now()),
        ),
      enqueue: async (entries) => {
        await guard(name, "enqueue failed", () =>
          enqueueOutbox(protoevents(trx), entries, now(), dialect),
        );
        if (entries.length > 0) {
          enqueued = true;
        }
      },
    };
    let result: T;
    try {
      result = await work(tx);
    } catch (error) {
      await rollback();
      // The caller's own errors pass through unchanged; a database failure that
      // surfaced through one of its queries is still the store's failure.
      if (!isProtoeventsError(error) && isTransientStoreError(error)) {
        throw storeUnavailable(name, "transaction failed", error);
      }
      throw error;
    }
    try {
      await trx.commit().execute();
    } catch (error) {
      await rollback();
      throw storeUnavailable(name, "commit failed", error);
    }
    if (enqueued) {
      notifyOutboxCommit();
    }
    return result;
  }

  return {
    dialect,
    db,
    transaction: (work) => track(() => runTransaction(work)),
    lockOutbox: (work) => track(() => lockOutbox(work)),
    pendingOutbox: (limit) => {
      if (!Number.isInteger(limit) || limit < 0) {
        return Promise.reject(
          new ProtoeventsError(
            Code.InvalidArgument,
            `${name}: limit must be a non-negative integer, got ${limit}`,
          ),
        );
      }
      return track(() =>
        limit === 0
          ? Promise.resolve([])
          : guard(name, "reading pending outbox rows failed", () => selectPendingOutbox(pe, limit)),
      );
    },
    outboxBacklog: () =>
      track(() =>
        guard(name, "counting pending outbox rows failed", async () => {
          const row = await pe
            .selectFrom("protoevents_outbox")
            .select((eb) => eb.fn.countAll<number | string | bigint>().as("pending"))
            .where("sent_at", "is", null)
            .executeTakeFirstOrThrow();
          return Number(row.pending);
        }),
      ),
    markSent: (ids, sentAt) =>
      track(() =>
        guard(name, "marking outbox rows sent failed", () => markOutboxSent(pe, ids, sentAt)),
      ),
    markFailed: (id, error) =>
      track(() =>
        guard(name, "recording a failed publish failed", () => markOutboxFailed(pe, id, error)),
      ),
    prune: (olderThan) => track(() => guard(name, "prune failed", () => pruneStore(pe, olderThan))),
    onOutboxCommit: (listener) => {
      // Wrap so the same function registered twice is two registrations.
      const entry = () => listener();
      listeners.add(entry);
      return () => {
        listeners.delete(entry);
      };
    },
    close: () => {
      closing ??= (async () => {
        await Promise.allSettled([...inFlight]);
        await db.destroy();
      })();
      return closing;
    },
  };
}
