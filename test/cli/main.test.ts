import { describe, expect, inject, it } from "vitest";
import { checkout, protoevents as run } from "../helpers/cli.js";

const env = () => ({ PUBSUB_EMULATOR_HOST: inject("emulatorHost") });
const protoevents = (args: string[]) => run(args, { env: env() });

describe("protoevents CLI", () => {
  it("should print a provisioning plan on --dry-run, apply it, and find nothing to do the second time", async () => {
    const project = ["--project", `cli-${process.pid}`];
    const dry = await protoevents(["provision", "--dry-run", ...project]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain("+ topic checkout.order-placed");
    expect(dry.stdout).toContain("+ subscription payment.charge-order");
    expect(dry.stdout).toMatch(/57 to create, 0 to update, 0 unchanged, 0 conflicts/);
    expect(dry.stdout).toContain("dry run: nothing was changed");

    const applied = await protoevents(["provision", ...project]);
    expect(applied.stdout).toMatch(/57 to create/);
    expect(applied.stdout).toContain("applied");

    const again = await protoevents(["provision", ...project]);
    expect(again.stdout).toMatch(/0 to create, 0 to update, 57 unchanged, 0 conflicts/);
    expect(again.stdout).toContain("nothing to change");
  });

  it("should run the checkout's spine demo end to end on the emulator", async () => {
    const run = await checkout(["demo", "--orders", "6", "--rate", "50"], { env: env() });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/provisioned \d+ topics and subscriptions from the contracts/);
    expect(run.stdout).toContain('"eventType": "checkout.v1.OrderPlaced"');
    expect(run.stdout).toContain('"customerEmail": "[redacted]"');
    expect(run.stdout).toMatch(/dead-lettered on payment\.charge-order: decode_failed/);
    expect(run.stdout).toContain(
      "placed 6 · charged 5 · declined 1 · outcomes seen by the saga 6 · dead-lettered 1",
    );
    expect(run.stdout).toContain("every order reached the saga");
  });

  it("should refuse bad options with a clear message and a non-zero exit", async () => {
    const demo = await checkout(["demo", "--orders", "0"], { env: env() });
    expect(demo.code).toBe(1);
    expect(demo.stderr).toContain(
      "checkout: [invalid_argument] --orders must be a positive integer",
    );
    const number = await protoevents(["provision", "--dry-run", "--project-number", "acme-prod"]);
    expect(number.code).toBe(1);
    expect(number.stderr).toContain(
      '--project-number must be the project\'s number (digits only, as in gcloud projects describe), got "acme-prod"',
    );
    const unknown = await protoevents(["bogus"]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain("unknown command 'bogus'");
  });

  it("should say how to fix a missing registry", async () => {
    const given = await protoevents(["provision", "--dry-run", "--registry", "nope/registry.ts"]);
    expect(given.code).toBe(1);
    expect(given.stderr).toContain(
      "protoevents: [invalid_argument] no contract registry at nope/registry.ts (--registry): pass the protoevents_registry.ts that protoc-gen-protoevents writes",
    );
  });

  it("should name a real Google Cloud project and change nothing there without --yes", async () => {
    const real = {
      PUBSUB_EMULATOR_HOST: undefined,
      PUBSUB_PROJECT_ID: undefined,
      GOOGLE_CLOUD_PROJECT: "acme-prod",
    };
    const provision = await run(["provision"], { env: real });
    expect(provision.code).toBe(1);
    expect(provision.stderr).toContain(
      "provision: target is real Pub/Sub (pubsub.googleapis.com), Google Cloud project acme-prod",
    );
    expect(provision.stderr).toContain(
      "protoevents: [invalid_argument] provision would change real Pub/Sub (pubsub.googleapis.com), Google Cloud project acme-prod: see the plan with --dry-run, then run it again with --yes",
    );
    const replay = await run(["dlq", "replay", "--all"], { env: real });
    expect(replay.code).toBe(1);
    expect(replay.stderr).toContain(
      "[invalid_argument] dlq replay would change real Pub/Sub (pubsub.googleapis.com), Google Cloud project acme-prod",
    );
    // On an emulator the same commands go ahead, saying where.
    const local = await protoevents(["provision", "--project", `yes-${process.pid}`]);
    expect(local.code).toBe(0);
    expect(local.stderr).toMatch(/provision: target is the Pub\/Sub emulator at 127\.0\.0\.1:\d+/);
  });
});
