/**
 * Opt-in fault injection for the chaos run (`npm run chaos`, `test/chaos/`):
 * makes a chosen share of consumer deliveries fail transiently, the way a
 * handler whose database or downstream hiccups fails, so that the run can
 * prove the retry path (rollback, nack, redelivery, inbox) under load.
 *
 * Off unless `PROTOEVENTS_FAULT_RATE` is set; nothing but the chaos run sets
 * it. When on, the service's store is wrapped: a delivery's transaction (the
 * one that claims `(subscription, ce-id)` in the inbox) throws at a point the
 * decision picks — right after the claim, before the handler runs, or after
 * the handler ran and wrote its state and outbox rows, just before the
 * commit. Either way the transaction rolls back like a real failure, and the
 * consumer nacks it for redelivery. Transactions without a claim (API calls,
 * seeding) are never touched.
 *
 * Whether a delivery fails is a pure function of the seed, the subscription,
 * the event id and how many injected faults this event already had in this
 * process, so the decisions follow from the seed alone.
 *
 * Environment:
 * - `PROTOEVENTS_FAULT_RATE`: probability from 0 to 1 that a delivery fails.
 * - `PROTOEVENTS_FAULT_SEED`: integer seed of the decisions. @default 1
 * - `PROTOEVENTS_FAULT_LOG`: a file to append two lines per claiming
 *   transaction to, `<outcome> <subscription> <event id> <pid> <unix ms>`:
 *   `claiming` when the claim starts, then how it ended — `handled`,
 *   `duplicate` (the inbox held the event), `fault` (injected) or `failed`
 *   (rolled back for another reason). The chaos run counts the outcomes and
 *   tells from the lines which deliveries a live process got hold of.
 */
import { createHash } from "node:crypto";
import { appendFileSync } from "node:fs";
import type { Store, StoreTransaction } from "@protoevents/runtime";
import { Code, ProtoeventsError } from "@protoevents/runtime";

/** Environment variable turning fault injection on: the failure probability per delivery. */
export const FAULT_RATE_ENV = "PROTOEVENTS_FAULT_RATE";
/** Environment variable with the seed of the fault decisions. */
export const FAULT_SEED_ENV = "PROTOEVENTS_FAULT_SEED";
/** Environment variable naming the file the outcome lines are appended to. */
export const FAULT_LOG_ENV = "PROTOEVENTS_FAULT_LOG";

/** How fault injection is configured. */
export interface FaultConfig {
  /** Probability from 0 to 1 that a delivery fails. */
  readonly rate: number;
  readonly seed: number;
  /** Where to append outcome lines; none when undefined. */
  readonly log?: string;
}

/** Where an injected fault strikes. */
export type FaultPoint = "before-handler" | "after-handler";

/** What a claiming transaction came to, as written to the outcome log. */
export type DeliveryOutcomeKind = "handled" | "duplicate" | "fault" | "failed";

/** One line of the outcome log. */
export interface FaultLogLine {
  readonly outcome: DeliveryOutcomeKind | "claiming";
  readonly subscription: string;
  readonly eventId: string;
  readonly pid: number;
  /** Unix ms. */
  readonly at: number;
}

/** The lines of an outcome log; malformed lines (a write cut by SIGKILL) are skipped. */
export function parseFaultLog(text: string): FaultLogLine[] {
  const lines: FaultLogLine[] = [];
  for (const line of text.split("\n")) {
    const [outcome, subscription, eventId, pid, at] = line.split(" ");
    if (
      (outcome === "claiming" ||
        outcome === "handled" ||
        outcome === "duplicate" ||
        outcome === "fault" ||
        outcome === "failed") &&
      subscription !== undefined &&
      eventId !== undefined &&
      Number.isSafeInteger(Number(pid)) &&
      Number.isSafeInteger(Number(at))
    ) {
      lines.push({ outcome, subscription, eventId, pid: Number(pid), at: Number(at) });
    }
  }
  return lines;
}

/**
 * The fault configuration of the environment, or undefined when
 * `PROTOEVENTS_FAULT_RATE` is unset or empty (injection off).
 *
 * @throws ProtoeventsError `invalid_argument` for a rate outside 0–1 or a
 *   seed that is not an integer, rather than running without the faults
 *   asked for.
 */
export function faultConfigFromEnv(env: NodeJS.ProcessEnv): FaultConfig | undefined {
  const rateText = env[FAULT_RATE_ENV]?.trim() ?? "";
  if (rateText === "") {
    return undefined;
  }
  const rate = Number(rateText);
  if (!Number.isFinite(rate) || rate < 0 || rate > 1) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `${FAULT_RATE_ENV} must be a number from 0 to 1, got ${JSON.stringify(rateText)}`,
    );
  }
  const seedText = env[FAULT_SEED_ENV]?.trim() || "1";
  const seed = Number(seedText);
  if (!Number.isSafeInteger(seed)) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `${FAULT_SEED_ENV} must be an integer, got ${JSON.stringify(seedText)}`,
    );
  }
  const log = env[FAULT_LOG_ENV]?.trim() ?? "";
  return log === "" ? { rate, seed } : { rate, seed, log };
}

