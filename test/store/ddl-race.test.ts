import { afterEach, describe, expect, it } from "vitest";
import { createPostgresStore } from "../../runtime/src/store/postgres.js";
import type { Store } from "../../runtime/src/store/store.js";
import { afterThisTest, cleanUpNow } from "../helpers/cleanup.js";
import { adminQuery, closeAdmin, dropSchema, PG_URL, uniqueName } from "./helpers.js";

afterEach(async () => {
  await cleanUpNow();
  await closeAdmin();
});

describe("postgres store migrations", () => {
  it("should open stores while other schemas of the database are created and dropped", async () => {
    // Kysely's own introspection reads every schema's tables by name; a schema
    // dropped meanwhile failed the open with "schema does not exist".
    let churning = true;
    const churn = (async () => {
      for (let i = 0; churning; i++) {
        const schema = uniqueName(`pe_churn${i % 3}`);
        await adminQuery(`create schema "${schema}"`);
        await adminQuery(`create table "${schema}".t (id serial primary key)`);
        await dropSchema(schema);
      }
    })();
    const opened: Array<{ store: Store; schema: string }> = [];
    try {
      for (let i = 0; i < 15; i++) {
        const schema = uniqueName("pe_race");
        afterThisTest(() => dropSchema(schema));
        const store = await createPostgresStore({ connectionString: PG_URL, schema });
        opened.push({ store, schema });
        afterThisTest(() => store.close());
      }
    } finally {
      churning = false;
      await churn;
    }
    expect(opened).toHaveLength(15);
    // The store's introspection sees its own schema, whole, and nothing else.
    const [first] = opened;
    const tables = await first?.store.db.introspection.getTables({
      withInternalKyselyTables: true,
    });
    expect(new Set(tables?.map((t) => t.schema))).toEqual(new Set([first?.schema]));
    expect(tables?.map((t) => t.name)).toEqual(
      expect.arrayContaining(["protoevents_migration", "protoevents_outbox"]),
    );
    const outbox = tables?.find((t) => t.name === "protoevents_outbox");
    expect(outbox?.columns.find((c) => c.name === "id")).toMatchObject({
      isAutoIncrementing: true,
      isNullable: false,
    });
  });
});
