import { Code, ProtoeventsError } from "./errors.js";
import { getDefaultLogger, type Logger } from "./logger.js";
import type { Store } from "./store/store.js";

/**
 * How long inbox claims and sent outbox rows are kept: 14 days, twice
 * Pub/Sub's longest subscription retention (7 days), so any redelivery
 * Pub/Sub can still make finds its claim. A duplicate older than the window
 * (for example a replay by `seek` to a snapshot older than 14 days) is
 * processed again.
 */
export const DEFAULT_RETENTION_MS = 14 * 24 * 60 * 60 * 1000;

/** How often pruning runs. */
export const DEFAULT_PRUNE_INTERVAL_MS = 60 * 60 * 1000;

/** Options of {@link startPruning}. */
export interface PruningOptions {
  /** Keep claims and sent rows this long. @default DEFAULT_RETENTION_MS */
  readonly retentionMs?: number;
  /** @default DEFAULT_PRUNE_INTERVAL_MS */
  readonly intervalMs?: number;
  readonly logger?: Logger;
  /** The clock, for tests. @default Date.now */
  readonly now?: () => number;
}

/** A pruning schedule. */
export interface Pruning {
  /** Prune now, after any run in progress; resolves with what this run deleted. */
  pruneNow(): Promise<{ inbox: number; outbox: number }>;
  stop(): void;
}

/**
 * Delete inbox claims and sent outbox rows older than the retention window,
 * now and then every interval. Pending outbox rows are never deleted. A
 * failed run is logged and retried at the next interval.
 */
export function startPruning(store: Pick<Store, "prune">, options: PruningOptions = {}): Pruning {
  const retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
  if (!(retentionMs > 0)) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `retentionMs must be positive, got ${retentionMs}`,
    );
  }
  const now = options.now ?? Date.now;
  const log = options.logger ?? getDefaultLogger();
  const pruneNow = async () => {
    const deleted = await store.prune(now() - retentionMs);
    if (deleted.inbox > 0 || deleted.outbox > 0) {
      log.info(
        { op: "prune", ...deleted, retentionMs },
        "pruned inbox claims and sent outbox rows",
      );
    }
    return deleted;
  };
  const run = () => {
    pruneNow().catch((error: unknown) =>
      log.error(
        { op: "prune", err: ProtoeventsError.from(error, Code.StoreUnavailable) },
        "pruning failed",
      ),
    );
  };
  run();
  const timer = setInterval(run, options.intervalMs ?? DEFAULT_PRUNE_INTERVAL_MS);
  timer.unref();
  return { pruneNow, stop: () => clearInterval(timer) };
}
