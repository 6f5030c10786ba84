import { defineConfig } from "vitest/config";

export default defineConfig({
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
