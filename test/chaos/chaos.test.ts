import { describe, expect, inject, it } from "vitest";
import { type ChaosOptions, DEFAULT_OPTIONS } from "./options.js";
import { type ChaosReport, formatReport } from "./report.js";
import { runChaos } from "./run-chaos.js";

/** Orders of the short runs: enough for every kind of fault, few enough for `npm test`. */
const ORDERS = 40;

/**
 * A short run of {@link ORDERS} orders on the test run's emulator: every
 * invariant held and every order placed and decided. Returns the report and,
 * for failure messages, the run's progress lines and its printed report.
 */
async function shortRun(
  options: Pick<ChaosOptions, "seed" | "kills">,
): Promise<{ report: ChaosReport; shown: string }> {
  const progress: string[] = [];
  const report = await runChaos(
    {
      ...DEFAULT_OPTIONS,
      orders: ORDERS,
      // Late copies are rare (2 %) in the full run; a short run needs more to see some.
      delayRate: 0.05,
      poisonPerKind: 1,
      drainTimeoutMs: 120_000,
      ...options,
    },
    { emulatorHost: inject("emulatorHost"), log: (line) => progress.push(line) },
  );
  const shown = [...progress, ...formatReport(report)].join("\n");
  expect(
    report.invariants.filter((i) => !i.passed),
    shown,
  ).toEqual([]);
  expect(report.timings.drained, shown).toBe(true);
  expect(report.orders).toMatchObject({ placed: ORDERS, refused: 0, open: 0 });
  expect(report.faults.kills).toBe(options.kills);
  expect(report.faults.handlerFaults, shown).toBeGreaterThan(0);
  return { report, shown };
}

/**
 * The short, seeded variants of `npm run chaos`: the same run, 40 orders
 * with a few faults of each kind, on the test run's emulator. The full run
 * (1,000 orders) is the `chaos` script.
 */
describe("the checkout under a seeded fault schedule", () => {
  it("should keep every invariant through 40 orders with every kind of fault", async () => {
    const { report, shown } = await shortRun({ seed: 1, kills: 2 });
    // Every kind of fault was injected at least once.
    expect(report.faults.duplicatesInjected, shown).toBeGreaterThan(0);
    expect(report.faults.delayedInjected, shown).toBeGreaterThan(0);
    expect(report.faults.notificationOutages).toBe(1);
    expect(report.faults.poison).toEqual({
      "garbage-bytes": 1,
      "unknown-type": 1,
      "broken-rule": 1,
    });
    expect(report.duplicatesAbsorbed, shown).toBeGreaterThan(0);
  }, 240_000);

  it("should keep every invariant with no SIGKILL, where the run re-sends nothing", async () => {
    // The run re-sends events the emulator stranded after a SIGKILL (see
    // stranded.ts); without kills there is nothing to re-send, so every
    // delivery here is the system's own doing.
    const { report, shown } = await shortRun({ seed: 2, kills: 0 });
    expect(report.strandedDeliveries.resent, shown).toBe(0);
  }, 240_000);
});
