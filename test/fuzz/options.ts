/**
 * Runs and seed of the property tests. `npm test` runs a short, fixed-seed
 * pass; `FUZZ_RUNS=20000 FUZZ_SEED=<n> npm run fuzz` a long one. A failure
 * prints the seed and path that reproduce it.
 */
export function fuzzOptions(defaultRuns: number): { numRuns: number; seed: number } {
  const runs = Number(process.env.FUZZ_RUNS ?? "");
  const seed = Number(process.env.FUZZ_SEED ?? "");
  return {
    numRuns: Number.isSafeInteger(runs) && runs > 0 ? runs : defaultRuns,
    seed: Number.isSafeInteger(seed) ? seed : 20261202,
  };
}
