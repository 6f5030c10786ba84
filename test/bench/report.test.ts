import { describe, expect, it } from "vitest";
import { formatTable, iqrSpread, pairedRounds, quantile, summarise, withLoad } from "./report.js";

describe("benchmark statistics", () => {
  it("should interpolate quantiles between ranks and give half the interquartile range over the median", () => {
    expect(quantile([4, 1, 3, 2], 0.5)).toBe(2.5);
    expect(quantile([1, 2, 3, 4, 5], 0.25)).toBe(2);
    expect(quantile([1, 2, 3, 4, 5], 0.75)).toBe(4);
    // (4 − 2) / 2 / 3
    expect(iqrSpread([1, 2, 3, 4, 5])).toBeCloseTo(1 / 3);
  });

  it("should stop at the minimum when rounds agree and add rounds while they do not, up to the maximum", async () => {
    const steady = { measured: [] as number[], baseline: [] as number[] };
    const calm = await pairedRounds(
      { min: 5, max: 15, better: "higher" },
      steady.measured,
      steady.baseline,
      () => {
        steady.measured.push(100);
        steady.baseline.push(100);
      },
    );
    expect(calm).toBe(5);

    // Ratios 0.5, 1.5, 0.5, 1.5 …: ±50 % forever, so it runs to the maximum.
    const wild = { measured: [] as number[], baseline: [] as number[] };
    const noisy = await pairedRounds(
      { min: 5, max: 15, better: "higher" },
      wild.measured,
      wild.baseline,
      (round) => {
        wild.measured.push(round % 2 === 0 ? 50 : 150);
        wild.baseline.push(100);
      },
    );
    expect(noisy).toBe(15);

    // Noisy at first, then steady: extra rounds until the quartiles settle.
    const settling = { measured: [] as number[], baseline: [] as number[] };
    const settled = await pairedRounds(
      { min: 4, max: 40, better: "lower" },
      settling.measured,
      settling.baseline,
      (round) => {
        settling.measured.push(round < 2 ? 300 : 100);
        settling.baseline.push(100);
      },
    );
    expect(settled).toBeGreaterThan(4);
    expect(settled).toBeLessThan(40);
  });

  it("should flag a noisy figure in the table and show the machine's load", () => {
    const calm = withLoad(
      summarise("calm", "msg/s", "higher", [100, 101, 99], [100, 100, 100]),
      0.5,
    );
    const noisy = summarise("noisy", "msg/s", "higher", [50, 150, 60, 140], [100, 100, 100, 100]);
    expect(calm.noisy).toBe(false);
    expect(noisy.noisy).toBe(true);
    expect(noisy.iqr).toBeGreaterThan(0.1);
    const table = formatTable([calm, noisy]);
    expect(table).toMatch(
      /^\| calm \| 100 \| 100 \| msg\/s \| 1× \| 3 \| ±0\.5% \| ±1\.0% \| 0\.5→\d+\.\d \/ \d+ \|$/m,
    );
    expect(table).toMatch(/^\| ⚠ noisy \|/m);
    expect(table).toContain(
      "⚠ noisy even after extra rounds (interquartile spread over ±10%): noisy.",
    );
  });
});
