import { chmod, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EMULATOR_COMMAND_ENV, findEmulator, startEmulator } from "../../runtime/src/emulator.js";
import { Code, isProtoeventsError } from "../../runtime/src/errors.js";
import { startTsProcess } from "../helpers/processes.js";
import { waitFor } from "../helpers/wait.js";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const saved = { env: process.env[EMULATOR_COMMAND_ENV], path: process.env.PATH };
afterEach(() => {
  if (saved.env === undefined) {
    delete process.env[EMULATOR_COMMAND_ENV];
  } else {
    process.env[EMULATOR_COMMAND_ENV] = saved.env;
  }
  process.env.PATH = saved.path;
});

describe("emulator control", () => {
  it("should start the real emulator on a free port and stop the JVM by PID", async () => {
    const emulator = await startEmulator();
    expect(emulator.endpoint).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(alive(emulator.pid)).toBe(true);
    const response = await fetch(`http://${emulator.endpoint}/`);
    expect(await response.text()).toContain("Ok");
    await emulator.stop();
    expect(alive(emulator.pid)).toBe(false);
    await emulator.stop(); // idempotent
  });

  it("should stop the JVM when the process that started it dies, even by SIGKILL", async () => {
    const owner = startTsProcess("test/fixtures/emulator-owner.ts", {});
    const line = await owner.waitForMatch(/^emulator pid=\d+$/, 60_000);
    const pid = Number(line.split("=")[1]);
    expect(alive(pid)).toBe(true);
    owner.child.kill("SIGKILL");
    await owner.exited;
    // The lifeline pipe closed with its owner: the JVM gets SIGTERM, and SIGKILL after 5 s.
    await waitFor("the emulator JVM to stop", () => !alive(pid), 30_000, 100);
  }, 90_000);

  it("should say how to install the emulator when gcloud is not on PATH", async () => {
    delete process.env[EMULATOR_COMMAND_ENV];
    process.env.PATH = await mkdtemp(join(tmpdir(), "no-gcloud-"));
    const error = await findEmulator().catch((e: unknown) => e);
    expect(isProtoeventsError(error)).toBe(true);
    expect((error as { code: Code }).code).toBe(Code.EmulatorNotFound);
    expect((error as Error).message).toMatch(
      /there is no gcloud on PATH\. Install it with `gcloud components install pubsub-emulator`.*PROTOEVENTS_PUBSUB_EMULATOR/,
    );
  });

  it("should name the variable when PROTOEVENTS_PUBSUB_EMULATOR points at nothing", async () => {
    process.env[EMULATOR_COMMAND_ENV] = "/nonexistent/cloud-pubsub-emulator";
    await expect(findEmulator()).rejects.toThrow(
      /PROTOEVENTS_PUBSUB_EMULATOR=\/nonexistent\/cloud-pubsub-emulator is not an executable file/,
    );
  });

  it("should report the emulator's output when it exits before answering", async () => {
    const dir = await mkdtemp(join(tmpdir(), "bad-emulator-"));
    const script = join(dir, "cloud-pubsub-emulator");
    await writeFile(script, "#!/bin/sh\necho 'Error: Unable to access jarfile' >&2\nexit 1\n");
    await chmod(script, 0o755);
    const error = await startEmulator({ command: script, port: 1 }).catch((e: unknown) => e);
    expect((error as { code: Code }).code).toBe(Code.EmulatorFailed);
    expect((error as Error).message).toMatch(
      /exited before answering on 127\.0\.0\.1:1\. Its output:\nError: Unable to access jarfile/,
    );
  });
});
