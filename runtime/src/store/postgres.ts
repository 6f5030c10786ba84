/**
 * The scale-out store: PostgreSQL, one schema per service, shared by every
 * replica of the service.
 */
import {
  type DatabaseIntrospector,
  type DatabaseMetadata,
  type DatabaseMetadataOptions,
  Kysely,
  type Migration,
  PostgresDialect,
  type PostgresDialectConfig,
  type SchemaMetadata,
  sql,
  type TableMetadata,
} from "kysely";
import type pg from "pg";
import { Code, ProtoeventsError, reasonToString } from "../errors.js";
import { getDefaultLogger } from "../logger.js";
import {
  createKyselyStore,
  isTransientStoreError,
  migrateStore,
  storeUnavailable,
} from "./common.js";
import { loadPostgresDriver } from "./drivers.js";
import type { ProtoeventsTables, Store } from "./store.js";

/** Connections per store (per replica) unless `poolSize` says otherwise. */
const DEFAULT_POOL_SIZE = 10;

/**
 * How long acquiring a new connection may take before the operation fails
 * with `store_unavailable`, instead of hanging while PostgreSQL is unreachable.
 */
const CONNECT_TIMEOUT_MS = 10_000;

/** A PostgreSQL identifier we accept as a schema name without quoting surprises. */
const SCHEMA_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** Options of {@link createPostgresStore}. */
export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database`. */
  readonly connectionString: string;
  /**
   * The service's schema (a plain identifier: letters, digits, `_`; at most 63
   * characters; not starting with `pg_`). Created if missing and put first on
   * the search_path of every connection, so unqualified table names are the
   * service's. Replicas of one service share it.
   */
  readonly schema: string;
  /**
   * The service's own migrations, by name; applied in name order after the
   * protoevents tables, recorded in `<schema>.service_migration`.
   */
  readonly migrations?: Readonly<Record<string, Migration>>;
  /**
   * Connections in this store's pool; at least 2, so the outbox relay's lease
   * (see {@link Store.lockOutbox}) can be renewed while it reads and marks
   * rows.
   *
   * @default 10
   */
  readonly poolSize?: number;
  /**
   * `application_name` of the connections, as `pg_stat_activity` shows it.
   *
   * @default `protoevents:<schema>`
   */
  readonly applicationName?: string;
}

/**
 * Open a PostgreSQL store: create the schema if missing and apply pending
 * migrations. Safe when several replicas open the same schema at once (the
 * schema creation race is tolerated, migrations run under Kysely's advisory
 * lock). The pool reconnects by itself after PostgreSQL restarts or drops
 * connections; operations meanwhile fail with `store_unavailable`.
 *
 * int8 columns (ids, Unix-millisecond times, counts) are parsed as JS numbers
 * by this pool only; the global `pg.types` stay untouched.
 *
 * @example
 * ```ts
 * const store = await createPostgresStore<OrderTables>({
 *   connectionString: "postgres://postgres@127.0.0.1:5432/checkout",
 *   schema: "order",
 * });
 * ```
 * @throws ProtoeventsError `invalid_argument` for a bad schema name or pool
 *   size; `store_unavailable` when PostgreSQL cannot be reached; `internal`
 *   when creating the schema or a migration fails otherwise.
 */
export async function createPostgresStore<DB = unknown>(
  options: PostgresStoreOptions,
): Promise<Store<DB>> {
  const { schema } = options;
  if (!SCHEMA_PATTERN.test(schema) || schema.toLowerCase().startsWith("pg_")) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `invalid PostgreSQL schema name ${JSON.stringify(schema)}: use letters, digits and _, at most 63 characters, not starting with a digit or pg_`,
    );
  }
  const poolSize = options.poolSize ?? DEFAULT_POOL_SIZE;
  if (!Number.isInteger(poolSize) || poolSize < 2) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `poolSize must be an integer of at least 2 (the outbox relay renews its lease while it works), got ${poolSize}`,
    );
  }
  const name = `postgres store (schema ${schema})`;
  const driver = await loadPostgresDriver();
  const pool = createPool(driver, {
    ...connectionWithSearchPath(options.connectionString, schema),
    applicationName: options.applicationName ?? `protoevents:${schema}`.slice(0, 63),
    poolSize,
    store: name,
  });
  const db = new Kysely<DB & ProtoeventsTables>({ dialect: new StoreDialect({ pool }, schema) });
  try {
    await ensureSchema(db, schema, name);
    await migrateStore(db, {
      dialect: "postgres",
      store: name,
      schema,
      ...(options.migrations === undefined ? {} : { migrations: options.migrations }),
    });
  } catch (error) {
    await db.destroy();
    throw error;
  }
  return createKyselyStore<DB>({
    dialect: "postgres",
    db,
    name,
    beginAttempts: poolSize + 1,
  });
}

/**
 * The connection string without an `options` parameter, and the startup
 * `options` with our search_path appended. pg lets a connection string's
 * parameters override the config object's, so a user's `options=...` would
 * otherwise silently drop the search_path.
 */
function connectionWithSearchPath(
  connectionString: string,
  schema: string,
): { connectionString: string; options: string } {
  // `public` stays after the service's schema for functions of extensions
  // installed there; tables are created in the first schema that exists.
  const searchPath = `-c search_path=${quoteIdentifier(schema)},public`;
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch {
    return { connectionString, options: searchPath };
  }
  const userOptions = url.searchParams.get("options");
  if (userOptions === null) {
    return { connectionString, options: searchPath };
  }
  url.searchParams.delete("options");
  return { connectionString: url.toString(), options: `${userOptions} ${searchPath}` };
}

function quoteIdentifier(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`;
}

