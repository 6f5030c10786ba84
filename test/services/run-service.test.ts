import { describe, expect, inject, it } from "vitest";
import { registry } from "../../generated/protoevents_registry.js";
import { provision } from "../../runtime/src/provision.js";
import { startService, UNHEALTHY_EXIT_CODE } from "../../services/lib/run-service.js";
import { definition as shipping } from "../../services/shipping/service.js";
import { afterThisTest, tempDir } from "../helpers/cleanup.js";
import { startTsProcess, type TestProcess } from "../helpers/processes.js";
import { testPubSub } from "../helpers/pubsub.js";
import { waitFor } from "../helpers/wait.js";

describe("a service process whose subscriptions cannot stream", () => {
  it("should say it is unhealthy and exit with code 3 instead of retrying in silence", async () => {
    const dataDir = await tempDir("protoevents-unhealthy");
    // A project nobody provisioned: every subscription is NOT_FOUND.
    const service: TestProcess = startTsProcess("services/payment/main.ts", {
      PUBSUB_EMULATOR_HOST: inject("emulatorHost"),
      PUBSUB_PROJECT_ID: `unprovisioned-${process.pid}`,
      PROTOEVENTS_DATA_DIR: dataDir,
      PROTOEVENTS_LOG_LEVEL: "info",
      PROTOEVENTS_UNHEALTHY_EXIT_SECONDS: "1",
    });
    afterThisTest(() => service.stop());
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

describe("a service process's health checks", () => {
  it("should be ready once its store answers and its subscriptions stream, and not live once one cannot", async () => {
    const pubsub = testPubSub("health");
    afterThisTest(() => pubsub.close());
    await provision(pubsub, registry, { dryRun: false });
    const dataDir = await tempDir("protoevents-health");
    const service: TestProcess = startTsProcess("services/payment/main.ts", {
      PUBSUB_EMULATOR_HOST: inject("emulatorHost"),
      PUBSUB_PROJECT_ID: pubsub.projectId,
      PROTOEVENTS_DATA_DIR: dataDir,
      PROTOEVENTS_LOG_LEVEL: "info",
      PROTOEVENTS_HEALTH_PORT: "0",
    });
    afterThisTest(() => service.stop());
    const line = await service.waitForMatch(
      /"msg":"health checks on GET \/livez and GET \/readyz"/,
      60_000,
    );
    const { host, port } = JSON.parse(line) as { host: string; port: number };
    expect(host).toBe("127.0.0.1");
    const probe = async (path: string) => {
      const response = await fetch(`http://${host}:${port}${path}`);
      return { status: response.status, body: (await response.json()) as { reasons?: string[] } };
    };

    await waitFor(
      "payment to be ready",
      async () => (await probe("/readyz")).status === 200,
      60_000,
    );
    expect(await probe("/livez")).toEqual({ status: 200, body: { status: "ok" } });

    // Its subscription is deleted under it: the stream ends with NOT_FOUND.
    await pubsub.subscription("payment.charge-order").delete();
    await waitFor(
      "payment to report itself not live",
      async () => (await probe("/livez")).status === 503,
      60_000,
    );
    const live = await probe("/livez");
    expect(live.body.reasons).toEqual([
      expect.stringMatching(/^subscription payment\.charge-order is failing: .*NOT_FOUND/),
    ]);
    const ready = await probe("/readyz");
    expect(ready.status).toBe(503);
    expect(ready.body.reasons).toEqual([
      expect.stringMatching(/^subscription payment\.charge-order is failing/),
    ]);
  }, 120_000);
});

describe("a running service's readiness", () => {
  it("should turn not ready the moment it starts stopping, and say why when its store is gone", async () => {
    const pubsub = testPubSub("stopping");
    afterThisTest(() => pubsub.close());
    await provision(pubsub, registry, { dryRun: false });
    const dataDir = await tempDir("protoevents-stopping");
    const service = await startService(shipping, {
      PUBSUB_EMULATOR_HOST: inject("emulatorHost"),
      PUBSUB_PROJECT_ID: pubsub.projectId,
      PROTOEVENTS_DATA_DIR: dataDir,
      PROTOEVENTS_LOG_LEVEL: "silent",
    });
    afterThisTest(() => service.stop());
    expect(await service.readiness()).toEqual({ ok: true, reasons: [] });
    expect(service.liveness()).toEqual({ ok: true, reasons: [] });

    // Its store goes away under it (here: closed by hand).
    await service.context.store.db.destroy();
    const gone = await service.readiness();
    expect(gone.ok).toBe(false);
    expect(gone.reasons).toEqual([
      expect.stringMatching(/^sqlite store of shipping did not answer: /),
    ]);

    const stopped = service.stop();
    expect(await service.readiness()).toEqual({ ok: false, reasons: ["stopping"] });
    await stopped.catch(() => undefined);
  });
});
