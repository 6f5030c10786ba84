import { describe, expect, it } from "vitest";
import type { FaultLogLine } from "../../services/lib/fault-injection.js";
import {
  isStranded,
  LEASE_MS,
  mayBeStranded,
  RESEND_AGAIN_MS,
  STRANDED_AFTER_MS,
} from "./stranded.js";

const NOW = 1_000_000_000;
const LIVE = 200;
const DEAD = 100;
const deadPids = new Set([DEAD]);

function line(outcome: FaultLogLine["outcome"], pid: number, agoMs: number): FaultLogLine {
  return { outcome, subscription: "payment.charge-order", eventId: "evt-1", pid, at: NOW - agoMs };
}

describe("mayBeStranded", () => {
  const killedAt = NOW - 120_000;
  it("should wait until the event is old enough", () => {
    expect(mayBeStranded(NOW, NOW - STRANDED_AFTER_MS + 1, killedAt, undefined)).toBe(false);
    expect(mayBeStranded(NOW, NOW - STRANDED_AFTER_MS, killedAt, undefined)).toBe(true);
  });

  it("should leave events seen long before the kill alone: the emulator strands only after one", () => {
    expect(mayBeStranded(NOW, killedAt - LEASE_MS - 1, killedAt, undefined)).toBe(false);
    expect(mayBeStranded(NOW, killedAt - LEASE_MS, killedAt, undefined)).toBe(true);
  });

  it("should not re-send again within the re-send interval", () => {
    const old = NOW - 100_000;
    expect(mayBeStranded(NOW, old, killedAt, { lastAt: NOW - RESEND_AGAIN_MS + 1 })).toBe(false);
    expect(mayBeStranded(NOW, old, killedAt, { lastAt: NOW - RESEND_AGAIN_MS })).toBe(true);
  });
});

describe("isStranded", () => {
  it("should count an event no process ever started to claim as stranded", () => {
    expect(isStranded({ now: NOW, prior: undefined, lastClaim: undefined, deadPids })).toBe(true);
  });

  it("should never re-send an event a live process is claiming, however long ago it started", () => {
    // A handler stuck in a live process is a bug the run must report, not paper over.
    const lastClaim = line("claiming", LIVE, 10 * STRANDED_AFTER_MS);
    expect(isStranded({ now: NOW, prior: undefined, lastClaim, deadPids })).toBe(false);
    expect(isStranded({ now: NOW, prior: { lastAt: NOW - 60_000 }, lastClaim, deadPids })).toBe(
      false,
    );
  });

  it("should never re-send an event whose claim committed, whoever committed it", () => {
    // The inbox must hold it; if it does not, the run must fail, not re-send.
    for (const outcome of ["handled", "duplicate"] as const) {
      for (const pid of [LIVE, DEAD]) {
        const lastClaim = line(outcome, pid, 10 * STRANDED_AFTER_MS);
        expect(isStranded({ now: NOW, prior: undefined, lastClaim, deadPids })).toBe(false);
      }
    }
  });

  it("should count a claim the killed process started and never finished, once it is old enough", () => {
    expect(
      isStranded({
        now: NOW,
        prior: undefined,
        lastClaim: line("claiming", DEAD, STRANDED_AFTER_MS),
        deadPids,
      }),
    ).toBe(true);
    expect(
      isStranded({
        now: NOW,
        prior: undefined,
        lastClaim: line("claiming", DEAD, STRANDED_AFTER_MS - 1),
        deadPids,
      }),
    ).toBe(false);
  });

  it("should count a rolled-back claim whose redelivery never came, and wait less after a re-send", () => {
    for (const outcome of ["fault", "failed"] as const) {
      expect(
        isStranded({
          now: NOW,
          prior: undefined,
          lastClaim: line(outcome, LIVE, STRANDED_AFTER_MS - 1),
          deadPids,
        }),
      ).toBe(false);
      expect(
        isStranded({
          now: NOW,
          prior: undefined,
          lastClaim: line(outcome, LIVE, STRANDED_AFTER_MS),
          deadPids,
        }),
      ).toBe(true);
      expect(
        isStranded({
          now: NOW,
          prior: { lastAt: NOW - RESEND_AGAIN_MS },
          lastClaim: line(outcome, LIVE, RESEND_AGAIN_MS),
          deadPids,
        }),
      ).toBe(true);
    }
  });
});
