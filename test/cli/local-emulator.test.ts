import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import { registry } from "../../generated/protoevents_registry.js";
import { announceLocalEmulator, localEmulatorFile } from "../../runtime/src/local-emulator.js";
import { provision } from "../../runtime/src/provision.js";
import { protoevents, ROOT } from "../helpers/cli.js";
import { startTsProcess } from "../helpers/processes.js";
import { testPubSub } from "../helpers/pubsub.js";
import { waitFor } from "../helpers/wait.js";

/** Nothing in the environment names an emulator or a project: a second, fresh terminal. */
const bareEnv = {
  PUBSUB_EMULATOR_HOST: undefined,
  PUBSUB_PROJECT_ID: undefined,
  GOOGLE_CLOUD_PROJECT: undefined,
  GCLOUD_PROJECT: undefined,
};
const registryFlag = ["--registry", join(ROOT, "generated", "protoevents_registry.ts")];

describe("commands beside a running local emulator", () => {
  let dir = "";
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "protoevents-beside-"));
    await mkdir(join(dir, "node_modules"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("should use the emulator and project it announced, with no variables exported", async () => {
    const pubsub = testPubSub("beside");
    await provision(pubsub, registry, { dryRun: false });
    await pubsub.close();
    const withdraw = announceLocalEmulator(dir, {
      endpoint: inject("emulatorHost"),
      project: pubsub.projectId,
      pid: process.pid,
      owner: "npm start",
    });
    try {
      const said = `npm start (pid ${process.pid}) runs an emulator at ${inject("emulatorHost")}, project ${pubsub.projectId}`;
      const list = await protoevents(["dlq", "list", ...registryFlag], { cwd: dir, env: bareEnv });
      expect(list.stderr).toContain(`dlq list: ${said}; using it`);
      expect(list.code, list.stderr).toBe(0);
      expect(list.stdout).toMatch(/^0 dead letters in 0 of \d+ dead-letter subscriptions$/m);

      const plan = await protoevents(["provision", "--dry-run", ...registryFlag], {
        cwd: dir,
        env: bareEnv,
      });
      expect(plan.code, plan.stderr).toBe(0);
      expect(plan.stdout).toMatch(/^0 to create, 0 to update, \d+ unchanged, 0 conflicts$/m);

      // A project named in the environment keeps real Pub/Sub the target;
      // the emulator is only pointed out. (Nothing is changed: real Pub/Sub
      // without --yes is refused before anything is read.)
      const real = await protoevents(["provision", ...registryFlag], {
        cwd: dir,
        env: { ...bareEnv, GOOGLE_CLOUD_PROJECT: "acme-prod" },
      });
      expect(real.code).toBe(1);
      expect(real.stderr).toContain(
        `provision: note: ${said}; pass --emulator-host ${inject("emulatorHost")} --project ${pubsub.projectId} to use it`,
      );
      expect(real.stderr).toContain(
        "target is real Pub/Sub (pubsub.googleapis.com), Google Cloud project acme-prod",
      );
    } finally {
      withdraw();
    }
  });

  it("should be announced by protoevents emulator while it runs, and withdrawn when it stops", async () => {
    const project = `beside-${process.pid}`;
    const emulator = startTsProcess(
      "test/helpers/protoevents-main.ts",
      bareEnv as unknown as Record<string, string>,
      [],
      ["emulator", "--project", project, ...registryFlag],
      dir,
    );
    try {
      const endpoint = (await emulator.waitForMatch(/^export PUBSUB_EMULATOR_HOST=/, 90_000)).split(
        "=",
      )[1];
      await waitFor("the announcement", () => existsSync(localEmulatorFile(dir)), 60_000);
      const list = await protoevents(["dlq", "list", ...registryFlag], { cwd: dir, env: bareEnv });
      expect(list.code, list.stderr).toBe(0);
      expect(list.stderr).toContain(
        `protoevents emulator (pid ${emulator.child.pid}) runs an emulator at ${endpoint}, project ${project}; using it`,
      );
    } finally {
      await emulator.stop();
    }
    expect(emulator.output()).toContain("emulator stopped");
    expect(existsSync(localEmulatorFile(dir))).toBe(false);
  }, 120_000);
});
