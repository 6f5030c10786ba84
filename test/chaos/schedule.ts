/**
 * The fault schedule of a chaos run: a timeline (which service is killed
 * when and for how long, notification's outage, PostgreSQL's outage, when
 * which poison message goes out) and the per-event decisions (which events
 * are duplicated or delivered late). Everything is a pure function of the
 * seed and the run's size, so the same seed plans the same faults.
 */
import { createHash } from "node:crypto";
import type { ContractRegistry } from "../../runtime/src/contract.js";
import { seededRandom } from "../../services/supervisor/demo-orders.js";
import { SERVICES, type ServiceName } from "../helpers/checkout.js";
import type { ChaosOptions } from "./options.js";

export { SERVICES, type ServiceName };

/** The kinds of poison message. */
export const POISON_KINDS = ["garbage-bytes", "unknown-type", "broken-rule"] as const;
export type PoisonKind = (typeof POISON_KINDS)[number];

/** The dead-letter reason each kind of poison must get. */
export const POISON_REASONS: Readonly<Record<PoisonKind, string>> = {
  "garbage-bytes": "decode_failed",
  "unknown-type": "unknown_event_type",
  "broken-rule": "validation_failed",
};

/** One planned fault; `atMs` counts from the first order. */
export type TimelineEvent =
  | {
      /** SIGKILL the service, restart it `downMs` later. */
      readonly kind: "kill";
      readonly atMs: number;
      readonly service: ServiceName;
      readonly downMs: number;
    }
  | {
      /** Stop the service gracefully (SIGTERM), start it again `downMs` later. */
      readonly kind: "outage";
      readonly atMs: number;
      readonly service: ServiceName;
      readonly downMs: number;
    }
  | {
      /** Close every connection to PostgreSQL and refuse new ones for `downMs`. */
      readonly kind: "postgres-outage";
      readonly atMs: number;
      readonly downMs: number;
    }
  | {
      /** Publish a poison message with a raw client. */
      readonly kind: "poison";
      readonly atMs: number;
      readonly poison: PoisonKind;
      readonly topic: string;
      /** Its `ce-id`, by which the dead letters are recognised. */
      readonly id: string;
    };

/** What to do with an event the monitor saw. */
export type CopyDecision =
  | { readonly kind: "none" }
  | { readonly kind: "duplicate" }
  | { readonly kind: "delayed"; readonly delayMs: number };

/** The planned faults of a run. */
export interface FaultPlan {
  readonly seed: number;
  /** How long placing the orders takes at the asked rate. */
  readonly placingMs: number;
  /** When the timeline ends (the last fault is over). */
  readonly endMs: number;
  /** Sorted by `atMs`. */
  readonly timeline: readonly TimelineEvent[];
}

/** A number in [0, 1) from the seed and `parts`: the same inputs give the same number. */
export function hashUnit(seed: number, ...parts: readonly (string | number)[]): number {
  const digest = createHash("sha256")
    .update([seed, ...parts].join("\u0000"))
    .digest();
  return digest.readUInt32BE(0) / 2 ** 32;
}

/** A seed for one purpose, derived from the run's seed. */
function streamSeed(seed: number, purpose: string): number {
  return Math.floor(hashUnit(seed, purpose) * 2 ** 32);
}

/** Topics some subscription reads: where a poison message is dead-lettered. */
export function consumedTopics(registry: ContractRegistry): string[] {
  return [
    ...new Set(registry.applications.flatMap((a) => a.subscriptions.map((s) => s.event.topic))),
  ].sort();
}

/** The subscriptions reading `topic`. */
export function subscriptionsOf(registry: ContractRegistry, topic: string): string[] {
  return registry.applications
    .flatMap((a) => a.subscriptions)
    .filter((s) => s.event.topic === topic)
    .map((s) => s.name)
    .sort();
}

