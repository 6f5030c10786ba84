import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Kysely, sql } from "kysely";
import { afterAll, describe, expect, it } from "vitest";
import { Code, isProtoeventsError } from "../../runtime/src/errors.js";
import {
  createPostgresStore,
  createStore,
  type Migration,
  type OutboxEntry,
  type Store,
  type StoreConfig,
  type StoreDialect,
  storeConfigFromEnv,
} from "../../runtime/src/store/index.js";
import { afterThisTest } from "../helpers/cleanup.js";
import { startTsProcess } from "../helpers/processes.js";
import { waitFor } from "../helpers/wait.js";
import {
  adminQuery,
  closeAdmin,
  dropSchema,
  PG_URL,
  startTcpProxy,
  uniqueName,
} from "./helpers.js";

/** The service's own table, created by the service's own migration. */
interface ServiceTables {
  readonly notes: { readonly id: string; readonly body: string };
}

const serviceMigrations: Record<string, Migration> = {
  "0001_notes": {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable("notes")
        .addColumn("id", "text", (col) => col.primaryKey())
        .addColumn("body", "text", (col) => col.notNull())
        .execute();
    },
  },
};

afterAll(async () => {
  await closeAdmin();
});

/** Open a store with the service migrations and close it after the test. */
async function open(config: StoreConfig): Promise<Store<ServiceTables>> {
  const store = await createStore<ServiceTables>(config, { migrations: serviceMigrations });
  afterThisTest(() => store.close());
  return store;
}

/** A fresh, empty PostgreSQL schema name, dropped after the test. */
function newSchema(): string {
  const schema = uniqueName("pe_store");
  afterThisTest(() => dropSchema(schema));
  return schema;
}

interface Harness {
  readonly dialect: StoreDialect;
  /** Where a new, empty store lives; removed after the test. */
  location(): Promise<StoreConfig>;
}

const harnesses: Harness[] = [
  {
    dialect: "sqlite",
    location: async () => {
      const dir = await mkdtemp(join(tmpdir(), "protoevents-store-"));
      afterThisTest(() => rm(dir, { recursive: true, force: true }));
      // A nested path proves the parent directory is created.
      return { kind: "sqlite", file: join(dir, "data", "service.sqlite") };
    },
  },
  {
    dialect: "postgres",
    location: async () => ({ kind: "postgres", connectionString: PG_URL, schema: newSchema() }),
  },
];

