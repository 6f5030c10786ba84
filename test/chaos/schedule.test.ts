import { describe, expect, it } from "vitest";
import { registry } from "../../generated/protoevents_registry.js";
import { decodeValidEvent } from "../../runtime/src/envelope.js";
import { Code, isProtoeventsError } from "../../runtime/src/errors.js";
import { seededRandom } from "../../services/supervisor/demo-orders.js";
import { DEFAULT_OPTIONS, parseChaosArgs } from "./options.js";
import { poisonMessage } from "./poison.js";
import {
  consumedTopics,
  copyDecision,
  POISON_KINDS,
  POISON_REASONS,
  planFaults,
  subscriptionsOf,
} from "./schedule.js";

const topics = consumedTopics(registry);

describe("planFaults", () => {
  it("should plan the same timeline for the same seed and another for another seed", () => {
    const a = planFaults({ ...DEFAULT_OPTIONS, seed: 7 }, topics);
    expect(planFaults({ ...DEFAULT_OPTIONS, seed: 7 }, topics)).toEqual(a);
    expect(planFaults({ ...DEFAULT_OPTIONS, seed: 8 }, topics)).not.toEqual(a);
  });

  it("should plan every kind of fault inside the placing time, never downing a service twice at once", () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const plan = planFaults({ ...DEFAULT_OPTIONS, seed, store: "postgres" }, topics);
      expect(plan.placingMs).toBe(50_000);
      const kinds = plan.timeline.map((e) => e.kind);
      expect(kinds.filter((k) => k === "kill")).toHaveLength(DEFAULT_OPTIONS.kills);
      expect(kinds.filter((k) => k === "outage")).toHaveLength(1);
      expect(kinds.filter((k) => k === "postgres-outage")).toHaveLength(1);
      expect(kinds.filter((k) => k === "poison")).toHaveLength(3 * DEFAULT_OPTIONS.poisonPerKind);
      const downs = plan.timeline.flatMap((e) =>
        e.kind === "kill" || e.kind === "outage"
          ? [{ service: e.service, from: e.atMs, to: e.atMs + e.downMs }]
          : [],
      );
      for (const [i, a] of downs.entries()) {
        for (const b of downs.slice(i + 1)) {
          if (a.service === b.service) {
            expect(a.to < b.from || b.to < a.from).toBe(true);
          }
        }
      }
      for (const event of plan.timeline) {
        expect(event.atMs).toBeGreaterThanOrEqual(0);
        expect(event.atMs).toBeLessThanOrEqual(plan.placingMs);
      }
      const ids = plan.timeline.flatMap((e) => (e.kind === "poison" ? [e.id] : []));
      expect(new Set(ids).size).toBe(ids.length);
    }
  });

  it("should cut PostgreSQL only in postgres mode", () => {
    const plan = planFaults({ ...DEFAULT_OPTIONS, store: "sqlite" }, topics);
    expect(plan.timeline.some((e) => e.kind === "postgres-outage")).toBe(false);
  });
});

describe("copyDecision", () => {
  it("should copy about the chosen shares, the same way every time", () => {
    const rates = { duplicateRate: 0.1, delayRate: 0.05 };
    const counts = { none: 0, duplicate: 0, delayed: 0 };
    for (let n = 1; n <= 4_000; n++) {
      const decision = copyDecision(1, rates, "checkout.order-placed", `order-${n}`);
      expect(copyDecision(1, rates, "checkout.order-placed", `order-${n}`)).toEqual(decision);
      counts[decision.kind]++;
      if (decision.kind === "delayed") {
        expect(decision.delayMs).toBeGreaterThanOrEqual(1_000);
        expect(decision.delayMs).toBeLessThanOrEqual(5_000);
      }
    }
    expect(counts.duplicate / 4_000).toBeCloseTo(0.1, 1);
    expect(counts.delayed / 4_000).toBeCloseTo(0.05, 1);
  });
});

describe("poisonMessage", () => {
  it("should be dead-lettered with its reason by every subscription of every consumed topic", () => {
    for (const topic of topics) {
      const contract = registry.events.find((e) => e.topic === topic);
      expect(contract).toBeDefined();
      expect(subscriptionsOf(registry, topic).length).toBeGreaterThan(0);
      for (const kind of POISON_KINDS) {
        const message = poisonMessage(
          kind,
          contract as NonNullable<typeof contract>,
          "poison-1",
          seededRandom(1),
        );
        expect(message.attributes["ce-id"]).toBe("poison-1");
        const subscriptions = registry.applications
          .flatMap((a) => a.subscriptions)
          .filter((s) => s.event.topic === topic);
        for (const subscription of subscriptions) {
          let error: unknown;
          try {
            decodeValidEvent(subscription.event, message);
          } catch (e) {
            error = e;
          }
          expect(isProtoeventsError(error) && error.code, `${kind} on ${topic}`).toBe(
            POISON_REASONS[kind],
          );
          expect(isProtoeventsError(error) && error.permanent).toBe(true);
        }
      }
    }
    expect(Object.values(POISON_REASONS)).toEqual([
      Code.DecodeFailed,
      Code.UnknownEventType,
      Code.ValidationFailed,
    ]);
  });
});

describe("parseChaosArgs", () => {
  it("should default to the full run and read every option", () => {
    expect(parseChaosArgs([])).toEqual(DEFAULT_OPTIONS);
    expect(
      parseChaosArgs([
        "--orders",
        "100",
        "--rate",
        "10",
        "--seed",
        "9",
        "--store",
        "postgres",
        "--fault-rate",
        "0.1",
        "--kills",
        "2",
        "--poison",
        "1",
        "--drain-timeout",
        "60",
        "--report",
        "r.json",
        "--keep",
      ]),
    ).toMatchObject({
      orders: 100,
      rate: 10,
      seed: 9,
      store: "postgres",
      faultRate: 0.1,
      kills: 2,
      poisonPerKind: 1,
      drainTimeoutMs: 60_000,
      reportFile: "r.json",
      keep: true,
    });
    expect(parseChaosArgs(["--help"])).toBe("help");
  });

  it("should refuse unknown options and bad values, naming them", () => {
    expect(() => parseChaosArgs(["--store", "mysql"])).toThrow(/--store/);
    expect(() => parseChaosArgs(["--fault-rate", "2"])).toThrow(/--fault-rate/);
    expect(() => parseChaosArgs(["--orders", "0"])).toThrow(/--orders/);
    expect(() => parseChaosArgs(["--what"])).toThrow(/what/);
  });
});
