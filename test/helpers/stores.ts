import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Migration } from "kysely";
import pg from "pg";
import { createStore } from "../../runtime/src/store/index.js";
import type { Store, StoreDialect } from "../../runtime/src/store/store.js";

/** The PostgreSQL every development and CI machine runs (trust auth). */
export const PG_URL =
  process.env.PROTOEVENTS_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";

let counter = 0;

/** A unique name for a test's own schema or file. */
export function uniqueName(prefix: string): string {
  counter++;
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${counter}`.toLowerCase();
}

/** Where a test's store lives, and how to remove it afterwards. */
export interface TestStoreLocation {
  readonly dialect: StoreDialect;
  /** For SQLite: the file. For PostgreSQL: the schema. */
  readonly name: string;
  readonly connectionString: string;
  open<DB>(migrations?: Record<string, Migration>, connectionString?: string): Promise<Store<DB>>;
  /** Drop the schema or delete the file. */
  remove(): Promise<void>;
}

/** A fresh SQLite file or PostgreSQL schema for one test. */
export async function testStoreLocation(dialect: StoreDialect): Promise<TestStoreLocation> {
  if (dialect === "sqlite") {
    const dir = await mkdtemp(join(tmpdir(), "protoevents-store-"));
    const file = join(dir, "service.sqlite");
    return {
      dialect,
      name: file,
      connectionString: "",
      open: (migrations) =>
        createStore({ kind: "sqlite", file }, migrations === undefined ? {} : { migrations }),
      remove: () => rm(dir, { recursive: true, force: true }),
    };
  }
  const schema = uniqueName("test");
  return {
    dialect,
    name: schema,
    connectionString: PG_URL,
    open: (migrations, connectionString = PG_URL) =>
      createStore(
        { kind: "postgres", connectionString, schema, poolSize: 4 },
        migrations === undefined ? {} : { migrations },
      ),
    remove: async () => {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}