/**
 * Whether the delivery of `eventId` on `subscription` fails, and where, on
 * the `attempt`-th try in this process (0 for the first): a hash of all four,
 * so the same inputs always decide the same.
 */
export function faultDecision(
  config: Pick<FaultConfig, "rate" | "seed">,
  subscription: string,
  eventId: string,
  attempt: number,
): FaultPoint | undefined {
  if (config.rate <= 0) {
    return undefined;
  }
  const digest = createHash("sha256")
    .update(`${config.seed}\u0000${subscription}\u0000${eventId}\u0000${attempt}`)
    .digest();
  if (digest.readUInt32BE(0) / 2 ** 32 >= config.rate) {
    return undefined;
  }
  return (digest[4] ?? 0) % 2 === 0 ? "before-handler" : "after-handler";
}

/** Errors this module threw, to tell them from the handler's own. */
const injected = new WeakSet<object>();

/** Whether `error` is a fault this module injected. */
export function isInjectedFault(error: unknown): boolean {
  return typeof error === "object" && error !== null && injected.has(error);
}

function fault(subscription: string, eventId: string, point: FaultPoint): ProtoeventsError {
  const error = new ProtoeventsError(
    Code.HandlerFailed,
    `injected fault (${FAULT_RATE_ENV}) ${point} on ${subscription}, event ${eventId}`,
  );
  injected.add(error);
  return error;
}

/**
 * The store with fault injection: every method delegates to `store`, and
 * `transaction` fails claiming transactions as {@link faultDecision} says.
 */
export function withInjectedFaults<DB>(store: Store<DB>, config: FaultConfig): Store<DB> {
  /** Injected faults so far per `subscription \0 event id`; cleared when the event succeeds. */
  const faults = new Map<string, number>();
  const record = (
    outcome: DeliveryOutcomeKind | "claiming",
    subscription: string,
    eventId: string,
  ): void => {
    if (config.log !== undefined) {
      // Synchronous, so the line is written even if the process is killed right after.
      appendFileSync(
        config.log,
        `${outcome} ${subscription} ${eventId} ${process.pid} ${Date.now()}\n`,
      );
    }
  };

  async function transaction<T>(work: (tx: StoreTransaction<DB>) => Promise<T>): Promise<T> {
    let claimed: { subscription: string; eventId: string; fresh: boolean } | undefined;
    let point: FaultPoint | undefined;
    try {
      const result = await store.transaction(async (tx) => {
        const wrapped: StoreTransaction<DB> = {
          db: tx.db,
          enqueue: (entries) => tx.enqueue(entries),
          async claim(subscription, eventId) {
            record("claiming", subscription, eventId);
            // Known before the claim resolves, so a claim that throws (the
            // store away) still ends with an outcome line.
            claimed = { subscription, eventId, fresh: false };
            const fresh = await tx.claim(subscription, eventId);
            claimed = { subscription, eventId, fresh };
            if (fresh) {
              point = faultDecision(
                config,
                subscription,
                eventId,
                faults.get(`${subscription}\u0000${eventId}`) ?? 0,
              );
              if (point === "before-handler") {
                throw fault(subscription, eventId, point);
              }
            }
            return fresh;
          },
        };
        const value = await work(wrapped);
        if (claimed !== undefined && point === "after-handler") {
          throw fault(claimed.subscription, claimed.eventId, point);
        }
        return value;
      });
      if (claimed !== undefined) {
        faults.delete(`${claimed.subscription}\u0000${claimed.eventId}`);
        record(claimed.fresh ? "handled" : "duplicate", claimed.subscription, claimed.eventId);
      }
      return result;
    } catch (error) {
      if (claimed !== undefined) {
        if (isInjectedFault(error)) {
          const key = `${claimed.subscription}\u0000${claimed.eventId}`;
          faults.set(key, (faults.get(key) ?? 0) + 1);
          record("fault", claimed.subscription, claimed.eventId);
        } else {
          record("failed", claimed.subscription, claimed.eventId);
        }
      }
      throw error;
    }
  }

  return {
    dialect: store.dialect,
    db: store.db,
    transaction,
    lockOutbox: (work) => store.lockOutbox(work),
    pendingOutbox: (limit) => store.pendingOutbox(limit),
    outboxBacklog: () => store.outboxBacklog(),
    markSent: (ids, sentAt) => store.markSent(ids, sentAt),
    markFailed: (id, error) => store.markFailed(id, error),
    prune: (olderThan) => store.prune(olderThan),
    onOutboxCommit: (listener) => store.onOutboxCommit(listener),
    close: () => store.close(),
  };
}