/**
 * Plan the run's timeline from its seed, size and store:
 *
 * - notification is stopped (SIGTERM) at a quarter of the placing time, for
 *   30% of it (at least 3 s);
 * - `kills` services, drawn from all six, are SIGKILLed at random times in
 *   5–85% of the placing time and restarted 0.5–3 s later; a service is
 *   never killed while it is already down;
 * - PostgreSQL (postgres mode) drops every connection at 60% of the placing
 *   time, for 10% of it (2–8 s);
 * - `poisonPerKind` poison messages of each kind go to random consumed
 *   topics at random times in the placing time.
 */
export function planFaults(
  options: Pick<ChaosOptions, "orders" | "rate" | "seed" | "store" | "kills" | "poisonPerKind">,
  topics: readonly string[],
): FaultPlan {
  const random = seededRandom(streamSeed(options.seed, "timeline"));
  const placingMs = Math.round((options.orders / options.rate) * 1000);
  const timeline: TimelineEvent[] = [];
  const down: Array<{ service: ServiceName; from: number; to: number }> = [];
  const free = (service: ServiceName, from: number, to: number) =>
    !down.some((d) => d.service === service && d.from < to + 500 && from < d.to + 500);

  const outageAt = Math.round(placingMs * 0.25);
  const outageMs = Math.max(3_000, Math.round(placingMs * 0.3));
  timeline.push({ kind: "outage", atMs: outageAt, service: "notification", downMs: outageMs });
  down.push({ service: "notification", from: outageAt, to: outageAt + outageMs });

  for (let i = 0; i < options.kills; i++) {
    const atMs = Math.round(placingMs * (0.05 + 0.8 * random()));
    const downMs = Math.round(500 + 2_500 * random());
    // A few draws for a service that is up then; give up on this kill otherwise.
    for (let draw = 0; draw < 12; draw++) {
      const service = SERVICES[Math.floor(random() * SERVICES.length)] as ServiceName;
      if (free(service, atMs, atMs + downMs)) {
        timeline.push({ kind: "kill", atMs, service, downMs });
        down.push({ service, from: atMs, to: atMs + downMs });
        break;
      }
    }
  }

  if (options.store === "postgres") {
    timeline.push({
      kind: "postgres-outage",
      atMs: Math.round(placingMs * 0.6),
      downMs: Math.min(8_000, Math.max(2_000, Math.round(placingMs * 0.1))),
    });
  }

  if (topics.length > 0) {
    for (const poison of POISON_KINDS) {
      for (let j = 0; j < options.poisonPerKind; j++) {
        timeline.push({
          kind: "poison",
          atMs: Math.round(placingMs * random()),
          poison,
          topic: topics[Math.floor(random() * topics.length)] as string,
          id: `poison-${options.seed}-${poison}-${j + 1}`,
        });
      }
    }
  }

  timeline.sort((a, b) => a.atMs - b.atMs);
  const endMs = Math.max(
    placingMs,
    ...timeline.map((e) => e.atMs + ("downMs" in e ? e.downMs : 0)),
  );
  return { seed: options.seed, placingMs, endMs, timeline };
}

/**
 * Whether the monitor copies an event it saw, and how: decided by a hash of
 * the seed, the topic and `key` (the order's number in the run when known,
 * so the same seed duplicates the same orders' events), never by arrival
 * order. A late copy waits 1–5 s, so later events of its order overtake it.
 */
export function copyDecision(
  seed: number,
  rates: Pick<ChaosOptions, "duplicateRate" | "delayRate">,
  topic: string,
  key: string,
): CopyDecision {
  const u = hashUnit(seed, "copy", topic, key);
  if (u < rates.duplicateRate) {
    return { kind: "duplicate" };
  }
  if (u < rates.duplicateRate + rates.delayRate) {
    return {
      kind: "delayed",
      delayMs: Math.round(1_000 + 4_000 * hashUnit(seed, "delay", topic, key)),
    };
  }
  return { kind: "none" };
}
