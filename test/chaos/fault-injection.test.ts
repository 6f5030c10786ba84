import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Kysely } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { Code, isProtoeventsError } from "../../runtime/src/errors.js";
import type { OutboxEntry, Store } from "../../runtime/src/store/store.js";
import {
  type FaultConfig,
  faultConfigFromEnv,
  faultDecision,
  isInjectedFault,
  parseFaultLog,
  withInjectedFaults,
} from "../../services/lib/fault-injection.js";
import { type TestStoreLocation, testStoreLocation } from "../helpers/stores.js";

interface Tables {
  readonly effects: { readonly event_id: string };
}

const migrations = {
  "0001_effects": {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable("effects")
        .addColumn("event_id", "text", (c) => c.notNull())
        .execute();
    },
  },
};

const locations: TestStoreLocation[] = [];
const stores: Store<Tables>[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) {
    await store.close();
  }
  for (const location of locations.splice(0)) {
    await location.remove();
  }
});

async function openStore(): Promise<{ store: Store<Tables>; dir: string }> {
  const location = await testStoreLocation("sqlite");
  locations.push(location);
  const store = await location.open<Tables>(migrations);
  stores.push(store);
  return { store, dir: join(location.name, "..") };
}

function entry(eventId: string): OutboxEntry {
  return {
    eventId: `out-${eventId}`,
    eventType: "test.Effect",
    topic: "test.effects",
    orderingKey: undefined,
    data: new Uint8Array([1]),
    attributes: {},
  };
}

/** A delivery as the consumer runs it: claim, the handler's write and outbox row, commit. */
function deliver(store: Store<Tables>, subscription: string, eventId: string): Promise<boolean> {
  return store.transaction(async (tx) => {
    if (!(await tx.claim(subscription, eventId))) {
      return false;
    }
    await tx.db.insertInto("effects").values({ event_id: eventId }).execute();
    await tx.enqueue([entry(eventId)]);
    return true;
  });
}

/** An event id whose first delivery fails at `point` and whose second does not. */
function eventFailingOnce(config: FaultConfig, subscription: string, point: string): string {
  for (let i = 0; i < 10_000; i++) {
    const id = `evt-${i}`;
    if (
      faultDecision(config, subscription, id, 0) === point &&
      faultDecision(config, subscription, id, 1) === undefined
    ) {
      return id;
    }
  }
  throw new Error("no such event id");
}

async function effects(store: Store<Tables>) {
  const rows = await store.db.selectFrom("effects").select("event_id").execute();
  const claims = await store.db.selectFrom("protoevents_inbox").select("event_id").execute();
  const outbox = await store.db.selectFrom("protoevents_outbox").select("event_id").execute();
  return { rows: rows.length, claims: claims.length, outbox: outbox.length };
}

describe("faultConfigFromEnv", () => {
  it("should be off when PROTOEVENTS_FAULT_RATE is unset or empty", () => {
    expect(faultConfigFromEnv({})).toBeUndefined();
    expect(faultConfigFromEnv({ PROTOEVENTS_FAULT_RATE: " " })).toBeUndefined();
  });

  it("should read the rate, the seed (default 1) and the outcome log", () => {
    expect(faultConfigFromEnv({ PROTOEVENTS_FAULT_RATE: "0.05" })).toEqual({ rate: 0.05, seed: 1 });
    expect(
      faultConfigFromEnv({
        PROTOEVENTS_FAULT_RATE: "1",
        PROTOEVENTS_FAULT_SEED: "42",
        PROTOEVENTS_FAULT_LOG: "/tmp/f.log",
      }),
    ).toEqual({ rate: 1, seed: 42, log: "/tmp/f.log" });
  });

  it("should refuse a rate outside 0–1 or a seed that is not an integer", () => {
    for (const env of [
      { PROTOEVENTS_FAULT_RATE: "1.5" },
      { PROTOEVENTS_FAULT_RATE: "often" },
      { PROTOEVENTS_FAULT_RATE: "0.1", PROTOEVENTS_FAULT_SEED: "x" },
    ]) {
      let error: unknown;
      try {
        faultConfigFromEnv(env);
      } catch (e) {
        error = e;
      }
      expect(isProtoeventsError(error) && error.code).toBe(Code.InvalidArgument);
    }
  });
});

