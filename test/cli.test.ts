import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, inject, it } from "vitest";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const cli = join(root, "bin", "protoevents.js");

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function protoevents(args: string[], env: Record<string, string> = {}): Promise<Run> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cli, ...args], {
      cwd: root,
      env: { ...process.env, PUBSUB_EMULATOR_HOST: inject("emulatorHost"), ...env },
      timeout: 120_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

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

  it("should run the demo of npm start end to end on the emulator", async () => {
    const run = await protoevents(["demo", "--orders", "6", "--rate", "50"]);
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
    const run = await protoevents(["demo", "--orders", "0"]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      "protoevents: [invalid_argument] --orders must be a positive integer",
    );
    const unknown = await protoevents(["bogus"]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain("unknown command 'bogus'");
  });

  it("should say how to fix a missing registry", async () => {
    const run = await protoevents(["provision", "--dry-run", "--registry", "nope/registry.ts"]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /\[invalid_argument\] cannot load the contract registry .*nope\/registry\.ts.*Run `npm run generate` first, or pass --registry/,
    );
  });
});
