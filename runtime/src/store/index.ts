/**
 * Stores: the inbox, the outbox and a service's own state in one
 * transactional database, SQLite (embedded default) or PostgreSQL
 * (several replicas).
 */
import { join } from "node:path";
import type { Migration } from "kysely";
import { Code, ProtoeventsError } from "../errors.js";
import { createPostgresStore } from "./postgres.js";
import { createSqliteStore } from "./sqlite.js";
import type { Store } from "./store.js";

export type { Migration } from "./common.js";
export { createPostgresStore, type PostgresStoreOptions } from "./postgres.js";
export { createSqliteStore, type SqliteStoreOptions } from "./sqlite.js";
export type {
  InboxTable,
  OutboxEntry,
  OutboxTable,
  PendingOutboxRow,
  ProtoeventsTables,
  Store,
  StoreDialect,
  StoreTransaction,
} from "./store.js";

/** Environment variable selecting PostgreSQL: a `postgres://` or `postgresql://` URL. */
export const STORE_URL_ENV = "PROTOEVENTS_STORE_URL";
/** Environment variable naming the directory of SQLite files. @default `.data` */
export const DATA_DIR_ENV = "PROTOEVENTS_DATA_DIR";

/** Where a service's store lives. */
export type StoreConfig =
  | {
      readonly kind: "sqlite";
      /** The database file; its directory is created if missing. */
      readonly file: string;
    }
  | {
      readonly kind: "postgres";
      readonly connectionString: string;
      /** The service's schema; see {@link PostgresStoreOptions.schema}. */
      readonly schema: string;
      /** @default 10 */
      readonly poolSize?: number;
      /** @default `protoevents:<schema>` */
      readonly applicationName?: string;
    };

/** Options of {@link createStore} that do not depend on where the store lives. */
export interface CreateStoreOptions {
  /** The service's own migrations, by name, applied in name order. */
  readonly migrations?: Readonly<Record<string, Migration>>;
}

/**
 * Open the store `config` describes and apply pending migrations.
 *
 * @example
 * ```ts
 * const store = await createStore<OrderTables>(storeConfigFromEnv("order"), { migrations });
 * ```
 */
export function createStore<DB = unknown>(
  config: StoreConfig,
  options: CreateStoreOptions = {},
): Promise<Store<DB>> {
  const migrations = options.migrations === undefined ? {} : { migrations: options.migrations };
  switch (config.kind) {
    case "sqlite":
      return createSqliteStore<DB>({ file: config.file, ...migrations });
    case "postgres":
      return createPostgresStore<DB>({
        connectionString: config.connectionString,
        schema: config.schema,
        ...(config.poolSize === undefined ? {} : { poolSize: config.poolSize }),
        ...(config.applicationName === undefined
          ? {}
          : { applicationName: config.applicationName }),
        ...migrations,
      });
  }
}

/**
 * The store of `service` as the environment configures it:
 *
 * - `PROTOEVENTS_STORE_URL=postgres://…` (or `postgresql://…`): PostgreSQL at
 *   that URL, in the schema named after the service (lower-cased, characters
 *   other than `a-z0-9_` replaced by `_`, prefixed with `_` when it would
 *   start with a digit or `pg_`, at most 63 characters);
 * - unset or empty: SQLite at `${PROTOEVENTS_DATA_DIR ?? ".data"}/${service}.sqlite`.
 *
 * @throws ProtoeventsError `invalid_argument` when `PROTOEVENTS_STORE_URL` is
 *   set to anything else (rather than silently using SQLite), or when the
 *   service name is empty.
 */
export function storeConfigFromEnv(
  service: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): StoreConfig {
  if (service.trim() === "") {
    throw new ProtoeventsError(Code.InvalidArgument, "the service name must not be empty");
  }
  const url = env[STORE_URL_ENV]?.trim() ?? "";
  if (url === "") {
    const dir = env[DATA_DIR_ENV]?.trim() || ".data";
    return {
      kind: "sqlite",
      file: join(dir, `${service.replace(/[^A-Za-z0-9._-]/g, "_")}.sqlite`),
    };
  }
  if (/^postgres(ql)?:\/\//i.test(url)) {
    return { kind: "postgres", connectionString: url, schema: schemaName(service) };
  }
  throw new ProtoeventsError(
    Code.InvalidArgument,
    `${STORE_URL_ENV} must be a postgres:// or postgresql:// URL (unset it to use SQLite), got ${JSON.stringify(url.replace(/\/\/[^@/]*@/, "//…@"))}`,
  );
}

/** A service name as a PostgreSQL schema identifier. */
function schemaName(service: string): string {
  let name = service.toLowerCase().replace(/[^a-z0-9_]/g, "_");
  if (/^[0-9]/.test(name) || name.startsWith("pg_")) {
    name = `_${name}`;
  }
  return name.slice(0, 63);
}
