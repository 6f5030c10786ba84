import { relative } from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

const source = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/**
 * The toolkit packages resolve to their TypeScript sources here (as their
 * "@protoevents/source" export condition says for tsc and tsx), so generated
 * code, the services and tests share one copy of each module and no build is
 * needed to test a change. The built packages are what the adoption test
 * installs.
 */
const alias = [
  { find: /^@protoevents\/runtime$/, replacement: source("runtime/src/index.ts") },
  { find: /^@protoevents\/runtime\/errors$/, replacement: source("runtime/src/errors.ts") },
  { find: /^@protoevents\/codegen$/, replacement: source("codegen/src/index.ts") },
  { find: /^@protoevents\/codegen\/plugin$/, replacement: source("codegen/src/plugin.ts") },
  { find: /^@protoevents\/cli$/, replacement: source("cli/src/main.ts") },
];

const root = fileURLToPath(new URL(".", import.meta.url));

/**
 * The files that take a minute or more, slowest first. Vitest starts the
 * files it has timed before longest first, but a clean clone (CI) has no
 * timings and it starts the largest files first: the chaos run, a small file,
 * then started last and ran alone for two minutes on one core.
 */
const SLOWEST: readonly string[] = [
  "test/chaos/chaos.test.ts",
  "test/supervisor/start.test.ts",
  "test/adopt/adopt.test.ts",
  "test/e2e/checkout.test.ts",
  "test/compat/gate.test.ts",
  "test/emulator/replicas.test.ts",
  "test/cli/operate.test.ts",
  "test/cli/main.test.ts",
  "test/codegen/sync/sync-services.test.ts",
  "test/compat/compare-contracts.test.ts",
];

/** The slowest files first, then the rest in vitest's own order. */
class SlowestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (spec: TestSpecification): number => {
      const index = SLOWEST.indexOf(relative(root, spec.moduleId));
      return index === -1 ? SLOWEST.length : index;
    };
    return sorted
      .map((spec, index) => ({ spec, index }))
      .sort((a, b) => rank(a.spec) - rank(b.spec) || a.index - b.index)
      .map(({ spec }) => spec);
  }
}

export default defineConfig({
  resolve: { alias },
  test: {
    include: ["test/**/*.test.ts"],
    // One real Pub/Sub emulator for the whole run; tests isolate by project id.
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: run files in parallel, but not more than the machine has.
    maxWorkers: 2,
    sequence: { sequencer: SlowestFirst },
    // The default summary, then every test that could not run here and what it needs.
    reporters: ["default", "./test/helpers/skip-reporter.ts"],
    // Per-message failures are logged at warn; tests assert outcomes instead.
    env: { PROTOEVENTS_LOG_LEVEL: process.env.PROTOEVENTS_LOG_LEVEL ?? "error" },
  },
});
