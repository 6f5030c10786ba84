import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

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
    // Per-message failures are logged at warn; tests assert outcomes instead.
    env: { PROTOEVENTS_LOG_LEVEL: process.env.PROTOEVENTS_LOG_LEVEL ?? "error" },
  },
});
