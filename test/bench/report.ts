import { mkdir, readFile, writeFile } from "node:fs/promises";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname } from "node:path";

/**
 * A figure whose per-round ratios spread wider than ±10 % (half the
 * interquartile range, over the median) is flagged: the gap it claims may be
 * noise.
 */
export const NOISY_SPREAD = 0.1;

/** The machine's 1-minute load average around one benchmark, against its cores. */
export interface MachineLoad {
  readonly before: number;
  readonly after: number;
  readonly cores: number;
}

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
  /** ± half the full range of the per-round ratios, over their median: how much rounds disagreed at worst. */
  readonly spread: number;
  /** ± half the interquartile range of the per-round ratios, over their median: the spread that decides `noisy`. */
  readonly iqr: number;
  /** Whether `iqr` exceeds {@link NOISY_SPREAD} even after the extra rounds: do not trust the ratio. */
  readonly noisy: boolean;
  /** The machine's load while it ran (other processes skew every figure). */
  readonly load?: MachineLoad;
  /** Whether a higher value is better (throughput) or a lower one (latency, cost). */
  readonly better: "higher" | "lower";
  /** Per-round values, measured and baseline, for anyone who doubts the median. */
  readonly samples: { readonly measured: readonly number[]; readonly baseline: readonly number[] };
  readonly note?: string;
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** The q-quantile (0–1) of the values, interpolated linearly between ranks. */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) {
    return Number.NaN;
  }
  const rank = (sorted.length - 1) * q;
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  const a = sorted[low] as number;
  const b = sorted[high] as number;
  return a + (b - a) * (rank - low);
}

/** Per-round ratios, oriented so that above 1 means protoevents is better. */
export function ratiosOf(
  measured: readonly number[],
  baseline: readonly number[],
  better: "higher" | "lower",
): number[] {
  return measured.map((m, i) =>
    better === "higher" ? m / (baseline[i] as number) : (baseline[i] as number) / m,
  );
}

/** ± half the interquartile range over the median. */
export function iqrSpread(values: readonly number[]): number {
  return (quantile(values, 0.75) - quantile(values, 0.25)) / 2 / median(values);
}

/** Options of {@link pairedRounds}. */
export interface RoundsOptions {
  /** Rounds always run. */
  readonly min: number;
  /** Rounds at most, while the ratios stay noisy. */
  readonly max: number;
  readonly better: "higher" | "lower";
}

/**
 * Run paired rounds (each pushes one measured and one baseline figure,
 * alternating which side goes first): `min` rounds, then more, one at a
 * time, while the ratios' interquartile spread exceeds {@link NOISY_SPREAD},
 * up to `max`. Returns the number of rounds run.
 */
export async function pairedRounds(
  options: RoundsOptions,
  measured: readonly number[],
  baseline: readonly number[],
  round: (index: number) => Promise<void> | void,
): Promise<number> {
  let index = 0;
  while (
    index < options.min ||
    (index < options.max && iqrSpread(ratiosOf(measured, baseline, options.better)) > NOISY_SPREAD)
  ) {
    await round(index);
    index++;
  }
  return index;
}

/** The 1-minute load average now. */
export function currentLoad(): number {
  return loadavg()[0] ?? 0;
}

/** A result with the machine's load from `before` (see {@link currentLoad}) until now. */
export function withLoad(result: BenchResult, before: number): BenchResult {
  return { ...result, load: { before, after: currentLoad(), cores: cpus().length } };
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
  const ratios = ratiosOf(measured, baseline, better);
  const ratio = median(ratios);
  const spread = (Math.max(...ratios) - Math.min(...ratios)) / 2 / ratio;
  const iqr = iqrSpread(ratios);
  const result = {
    name,
    unit,
    value: round(median(measured)),
    baseline: round(median(baseline)),
    ratio: round(ratio, 3),
    rounds: measured.length,
    spread: round(spread, 3),
    iqr: round(iqr, 3),
    noisy: iqr > NOISY_SPREAD,
    better,
    samples: { measured: measured.map((v) => round(v)), baseline: baseline.map((v) => round(v)) },
  };
  return note === undefined ? result : { ...result, note };
}

function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function percent(value: number | undefined): string {
  return value === undefined || !Number.isFinite(value) ? "–" : `±${(value * 100).toFixed(1)}%`;
}

function loadText(load: MachineLoad | undefined): string {
  return load === undefined
    ? "–"
    : `${load.before.toFixed(1)}→${load.after.toFixed(1)} / ${load.cores}`;
}

/**
 * A Markdown table of the results: the median ratio, the interquartile and
 * full spreads of the per-round ratios (± half the range, over the median),
 * the machine's load average before → after against its cores, and ⚠ on a
 * figure whose interquartile spread exceeds ±10 %: a gap smaller than its
 * spread is not one to claim.
 */
export function formatTable(results: readonly BenchResult[]): string {
  const rows = results.map(
    (r) =>
      `| ${r.noisy ? "⚠ " : ""}${r.name} | ${r.value} | ${r.baseline} | ${r.unit} | ${r.ratio}× | ${r.rounds} | ${percent(r.iqr)} | ${percent(r.spread)} | ${loadText(r.load)} |`,
  );
  const noisy = results.filter((r) => r.noisy).map((r) => r.name);
  return [
    "| benchmark | protoevents | raw baseline | unit | ratio | rounds | IQR | range | load |",
    "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ...rows,
    ...(noisy.length === 0
      ? []
      : [
          "",
          `⚠ noisy even after extra rounds (interquartile spread over ±${(NOISY_SPREAD * 100).toFixed(0)}%): ${noisy.join(", ")}. Rerun on an idle machine before quoting these ratios.`,
        ]),
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
