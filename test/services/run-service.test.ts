import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, inject, it } from "vitest";
import { UNHEALTHY_EXIT_CODE } from "../../services/lib/run-service.js";
import { startTsProcess, type TestProcess } from "../helpers/processes.js";

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    await cleanup();
  }
});

describe("a service process whose subscriptions cannot stream", () => {
  it("should say it is unhealthy and exit with code 3 instead of retrying in silence", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "protoevents-unhealthy-"));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    // A project nobody provisioned: every subscription is NOT_FOUND.
    const service: TestProcess = startTsProcess("services/payment/main.ts", {
      PUBSUB_EMULATOR_HOST: inject("emulatorHost"),
      PUBSUB_PROJECT_ID: `unprovisioned-${process.pid}`,
      PROTOEVENTS_DATA_DIR: dataDir,
      PROTOEVENTS_LOG_LEVEL: "info",
      PROTOEVENTS_UNHEALTHY_EXIT_SECONDS: "1",
    });
    cleanups.push(() => service.stop());
    const { code } = await service.exited;
    expect(code, service.output()).toBe(UNHEALTHY_EXIT_CODE);
    const fatal = service
      .output()
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { op?: string; level?: number; msg?: string })
      .find((l) => l.op === "health");
    expect(fatal?.level).toBe(60);
    expect(fatal?.msg).toMatch(
      /^unhealthy for 1 s: payment\.(charge-order|refund-order).* cannot stream; exiting with code 3$/,
    );
    expect(service.output()).toContain("cannot be consumed (NOT_FOUND): provision it");
  }, 120_000);
});
