import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { Code, isProtoeventsError } from "../../runtime/src/errors.js";
import {
  databaseOf,
  dropDemoSchemas,
  markDemoSchemas,
  SCHEMA_MARK,
} from "../../services/supervisor/schemas.js";
import { PG_URL, uniqueName } from "../helpers/stores.js";

/** Each test gets a database of its own: npm start uses fixed schema names. */
const databases: string[] = [];
afterEach(async () => {
  await admin(async (client) => {
    for (const name of databases.splice(0)) {
      await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    }
  });
});

async function admin<T>(work: (client: pg.Client) => Promise<T>, url = PG_URL): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function database(): Promise<string> {
  const name = uniqueName("start");
  await admin((client) => client.query(`CREATE DATABASE "${name}"`));
  databases.push(name);
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

const schemas = (url: string) =>
  admin(async (client) => {
    const { rows } = await client.query<{ nspname: string }>(
      "SELECT nspname FROM pg_namespace WHERE nspname IN ('order', 'payment', 'shipping') ORDER BY nspname",
    );
    return rows.map((r) => r.nspname);
  }, url);

describe("the schemas npm start --store postgres resets", () => {
  it("should drop only what an earlier npm start made, and refuse, naming the database, when another program made one", async () => {
    const url = await database();
    await admin(async (client) => {
      await client.query('CREATE SCHEMA "order"');
      await client.query('CREATE TABLE "order".orders (id text primary key)');
      await client.query("CREATE SCHEMA payment");
    }, url);
    await markDemoSchemas(url, ["payment"]);

    let error: unknown;
    try {
      await dropDemoSchemas(url, ["order", "payment", "shipping"], { force: false });
    } catch (e) {
      error = e;
    }
    expect(isProtoeventsError(error) && error.code).toBe(Code.InvalidArgument);
    expect((error as Error).message).toBe(
      `[invalid_argument] ${databaseOf(url)} has schema order that npm start did not make, so it drops nothing there: point --store at a database of its own, keep them with --keep-data, or drop them with --reset-schemas (that drops order, payment in it)`,
    );
    // Nothing dropped, not even the marked one.
    expect(await schemas(url)).toEqual(["order", "payment"]);

    expect(await dropDemoSchemas(url, ["order", "payment", "shipping"], { force: true })).toEqual([
      "order",
      "payment",
    ]);
    expect(await schemas(url)).toEqual([]);
  });

  it("should drop schemas npm start marked without being told", async () => {
    const url = await database();
    await admin((client) => client.query('CREATE SCHEMA "order"'), url);
    await markDemoSchemas(url, ["order", "shipping"]);
    const comment = await admin(async (client) => {
      const { rows } = await client.query<{ c: string }>(
        "SELECT obj_description(oid, 'pg_namespace') AS c FROM pg_namespace WHERE nspname = 'order'",
      );
      return rows[0]?.c;
    }, url);
    expect(comment).toBe(SCHEMA_MARK);
    expect(await dropDemoSchemas(url, ["order", "shipping"], { force: false })).toEqual(["order"]);
    expect(await schemas(url)).toEqual([]);
  });

  it("should name the database but never the password", () => {
    expect(databaseOf("postgres://admin:hunter2@db.internal:5433/shop")).toBe(
      "database shop on db.internal:5433",
    );
  });
});
