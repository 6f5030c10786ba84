import { mkdir, readFile, writeFile } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import { dirname } from "node:path";

/** One benchmark entry of bench-results/latest.json. */
export interface BenchResult {
  readonly name: string;
  readonly unit: string;
  /** Median of the measured (protoevents) side over the rounds. */
  readonly value: number;
  /** Median of the baseline side (raw client) over the same rounds. */
  readonly baseline: number;
  /** Median of the per-round ratios (higher is better for throughput; see `better`). */
  readonly ratio: number;
  readonly rounds: number;
  /** (max − min) / median of the per-round ratios: how much rounds disagreed. */
  readonly spread: number;
  /** Whether a higher value is better (throughput) or a lower one (latency, cost). */
  readonly better: "higher" | "lower";
  /** Per-round values, measured and baseline, for anyone who doubts the median. */
  readonly samples: { readonly measured: readonly number[]; readonly baseline: readonly number[] };
  readonly note?: string;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Summarise paired rounds: `measured[i]` and `baseline[i]` ran back to back. */
export function summarise(
  name: string,
  unit: string,
  better: "higher" | "lower",
  measured: readonly number[],
  baseline: readonly number[],
  note?: string,
): BenchResult {
  const ratios = measured.map((m, i) =>
    better === "higher" ? m / (baseline[i] as number) : (baseline[i] as number) / m,
  );
  const ratio = median(ratios);
  const spread = (Math.max(...ratios) - Math.min(...ratios)) / ratio;
  const result = {
    name,
    unit,
    value: round(median(measured)),
    baseline: round(median(baseline)),
    ratio: round(ratio, 3),
    rounds: measured.length,
    spread: round(spread, 3),
    better,
    samples: { measured: measured.map((v) => round(v)), baseline: baseline.map((v) => round(v)) },
  };
  return note === undefined ? result : { ...result, note };
}

function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Print a Markdown table of the results. */
export function formatTable(results: readonly BenchResult[]): string {
  const rows = results.map(
    (r) =>
      `| ${r.name} | ${r.value} | ${r.baseline} | ${r.unit} | ${r.ratio}× | ${r.rounds} | ±${(r.spread * 100).toFixed(1)}% |`,
  );
  return [
    "| benchmark | protoevents | raw baseline | unit | ratio | rounds | spread |",
    "| --- | ---: | ---: | --- | ---: | ---: | ---: |",
    ...rows,
  ].join("\n");
}

/**
 * Merge results into bench-results/latest.json: entries with the same name
 * are replaced, others kept, so each benchmark adds to one file. The same
 * results go, as a Markdown table with the machine, next to it
 * (`latest.md`).
 */
export async function writeResults(path: string, results: readonly BenchResult[]): Promise<void> {
  let existing: BenchResult[] = [];
  try {
    existing = (JSON.parse(await readFile(path, "utf8")) as { results: BenchResult[] }).results;
  } catch {
    // First run: no file yet.
  }
  const names = new Set(results.map((r) => r.name));
  const cpu = cpus();
  const file = {
    machine: {
      cpu: cpu[0]?.model ?? "unknown",
      cores: cpu.length,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      date: new Date().toISOString(),
    },
    results: [...existing.filter((r) => !names.has(r.name)), ...results],
  };
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(file, null, 2)}\n`);
  const m = file.machine;
  await writeFile(
    `${path.replace(/\.json$/, "")}.md`,
    [
      `Measured ${m.date} on ${m.cores} × ${m.cpu}, ${m.memoryGiB} GiB, Node ${m.node} (\`npm run bench\`).`,
      "",
      formatTable(file.results),
      "",
    ].join("\n"),
  );
}
