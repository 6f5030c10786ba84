import type { StoreTransaction } from "../store/store.js";

/**
 * How a delivery's handler runs: once per event in a store transaction
 * that claims it in the inbox first, or, without a store, at least once.
 * `Extra` is what the handler gets from it: the transaction.
 */
export interface Inbox<Extra extends object> {
  /** Whether a duplicate is recognised (there is a store). */
  readonly deduplicates: boolean;
  /**
   * Run `work` for the event `eventId` of `subscription`. With a store: in a
   * transaction that first claims the pair, committing the claim with what
   * `work` wrote; resolves false, without running `work`, when the claim
   * already existed (a duplicate). Without one: runs it, resolves true.
   */
  run(
    subscription: string,
    eventId: string,
    work: (extra: Extra) => Promise<void> | void,
  ): Promise<boolean>;
}

/** No store: every delivery runs its handler; the handler gets nothing extra. */
export const AT_LEAST_ONCE: Inbox<object> = {
  deduplicates: false,
  async run(_subscription, _eventId, work) {
    await work({});
    return true;
  },
};

/** The inbox of a store: the handler gets the claiming transaction as `tx`. */
export function storeInbox<Tx extends Pick<StoreTransaction, "claim">>(store: {
  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
}): Inbox<{ readonly tx: Tx }> {
  return {
    deduplicates: true,
    run(subscription, eventId, work) {
      return store.transaction(async (tx) => {
        if (!(await tx.claim(subscription, eventId))) {
          return false;
        }
        await work({ tx });
        return true;
      });
    },
  };
}