/** An outbox entry whose bytes include 0x00 and 0xff, with non-ASCII attributes. */
function entry(n: number, orderingKey?: string): OutboxEntry {
  return {
    eventId: `evt-${n}`,
    eventType: "checkout.v1.OrderPlaced",
    topic: "order-events",
    orderingKey,
    data: new Uint8Array([0, n, 255, 128, 10, 13, 0]),
    attributes: { "ce-id": `evt-${n}`, "ce-subject": `order-${n} · ünïcode ✓`, empty: "" },
  };
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(harnesses)("$dialect store", (harness) => {
  it("should claim once and report duplicates when the same subscription claims an event id again", async () => {
    const store = await open(await harness.location());
    expect(store.dialect).toBe(harness.dialect);
    expect(await store.transaction((tx) => tx.claim("payment.order-placed", "evt-1"))).toBe(true);
    expect(await store.transaction((tx) => tx.claim("payment.order-placed", "evt-1"))).toBe(false);
    expect(await store.transaction((tx) => tx.claim("inventory.order-placed", "evt-1"))).toBe(true);
    expect(await store.transaction((tx) => tx.claim("payment.order-placed", "evt-2"))).toBe(true);
  });

  it("should give exactly one claim when concurrent transactions of one store claim one event id", async () => {
    const store = await open(await harness.location());
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        store.transaction(async (tx) => {
          const claimed = await tx.claim("sub", "evt-contended");
          await sleep(2);
          return claimed;
        }),
      ),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it("should roll back the claim, outbox rows and service writes when the work function throws", async () => {
    const store = await open(await harness.location());
    const committed = counter();
    store.onOutboxCommit(committed.fn);
    const failure = new Error("handler failed");
    const outcome = store.transaction(async (tx) => {
      expect(await tx.claim("sub", "evt-1")).toBe(true);
      await tx.enqueue([entry(1), entry(2, "order-2")]);
      await tx.db.insertInto("notes").values({ id: "n1", body: "written" }).execute();
      throw failure;
    });
    await expect(outcome).rejects.toBe(failure);
    expect(await store.pendingOutbox(10)).toEqual([]);
    expect(await store.db.selectFrom("notes").selectAll().execute()).toEqual([]);
    expect(await store.transaction((tx) => tx.claim("sub", "evt-1"))).toBe(true);
    expect(committed.calls).toBe(0);
  });

  it("should report a row the database refuses as internal, not as the store being unavailable", async () => {
    const store = await open(await harness.location());
    const refused = store.transaction((tx) =>
      // NOT NULL: a bug in what is enqueued, not an outage.
      tx.enqueue([{ ...entry(1), eventId: null as unknown as string }]),
    );
    await expect(refused).rejects.toMatchObject({ code: Code.Internal });
    await expect(refused).rejects.toThrow(/enqueue failed/);
    expect(await store.pendingOutbox(10)).toEqual([]);
  });

  it("should commit service writes with the claim when the work function resolves", async () => {
    const store = await open(await harness.location());
    const result = await store.transaction(async (tx) => {
      await tx.claim("sub", "evt-1");
      await tx.db.insertInto("notes").values({ id: "n1", body: "written" }).execute();
      return "done";
    });
    expect(result).toBe("done");
    expect(await store.db.selectFrom("notes").selectAll().execute()).toEqual([
      { id: "n1", body: "written" },
    ]);
  });

  it("should return pending rows oldest first with exact bytes when entries were enqueued in order", async () => {
    const store = await open(await harness.location());
    const first = [entry(1, "order-1"), entry(2), entry(3, "order-1")];
    await store.transaction((tx) => tx.enqueue(first));
    await store.transaction((tx) => tx.enqueue([entry(4, "order-4")]));
    const pending = await store.pendingOutbox(10);
    expect(pending.map((row) => row.eventId)).toEqual(["evt-1", "evt-2", "evt-3", "evt-4"]);
    const ids = pending.map((row) => row.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(4);
    const expected = [...first, entry(4, "order-4")];
    for (const [i, row] of pending.entries()) {
      const want = expected[i];
      expect(typeof row.id).toBe("number");
      expect(row.eventType).toBe(want?.eventType);
      expect(row.topic).toBe(want?.topic);
      expect(row.orderingKey).toBe(want?.orderingKey);
      expect([...row.data]).toEqual([...(want?.data ?? [])]);
      expect(row.attributes).toEqual(want?.attributes);
      expect(row.attempts).toBe(0);
      expect(typeof row.createdAt).toBe("number");
      expect(Math.abs(row.createdAt - Date.now())).toBeLessThan(60_000);
    }
    expect((await store.pendingOutbox(2)).map((row) => row.eventId)).toEqual(["evt-1", "evt-2"]);
    expect(await store.pendingOutbox(0)).toEqual([]);
  });

  it("should drop rows from pending when they are marked sent and count attempts when marked failed", async () => {
    const store = await open(await harness.location());
    await store.transaction((tx) => tx.enqueue([entry(1), entry(2), entry(3)]));
    const [one, two, three] = await store.pendingOutbox(10);
    if (one === undefined || two === undefined || three === undefined) {
      throw new Error("expected three pending rows");
    }
    await store.markSent([one.id, three.id], Date.now());
    await store.markSent([], Date.now());
    await store.markFailed(two.id, "publish failed: UNAVAILABLE");
    await store.markFailed(two.id, "publish failed: DEADLINE_EXCEEDED");
    const pending = await store.pendingOutbox(10);
    expect(pending.map((row) => [row.id, row.attempts])).toEqual([[two.id, 2]]);
    const stored = await store.db
      .selectFrom("protoevents_outbox")
      .select(["id", "attempts", "last_error", "sent_at"])
      .orderBy("id")
      .execute();
    expect(stored.find((row) => row.id === two.id)).toMatchObject({
      attempts: 2,
      last_error: "publish failed: DEADLINE_EXCEEDED",
      sent_at: null,
    });
    expect(stored.filter((row) => row.sent_at !== null).map((row) => row.id)).toEqual([
      one.id,
      three.id,
    ]);
  });

  it("should delete old claims and old sent rows but keep pending rows when pruning", async () => {
    const store = await open(await harness.location());
    const now = Date.now();
    const old = now - 3_600_000;
    await store.transaction(async (tx) => {
      await tx.claim("sub", "old-1");
      await tx.claim("sub", "old-2");
      await tx.claim("sub", "recent");
      await tx.enqueue([entry(1), entry(2), entry(3), entry(4)]);
    });
    await store.db
      .updateTable("protoevents_inbox")
      .set({ claimed_at: old })
      .where("event_id", "in", ["old-1", "old-2"])
      .execute();
    const [sentOld, sentRecent, pendingOld, pendingRecent] = await store.pendingOutbox(10);
    if (!sentOld || !sentRecent || !pendingOld || !pendingRecent) {
      throw new Error("expected four pending rows");
    }
    await store.markSent([sentOld.id], old);
    await store.markSent([sentRecent.id], now);
    // A row pending for an hour is still pending: prune must never touch it.
    await store.db
      .updateTable("protoevents_outbox")
      .set({ created_at: old })
      .where("id", "=", pendingOld.id)
      .execute();

    expect(await store.prune(now - 60_000)).toEqual({ inbox: 2, outbox: 1 });

    expect((await store.pendingOutbox(10)).map((row) => row.id)).toEqual([
      pendingOld.id,
      pendingRecent.id,
    ]);
    const outbox = await store.db
      .selectFrom("protoevents_outbox")
      .select("id")
      .orderBy("id")
      .execute();
    expect(outbox.map((row) => row.id)).toEqual([sentRecent.id, pendingOld.id, pendingRecent.id]);
    expect(await store.transaction((tx) => tx.claim("sub", "old-1"))).toBe(true);
    expect(await store.transaction((tx) => tx.claim("sub", "recent"))).toBe(false);
    expect(await store.prune(now - 60_000)).toEqual({ inbox: 0, outbox: 0 });
  });

  it("should notify outbox listeners only when a committed transaction enqueued rows", async () => {
    const store = await open(await harness.location());
    const listener = counter();
    const unsubscribe = store.onOutboxCommit(listener.fn);
    const seenInListener: number[] = [];
    store.onOutboxCommit(() => {
      // Called after commit: the rows are visible.
      void store.pendingOutbox(10).then((rows) => seenInListener.push(rows.length));
    });
    store.onOutboxCommit(() => {
      throw new Error("a broken listener");
    });

    await store.transaction((tx) => tx.claim("sub", "evt-0"));
    await store.transaction((tx) => tx.enqueue([]));
    expect(listener.calls).toBe(0);

    await expect(
      store.transaction(async (tx) => {
        await tx.enqueue([entry(1)]);
        throw new Error("rolled back");
      }),
    ).rejects.toThrow("rolled back");
    expect(listener.calls).toBe(0);

    const result = await store.transaction(async (tx) => {
      await tx.enqueue([entry(2)]);
      expect(listener.calls).toBe(0);
      return 42;
    });
    expect(result).toBe(42);
    expect(listener.calls).toBe(1);
    await sleep(50);
    expect(seenInListener).toEqual([1]);

    unsubscribe();
    await store.transaction((tx) => tx.enqueue([entry(3)]));
    expect(listener.calls).toBe(1);
  });

  it("should keep data and skip applied migrations when a store is reopened", async () => {
    const config = await harness.location();
    const first = await open(config);
    await first.transaction(async (tx) => {
      await tx.claim("sub", "evt-1");
      await tx.enqueue([entry(1)]);
      await tx.db.insertInto("notes").values({ id: "n1", body: "kept" }).execute();
    });
    await first.close();
    await first.close();
    await expect(first.transaction((tx) => tx.claim("sub", "evt-2"))).rejects.toMatchObject({
      code: Code.Closed,
    });

    const second = await open(config);
    expect(await second.transaction((tx) => tx.claim("sub", "evt-1"))).toBe(false);
    expect((await second.pendingOutbox(10)).map((row) => row.eventId)).toEqual(["evt-1"]);
    expect(await second.db.selectFrom("notes").selectAll().execute()).toEqual([
      { id: "n1", body: "kept" },
    ]);
    const applied = await sql<{
      name: string;
    }>`select name from service_migration order by name`.execute(second.db);
    expect(applied.rows.map((row) => row.name)).toEqual(["0001_notes"]);
    if (harness.dialect === "sqlite") {
      const mode = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(second.db);
      expect(mode.rows[0]?.journal_mode).toBe("wal");
      const sync = await sql<{ synchronous: number }>`pragma synchronous`.execute(second.db);
      expect(sync.rows[0]?.synchronous).toBe(1); // NORMAL
      const fk = await sql<{ foreign_keys: number }>`pragma foreign_keys`.execute(second.db);
      expect(fk.rows[0]?.foreign_keys).toBe(1);
    }
  });

  it("should let one relay hold the outbox lock at a time when two relays try", async () => {
    const store = await open(await harness.location());
    const release = deferred();
    const entered = deferred();
    const holder = store.lockOutbox(async () => {
      entered.resolve();
      await release.promise;
      return "first";
    });
    await entered.promise;
    let ran = false;
    expect(
      await store.lockOutbox(async () => {
        ran = true;
      }),
    ).toBeUndefined();
    expect(ran).toBe(false);
    release.resolve();
    expect(await holder).toBe("first");
    const failure = new Error("relay failed");
    await expect(
      store.lockOutbox(async () => {
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(await store.lockOutbox(async () => "again")).toBe("again");
  });

  it("should exclude a relay on another store object of the same database, and take over a lease nobody renews", async () => {
    const location = await harness.location();
    const first = await open(location);
    const second = await open(location);
    const release = deferred();
    const entered = deferred();
    const holding = first.lockOutbox(async () => {
      entered.resolve();
      await release.promise;
    });
    await entered.promise;
    // Another process, as far as the store can tell: it must wait its turn.
    expect(await second.lockOutbox(async () => "second")).toBeUndefined();
    release.resolve();
    await holding;
    expect(await second.lockOutbox(async () => "second")).toBe("second");

    // A relay that died holding the lease: nobody renews it. Live, it excludes…
    await first.db
      .insertInto("protoevents_lease")
      .values({ name: "outbox", holder: "crashed-relay", expires_at: Date.now() + 60_000 })
      .onConflict((oc) =>
        oc.column("name").doUpdateSet({ holder: "crashed-relay", expires_at: Date.now() + 60_000 }),
      )
      .execute();
    expect(await second.lockOutbox(async () => "second")).toBeUndefined();
    // …expired, it is taken over.
    await first.db
      .updateTable("protoevents_lease")
      .set({ expires_at: Date.now() - 1 })
      .where("holder", "=", "crashed-relay")
      .execute();
    expect(await second.lockOutbox(async () => "taken over")).toBe("taken over");
  });
});

/** A call counter (keeps the listener type exact). */
function counter(): { fn: () => void; readonly calls: number } {
  let calls = 0;
  return {
    fn: () => {
      calls += 1;
    },
    get calls() {
      return calls;
    },
  };
}

function postgresOptions(schema: string) {
  return { connectionString: PG_URL, schema, migrations: serviceMigrations };
}

describe("sqlite store shared by two processes", () => {
  it("should let one process relay at a time: the lease is in the file, not in a process", async () => {
    const dir = await mkdtemp(join(tmpdir(), "protoevents-store-"));
    afterThisTest(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, "shared.sqlite");
    const store = await open({ kind: "sqlite", file });
    const holder = startTsProcess("test/fixtures/lease-holder.ts", {}, [], [file]);
    afterThisTest(() => holder.stop());
    await holder.waitFor("holding the outbox lease", 60_000);
    expect(await store.lockOutbox(async () => "here")).toBeUndefined();
    await holder.stop();
    expect(holder.output()).toContain("released");
    expect(await store.lockOutbox(async () => "here")).toBe("here");
  });
});

describe("postgres store with replicas", () => {
  it("should give exactly one claim when 20 transactions of two replicas claim one event id", async () => {
    const schema = newSchema();
    const a = await createPostgresStore<ServiceTables>(postgresOptions(schema));
    afterThisTest(() => a.close());
    const b = await createPostgresStore<ServiceTables>(postgresOptions(schema));
    afterThisTest(() => b.close());
    const start = deferred();
    const attempts = Array.from({ length: 20 }, (_, i) =>
      (i % 2 === 0 ? a : b).transaction(async (tx) => {
        await start.promise;
        const claimed = await tx.claim("payment.order-placed", "evt-contended");
        // Hold the transaction open so the others queue on the unique key.
        await sleep(20);
        return claimed;
      }),
    );
    start.resolve();
    const results = await Promise.all(attempts);
    expect(results.filter(Boolean)).toHaveLength(1);
    const rows = await a.db.selectFrom("protoevents_inbox").selectAll().execute();
    expect(rows).toHaveLength(1);
  });

  it("should open both stores when two replicas create one new schema at the same time", async () => {
    const schema = newSchema();
    const stores = await Promise.all([
      createPostgresStore<ServiceTables>(postgresOptions(schema)),
      createPostgresStore<ServiceTables>(postgresOptions(schema)),
      createPostgresStore<ServiceTables>(postgresOptions(schema)),
    ]);
    for (const store of stores) {
      afterThisTest(() => store.close());
    }
    const [a, b] = stores;
    if (a === undefined || b === undefined) {
      throw new Error("expected stores");
    }
    expect(await a.transaction((tx) => tx.claim("sub", "evt-1"))).toBe(true);
    expect(await b.transaction((tx) => tx.claim("sub", "evt-1"))).toBe(false);
    const applied = await adminQuery<{ name: string }>(
      `select name from "${schema}".protoevents_migration union all select name from "${schema}".service_migration`,
    );
    expect(applied.map((row) => row.name).sort()).toEqual([
      "0001_inbox_outbox",
      "0001_notes",
      "0002_lease",
    ]);
  });

  it("should let concurrent transactions that enqueue one ordering key take turns, so ids follow commit order", async () => {
    const schema = newSchema();
    const store = await createPostgresStore(postgresOptions(schema));
    afterThisTest(() => store.close());
    const release = deferred();
    const firstEnqueued = deferred();
    // The first transaction enqueues key K and holds on before committing.
    const first = store.transaction(async (tx) => {
      await tx.enqueue([entry(1, "K")]);
      firstEnqueued.resolve();
      await release.promise;
    });
    await firstEnqueued.promise;
    let secondDone = false;
    const second = store
      .transaction((tx) => tx.enqueue([entry(2, "K"), entry(3, "other")]))
      .then(() => {
        secondDone = true;
      });
    // The second waits on the key's lock, in PostgreSQL, until the first commits.
    await waitFor(
      "the second transaction waiting on the ordering key's lock",
      async () =>
        (
          await adminQuery<{ n: string }>(
            "select count(*)::text as n from pg_stat_activity where wait_event_type = 'Lock' and query like '%pg_advisory_xact_lock%'",
          )
        )[0]?.n === "1",
    );
    expect(secondDone).toBe(false);
    release.resolve();
    await Promise.all([first, second]);
    const pending = await store.pendingOutbox(10);
    expect(pending.map((r) => r.eventId)).toEqual(["evt-1", "evt-2", "evt-3"]);
  });

  it("should hold the outbox lock across replicas when both relays run", async () => {
    const schema = newSchema();
    const a = await createPostgresStore(postgresOptions(schema));
    afterThisTest(() => a.close());
    const b = await createPostgresStore(postgresOptions(schema));
    afterThisTest(() => b.close());
    const other = await createPostgresStore(postgresOptions(newSchema()));
    afterThisTest(() => other.close());
    const release = deferred();
    const entered = deferred();
    const holder = a.lockOutbox(async () => {
      entered.resolve();
      await release.promise;
    });
    await entered.promise;
    expect(await b.lockOutbox(async () => "b")).toBeUndefined();
    // Another service's schema has its own lock.
    expect(await other.lockOutbox(async () => "other")).toBe("other");
    release.resolve();
    await holder;
    expect(await b.lockOutbox(async () => "b")).toBe("b");
  });

  it("should keep each service in its own schema when two services share a database", async () => {
    const one = await createPostgresStore<ServiceTables>(postgresOptions(newSchema()));
    afterThisTest(() => one.close());
    const two = await createPostgresStore<ServiceTables>(postgresOptions(newSchema()));
    afterThisTest(() => two.close());
    expect(await one.transaction((tx) => tx.claim("sub", "evt-1"))).toBe(true);
    expect(await two.transaction((tx) => tx.claim("sub", "evt-1"))).toBe(true);
    await one.db.insertInto("notes").values({ id: "n", body: "one" }).execute();
    expect(await two.db.selectFrom("notes").selectAll().execute()).toEqual([]);
  });

  it("should parse int8 columns as numbers without changing pg's global parsers", async () => {
    const store = await createPostgresStore(postgresOptions(newSchema()));
    afterThisTest(() => store.close());
    const rows = await sql<{ n: unknown }>`select 9007199254740991::int8 as n`.execute(store.db);
    expect(rows.rows[0]?.n).toBe(Number.MAX_SAFE_INTEGER);
    expect(await adminQuery<{ n: unknown }>("select 1::int8 as n")).toEqual([{ n: "1" }]);
  });
});

describe("postgres store failures", () => {
  it("should reject with store_unavailable naming the store when PostgreSQL refuses connections", async () => {
    const schema = uniqueName("pe_down");
    const error: unknown = await createPostgresStore({
      connectionString: "postgres://postgres@127.0.0.1:1/test",
      schema,
    }).catch((e: unknown) => e);
    expect(isProtoeventsError(error)).toBe(true);
    expect(error).toMatchObject({ code: Code.StoreUnavailable });
    expect((error as Error).message).toContain(`postgres store (schema ${schema})`);
    expect((error as Error).message).toContain("ECONNREFUSED");
  });

  it("should fail with store_unavailable while PostgreSQL is unreachable and recover when it returns", async () => {
    const proxy = await startTcpProxy(5432);
    afterThisTest(() => proxy.down());
    const schema = newSchema();
    const store = await createPostgresStore({
      connectionString: `postgres://postgres@127.0.0.1:${proxy.port}/test`,
      schema,
      poolSize: 3,
    });
    afterThisTest(() => store.close());
    expect(await store.transaction((tx) => tx.claim("sub", "evt-1"))).toBe(true);

    await proxy.down();
    const failed: unknown = await store
      .transaction((tx) => tx.claim("sub", "evt-2"))
      .catch((e: unknown) => e);
    expect(failed).toMatchObject({ code: Code.StoreUnavailable });
    expect((failed as Error).message).toContain(schema);
    await expect(store.pendingOutbox(10)).rejects.toMatchObject({ code: Code.StoreUnavailable });
    await expect(store.lockOutbox(async () => 1)).rejects.toMatchObject({
      code: Code.StoreUnavailable,
    });

    await proxy.up();
    expect(await store.transaction((tx) => tx.claim("sub", "evt-2"))).toBe(true);
    expect(await store.transaction((tx) => tx.claim("sub", "evt-1"))).toBe(false);
  });

  it("should recover the pool when PostgreSQL terminates the store's connections", async () => {
    const applicationName = uniqueName("pe_term");
    const store = await createPostgresStore({
      ...postgresOptions(newSchema()),
      applicationName,
      poolSize: 3,
    });
    afterThisTest(() => store.close());
    // Open three pooled connections.
    await Promise.all(
      [1, 2, 3].map((i) =>
        store.transaction(async (tx) => {
          await tx.claim("sub", `warm-${i}`);
          await sleep(30);
        }),
      ),
    );
    const terminated = await adminQuery<{ ok: boolean }>(
      "select pg_terminate_backend(pid) as ok from pg_stat_activity where application_name = $1",
      [applicationName],
    );
    expect(terminated.length).toBeGreaterThan(0);

    const next = await store
      .transaction((tx) => tx.claim("sub", "after-1"))
      .then(
        (claimed) => ({ claimed }),
        (error: unknown) => ({ error }),
      );
    if ("error" in next) {
      expect(next.error).toMatchObject({ code: Code.StoreUnavailable });
    } else {
      expect(next.claimed).toBe(true);
    }
    expect(await store.transaction((tx) => tx.claim("sub", "after-2"))).toBe(true);
    expect(await store.pendingOutbox(10)).toEqual([]);
  });

  it("should report a deadlock as store_unavailable when it surfaces through the work function", async () => {
    const schema = newSchema();
    const a = await createPostgresStore<ServiceTables>(postgresOptions(schema));
    afterThisTest(() => a.close());
    await a.db
      .insertInto("notes")
      .values([
        { id: "x", body: "0" },
        { id: "y", body: "0" },
      ])
      .execute();
    const bothLocked = { count: 0, ready: deferred() };
    const update = (first: string, second: string) =>
      a.transaction(async (tx) => {
        await tx.db.updateTable("notes").set({ body: "1" }).where("id", "=", first).execute();
        bothLocked.count += 1;
        if (bothLocked.count === 2) {
          bothLocked.ready.resolve();
        }
        await bothLocked.ready.promise;
        await tx.db.updateTable("notes").set({ body: "2" }).where("id", "=", second).execute();
        return "ok";
      });
    const results = await Promise.allSettled([update("x", "y"), update("y", "x")]);
    const rejected = results.filter((r) => r.status === "rejected");
    expect(rejected).toHaveLength(1);
    expect((rejected[0] as PromiseRejectedResult).reason).toMatchObject({
      code: Code.StoreUnavailable,
    });
  });
});

describe("storeConfigFromEnv", () => {
  it("should choose SQLite under .data when no store URL is set", () => {
    expect(storeConfigFromEnv("order", {})).toEqual({
      kind: "sqlite",
      file: join(".data", "order.sqlite"),
    });
    expect(storeConfigFromEnv("order", { PROTOEVENTS_DATA_DIR: "/var/lib/pe" })).toEqual({
      kind: "sqlite",
      file: join("/var/lib/pe", "order.sqlite"),
    });
  });

  it("should choose PostgreSQL with a sanitised schema when the store URL is a postgres URL", () => {
    expect(storeConfigFromEnv("order", { PROTOEVENTS_STORE_URL: PG_URL })).toEqual({
      kind: "postgres",
      connectionString: PG_URL,
      schema: "order",
    });
    const url = "postgresql://u:p@db:5432/app";
    expect(storeConfigFromEnv("Order-Service.v2", { PROTOEVENTS_STORE_URL: url })).toMatchObject({
      schema: "order_service_v2",
    });
    expect(storeConfigFromEnv("2fa", { PROTOEVENTS_STORE_URL: url })).toMatchObject({
      schema: "_2fa",
    });
  });

  it("should refuse a store URL when it is neither unset nor a postgres URL", () => {
    expect(() =>
      storeConfigFromEnv("order", { PROTOEVENTS_STORE_URL: "mysql://u:secret@db/app" }),
    ).toThrow(/PROTOEVENTS_STORE_URL/);
    expect(() =>
      storeConfigFromEnv("order", { PROTOEVENTS_STORE_URL: "mysql://u:secret@db/app" }),
    ).not.toThrow(/secret/);
  });
});
