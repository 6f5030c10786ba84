import { describe, expect, it } from "vitest";
import { startPruning } from "../../runtime/src/retention.js";
import type { Store } from "../../runtime/src/store/store.js";
import { afterThisTest } from "../helpers/cleanup.js";
import { testStoreLocation } from "../helpers/stores.js";

describe("retention", () => {
  it("should prune claims and sent outbox rows older than the window, never pending rows", async () => {
    const where = await testStoreLocation("sqlite");
    afterThisTest(() => where.remove());
    const store: Store = await where.open();
    afterThisTest(() => store.close());
    const day = 24 * 60 * 60 * 1000;
    await store.transaction(async (tx) => {
      await tx.claim("sub", "old-claim");
      await tx.enqueue(
        ["sent-old", "pending-old"].map((eventId) => ({
          eventId,
          eventType: "t",
          topic: "topic",
          orderingKey: undefined,
          data: new Uint8Array([1]),
          attributes: {},
        })),
      );
    });
    const [sent] = await store.pendingOutbox(1);
    await store.markSent([sent?.id ?? -1], Date.now());

    // Fifteen days later, with the default 14-day window. Pruning starts with
    // a run of its own; pruneNow waits for it.
    const pruning = startPruning(store, { now: () => Date.now() + 15 * day, intervalMs: day });
    afterThisTest(async () => pruning.stop());
    await pruning.pruneNow();
    expect((await store.pendingOutbox(10)).map((r) => r.eventId)).toEqual(["pending-old"]);
    expect(await store.transaction((tx) => tx.claim("sub", "old-claim"))).toBe(true);

    // Within the window nothing goes.
    const early = startPruning(store, { now: () => Date.now() + 1 * day, intervalMs: day });
    afterThisTest(async () => early.stop());
    expect(await early.pruneNow()).toEqual({ inbox: 0, outbox: 0 });
  });

  it("should refuse a window that is not positive", () => {
    expect(() =>
      startPruning({ prune: async () => ({ inbox: 0, outbox: 0 }) }, { retentionMs: 0 }),
    ).toThrow(/\[invalid_argument\] retentionMs must be positive, got 0/);
  });
});