describe("faultDecision", () => {
  it("should decide the same for the same inputs and fail about the chosen share", () => {
    const config = { rate: 0.2, seed: 3 };
    let faults = 0;
    for (let i = 0; i < 5_000; i++) {
      const decision = faultDecision(config, "sub", `evt-${i}`, 0);
      expect(faultDecision(config, "sub", `evt-${i}`, 0)).toBe(decision);
      if (decision !== undefined) {
        faults++;
      }
    }
    expect(faults / 5_000).toBeGreaterThan(0.17);
    expect(faults / 5_000).toBeLessThan(0.23);
    expect(faultDecision({ rate: 0, seed: 3 }, "sub", "evt-1", 0)).toBeUndefined();
    expect(faultDecision({ rate: 1, seed: 3 }, "sub", "evt-1", 0)).toBeDefined();
  });
});

describe("withInjectedFaults", () => {
  for (const point of ["before-handler", "after-handler"] as const) {
    it(`should roll the delivery back when it fails ${point}, and let the redelivery commit once`, async () => {
      const { store, dir } = await openStore();
      const log = join(dir, "faults.log");
      const config = { rate: 0.5, seed: 7, log };
      const faulty = withInjectedFaults(store, config);
      const id = eventFailingOnce(config, "test.sub", point);

      const first = await deliver(faulty, "test.sub", id).catch((e: unknown) => e);
      expect(isInjectedFault(first)).toBe(true);
      expect(isProtoeventsError(first) && first.code).toBe(Code.HandlerFailed);
      expect(isProtoeventsError(first) && first.permanent).toBe(false);
      // Nothing of the failed attempt survives: no claim, no write, no outbox row.
      expect(await effects(store)).toEqual({ rows: 0, claims: 0, outbox: 0 });

      expect(await deliver(faulty, "test.sub", id)).toBe(true);
      expect(await deliver(faulty, "test.sub", id)).toBe(false);
      expect(await effects(store)).toEqual({ rows: 1, claims: 1, outbox: 1 });
      const lines = parseFaultLog(await readFile(log, "utf8"));
      expect(lines.map((l) => `${l.outcome} ${l.subscription} ${l.eventId}`)).toEqual([
        `claiming test.sub ${id}`,
        `fault test.sub ${id}`,
        `claiming test.sub ${id}`,
        `handled test.sub ${id}`,
        `claiming test.sub ${id}`,
        `duplicate test.sub ${id}`,
      ]);
      expect(new Set(lines.map((l) => l.pid))).toEqual(new Set([process.pid]));
    });
  }

  it("should leave transactions without an inbox claim alone", async () => {
    const { store } = await openStore();
    const faulty = withInjectedFaults(store, { rate: 1, seed: 1 });
    await faulty.transaction(async (tx) => {
      await tx.db.insertInto("effects").values({ event_id: "api-call" }).execute();
      await tx.enqueue([entry("api-call")]);
    });
    expect(await effects(store)).toEqual({ rows: 1, claims: 0, outbox: 1 });
    expect(await faulty.pendingOutbox(10)).toHaveLength(1);
  });

  it("should record a rollback for another reason as failed", async () => {
    const { store, dir } = await openStore();
    const log = join(dir, "faults.log");
    const faulty = withInjectedFaults(store, { rate: 0, seed: 1, log });
    const error = await faulty
      .transaction(async (tx) => {
        await tx.claim("test.sub", "evt-x");
        throw new Error("handler bug");
      })
      .catch((e: unknown) => e);
    expect(isInjectedFault(error)).toBe(false);
    expect(
      parseFaultLog(await readFile(log, "utf8")).map((l) => `${l.outcome} ${l.eventId}`),
    ).toEqual(["claiming evt-x", "failed evt-x"]);
    expect(await effects(store)).toEqual({ rows: 0, claims: 0, outbox: 0 });
  });
});
