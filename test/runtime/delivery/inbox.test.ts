import { describe, expect, it } from "vitest";
import { AT_LEAST_ONCE, storeInbox } from "../../../runtime/src/delivery/inbox.js";
import type { StoreTransaction } from "../../../runtime/src/store/store.js";

/** A fake store: a transaction is the work run with a fake claim; records claims and outcomes. */
class FakeStore {
  readonly claims = new Set<string>();
  readonly log: string[] = [];
  async transaction<T>(work: (tx: Pick<StoreTransaction, "claim">) => Promise<T>): Promise<T> {
    const tx = {
      claim: async (subscription: string, eventId: string) => {
        const key = `${subscription}/${eventId}`;
        const fresh = !this.claims.has(key);
        this.claims.add(key);
        return fresh;
      },
    };
    try {
      const result = await work(tx);
      this.log.push("commit");
      return result;
    } catch (error) {
      this.log.push("rollback");
      throw error;
    }
  }
}

describe("AT_LEAST_ONCE", () => {
  it("should run every delivery, adding nothing to the handler's context", async () => {
    const extras: object[] = [];
    expect(await AT_LEAST_ONCE.run("s", "e", (extra) => void extras.push(extra))).toBe(true);
    expect(await AT_LEAST_ONCE.run("s", "e", (extra) => void extras.push(extra))).toBe(true);
    expect(extras).toEqual([{}, {}]);
    expect(AT_LEAST_ONCE.deduplicates).toBe(false);
  });
});

describe("storeInbox", () => {
  it("should run the work once per event in the claiming transaction, and skip a duplicate", async () => {
    const store = new FakeStore();
    const inbox = storeInbox(store);
    const runs: string[] = [];
    expect(await inbox.run("s", "e1", ({ tx }) => void runs.push(typeof tx.claim))).toBe(true);
    expect(await inbox.run("s", "e1", () => void runs.push("again"))).toBe(false);
    expect(await inbox.run("other", "e1", () => void runs.push("other subscription"))).toBe(true);
    expect(runs).toEqual(["function", "other subscription"]);
    expect(inbox.deduplicates).toBe(true);
  });

  it("should roll back the transaction when the work throws, and rethrow", async () => {
    const store = new FakeStore();
    const inbox = storeInbox(store);
    await expect(
      inbox.run("s", "e1", () => {
        throw new Error("handler failed");
      }),
    ).rejects.toThrow("handler failed");
    expect(store.log).toEqual(["rollback"]);
  });
});