function createPool(
  driver: typeof pg,
  config: {
    connectionString: string;
    options: string;
    applicationName: string;
    poolSize: number;
    store: string;
  },
): pg.Pool {
  // Per-pool type parsing: int8 as number (ids and Unix milliseconds stay far
  // below 2^53), without touching pg.types for the rest of the process.
  const types = new driver.TypeOverrides();
  types.setTypeParser(driver.types.builtins.INT8, (value: string) => Number(value));
  const pool = new driver.Pool({
    connectionString: config.connectionString,
    options: config.options,
    application_name: config.applicationName,
    max: config.poolSize,
    types,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    keepAlive: true,
  });
  // An idle client whose connection dies (PostgreSQL restarted, backend
  // terminated) is dropped by the pool, which then emits "error"; without a
  // listener Node would crash the process.
  pool.on("error", (error) => {
    getDefaultLogger().warn(
      { err: error, store: config.store },
      "idle PostgreSQL connection lost; the pool reconnects on demand",
    );
  });
  // A checked-out client whose connection dies between queries emits "error"
  // on itself; its next query fails and the pool discards it on release.
  pool.on("connect", (client) => {
    client.on("error", (error) => {
      getDefaultLogger().debug({ err: error, store: config.store }, "PostgreSQL connection lost");
    });
  });
  return pool;
}

/**
 * Create the schema if missing. Two replicas may race: `CREATE SCHEMA IF NOT
 * EXISTS` can still fail with a unique violation when another session creates
 * it at the same moment, so a failure is ignored when the schema exists.
 */
async function ensureSchema<DB>(db: Kysely<DB>, schema: string, store: string): Promise<void> {
  const exists = async (): Promise<boolean> => {
    const result = await sql<{
      one: number;
    }>`select 1 as one from pg_catalog.pg_namespace where nspname = ${schema}`.execute(db);
    return result.rows.length > 0;
  };
  try {
    if (await exists()) {
      return;
    }
    try {
      await db.schema.createSchema(schema).ifNotExists().execute();
    } catch (error) {
      if (!(await exists())) {
        throw error;
      }
    }
  } catch (error) {
    if (isTransientStoreError(error)) {
      throw storeUnavailable(store, "could not create the schema", error);
    }
    throw new ProtoeventsError(
      Code.Internal,
      `${store}: could not create the schema: ${reasonToString(error)}`,
      { cause: error },
    );
  }
}

/**
 * Kysely's PostgreSQL dialect with introspection limited to the store's
 * schema. Kysely's own introspector (which its Migrator uses to find its
 * bookkeeping table) reads the tables of every schema in the database and
 * resolves each by name, so another service or test dropping its schema at
 * that moment failed our migrations with "schema … does not exist".
 */
class StoreDialect extends PostgresDialect {
  readonly #schema: string;

  constructor(config: PostgresDialectConfig, schema: string) {
    super(config);
    this.#schema = schema;
  }

  override createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new SchemaIntrospector(db, this.#schema);
  }
}

/** The tables and columns of one schema, looked up by oid only, never by name. */
class SchemaIntrospector implements DatabaseIntrospector {
  readonly #db: Kysely<unknown>;
  readonly #schema: string;

  constructor(db: Kysely<unknown>, schema: string) {
    this.#db = db;
    this.#schema = schema;
  }

  async getSchemas(): Promise<SchemaMetadata[]> {
    return [{ name: this.#schema }];
  }

  async getTables(
    options: DatabaseMetadataOptions = { withInternalKyselyTables: false },
  ): Promise<TableMetadata[]> {
    const { rows } = await sql<{
      table: string;
      table_type: string;
      column: string;
      not_null: boolean;
      has_default: boolean;
      type: string;
      type_schema: string;
      column_description: string | null;
      auto_incrementing: boolean;
    }>`
      select c.relname as table, c.relkind as table_type, a.attname as column,
        a.attnotnull as not_null, a.atthasdef as has_default,
        typ.typname as type, dtns.nspname as type_schema,
        col_description(a.attrelid, a.attnum) as column_description,
        (a.attidentity <> '' or coalesce(pg_get_expr(d.adbin, d.adrelid) like 'nextval(%', false)) as auto_incrementing
      from pg_catalog.pg_namespace ns
      join pg_catalog.pg_class c on c.relnamespace = ns.oid
      join pg_catalog.pg_attribute a on a.attrelid = c.oid
      join pg_catalog.pg_type typ on typ.oid = a.atttypid
      join pg_catalog.pg_namespace dtns on dtns.oid = typ.typnamespace
      left join pg_catalog.pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
      where ns.nspname = ${this.#schema}
        and c.relkind in ('r', 'v', 'p')
        and a.attnum >= 0 and not a.attisdropped
      order by c.relname, a.attnum`.execute(this.#db);
    const tables = new Map<
      string,
      { name: string; isView: boolean; schema: string; columns: TableMetadata["columns"][number][] }
    >();
    for (const row of rows) {
      if (
        !options.withInternalKyselyTables &&
        (row.table === "kysely_migration" || row.table === "kysely_migration_lock")
      ) {
        continue;
      }
      let table = tables.get(row.table);
      if (table === undefined) {
        table = {
          name: row.table,
          isView: row.table_type === "v",
          schema: this.#schema,
          columns: [],
        };
        tables.set(row.table, table);
      }
      table.columns.push({
        name: row.column,
        dataType: row.type,
        dataTypeSchema: row.type_schema,
        isNullable: !row.not_null,
        hasDefaultValue: row.has_default,
        isAutoIncrementing: row.auto_incrementing,
        ...(row.column_description === null ? {} : { comment: row.column_description }),
      });
    }
    return [...tables.values()];
  }

  async getMetadata(options?: DatabaseMetadataOptions): Promise<DatabaseMetadata> {
    return { tables: await this.getTables(options) };
  }
}
