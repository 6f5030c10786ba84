/**
 * The embedded store: one SQLite file per service, opened by one process.
 */
import { mkdir } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import type Database from "better-sqlite3";
import { Kysely, type Migration, type SqliteDatabase, SqliteDialect } from "kysely";
import { createKyselyStore, migrateStore, storeUnavailable } from "./common.js";
import { loadSqliteDriver } from "./drivers.js";
import type { ProtoeventsTables, Store } from "./store.js";

/**
 * How long a statement waits for a lock held by another connection before it
 * fails with SQLITE_BUSY (reported as `store_unavailable`). Only another
 * process (a backup, a CLI) can hold one: this process uses one connection.
 */
const BUSY_TIMEOUT_MS = 5_000;

/** Options of {@link createSqliteStore}. */
export interface SqliteStoreOptions {
  /**
   * The database file. Its parent directory is created if missing. Only one
   * process may use a file at a time.
   */
  readonly file: string;
  /**
   * The service's own migrations, by name; applied in name order after the
   * protoevents tables, recorded in the `service_migration` table.
   */
  readonly migrations?: Readonly<Record<string, Migration>>;
}

/**
 * Open (creating if needed) a SQLite store and apply pending migrations.
 *
 * The file runs in WAL mode with `synchronous = NORMAL`, a busy timeout and
 * foreign keys on.
 *
 * @example
 * ```ts
 * const store = await createSqliteStore<OrderTables>({
 *   file: ".data/order.sqlite",
 *   migrations: { "0001_orders": { up: async (db) => { ... } } },
 * });
 * ```
 * @throws ProtoeventsError `store_unavailable` when the file cannot be opened;
 *   `internal` when a migration fails.
 */
export async function createSqliteStore<DB = unknown>(
  options: SqliteStoreOptions,
): Promise<Store<DB>> {
  const file = options.file === ":memory:" ? options.file : resolve(options.file);
  const name = `sqlite store ${file}`;
  const Driver = await loadSqliteDriver();
  let database: Database.Database;
  try {
    if (file !== ":memory:") {
      await mkdir(dirname(file), { recursive: true });
    }
    database = new Driver(file);
  } catch (error) {
    throw storeUnavailable(name, "could not open the database", error);
  }
  try {
    database.pragma("journal_mode = WAL");
    // In WAL mode NORMAL syncs at checkpoints, not at every commit: a commit is
    // durable once it is in the WAL file, so it survives the process crashing
    // (what a service restart needs); only an OS crash or power loss may lose
    // the last commits. FULL would fsync every commit for that.
    database.pragma("synchronous = NORMAL");
    database.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    database.pragma("foreign_keys = ON");
  } catch (error) {
    database.close();
    throw storeUnavailable(name, "could not configure the database", error);
  }
  const db = new Kysely<DB & ProtoeventsTables>({
    dialect: new SqliteDialect({ database: withStatementCache(database) }),
  });
  try {
    await migrateStore(db, {
      dialect: "sqlite",
      store: name,
      ...(options.migrations === undefined ? {} : { migrations: options.migrations }),
    });
  } catch (error) {
    await db.destroy();
    throw error;
  }
  // Closing the last connection checkpoints the WAL into the main file; every
  // commit was already durable in the WAL before that.
  return createKyselyStore<DB>({
    dialect: "sqlite",
    db,
    name,
  });
}

/**
 * Statements kept prepared: Kysely's SQLite driver prepares every query it
 * runs, and preparing cost about a third of a claim transaction (BEGIN,
 * INSERT, COMMIT) in the inbox benchmark. Bounded, since a service may build
 * many distinct queries.
 */
const STATEMENT_CACHE_SIZE = 500;

function withStatementCache(database: Database.Database): SqliteDatabase {
  const cache = new Map<string, Database.Statement>();
  return {
    close: () => database.close(),
    prepare(sql: string) {
      let statement = cache.get(sql);
      if (statement === undefined) {
        statement = database.prepare(sql);
        if (cache.size >= STATEMENT_CACHE_SIZE) {
          // Maps iterate in insertion order: drop the oldest.
          const oldest = cache.keys().next().value;
          if (oldest !== undefined) {
            cache.delete(oldest);
          }
        }
        cache.set(sql, statement);
      }
      return statement;
    },
  };
}
