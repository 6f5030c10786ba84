/**
 * The PostgreSQL schemas `npm start --store postgres` gives the services.
 * Every run starts from empty stores, so it drops the services' schemas
 * first, but only those it made itself: a schema named like a service that
 * another program made (its `order` or `payment`, say) is someone's data.
 * npm start marks its schemas with a comment once the services created
 * them, and drops a schema without that mark only when told to.
 */
import { Code, ProtoeventsError } from "@protoevents/runtime";
import pg from "pg";

/** The comment npm start puts on the schemas it made. */
export const SCHEMA_MARK =
  "made by protoevents npm start: the checkout demo's data, dropped at the next npm start";

/** A connection URL for messages: the database and where it is, never the password. */
export function databaseOf(url: string): string {
  try {
    const parsed = new URL(url);
    return `database ${decodeURIComponent(parsed.pathname.slice(1)) || "(default)"} on ${parsed.host}`;
  } catch {
    return url.replace(/\/\/[^@/]*@/, "//…@");
  }
}

async function withClient<T>(url: string, what: string, work: (client: pg.Client) => Promise<T>) {
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
    return await work(client);
  } catch (cause) {
    if (cause instanceof ProtoeventsError) {
      throw cause;
    }
    throw new ProtoeventsError(
      Code.StoreUnavailable,
      `could not ${what} in ${databaseOf(url)}: ${(cause as Error).message}`,
      { cause },
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

function quote(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * Drop the named schemas that exist, refusing (and dropping nothing) when
 * one of them lacks {@link SCHEMA_MARK} unless `force`.
 *
 * @returns the schemas dropped.
 * @throws ProtoeventsError `invalid_argument` naming the database and the
 *   schemas npm start did not make.
 */
export function dropDemoSchemas(
  url: string,
  names: readonly string[],
  options: { readonly force: boolean },
): Promise<string[]> {
  return withClient(url, "reset the services' schemas", async (client) => {
    const { rows } = await client.query<{ name: string; comment: string | null }>(
      "SELECT nspname AS name, obj_description(oid, 'pg_namespace') AS comment FROM pg_namespace WHERE nspname = ANY($1::text[]) ORDER BY nspname",
      [names],
    );
    const foreign = rows.filter((r) => r.comment !== SCHEMA_MARK).map((r) => r.name);
    if (foreign.length > 0 && !options.force) {
      throw new ProtoeventsError(
        Code.InvalidArgument,
        `${databaseOf(url)} has schema${foreign.length === 1 ? "" : "s"} ${foreign.join(", ")} that npm start did not make, so it drops nothing there: point --store at a database of its own, keep them with --keep-data, or drop them with --reset-schemas (that drops ${rows.map((r) => r.name).join(", ")} in it)`,
      );
    }
    for (const { name } of rows) {
      await client.query(`DROP SCHEMA IF EXISTS ${quote(name)} CASCADE`);
    }
    return rows.map((r) => r.name);
  });
}

/** Put {@link SCHEMA_MARK} on the named schemas that exist. */
export function markDemoSchemas(url: string, names: readonly string[]): Promise<void> {
  return withClient(url, "mark the services' schemas", async (client) => {
    const { rows } = await client.query<{ name: string }>(
      "SELECT nspname AS name FROM pg_namespace WHERE nspname = ANY($1::text[])",
      [names],
    );
    for (const { name } of rows) {
      await client.query(
        `COMMENT ON SCHEMA ${quote(name)} IS '${SCHEMA_MARK.replaceAll("'", "''")}'`,
      );
    }
  });
}
