import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { TS_NODE_ARGS } from "../../services/lib/node-args.js";

const root = join(import.meta.dirname, "../..");

describe("createLogger", () => {
  it("should let a process exit when its stderr's reader is gone (EPIPE)", async () => {
    const child = spawn(
      process.execPath,
      [...TS_NODE_ARGS, join(root, "test/fixtures/logger-broken-pipe.ts")],
      {
        cwd: root,
        env: { ...process.env, PROTOEVENTS_LOG_LEVEL: "info" },
        stdio: ["pipe", "pipe", "pipe"],
      },
    );
    onTestFinished(() => {
      child.kill("SIGKILL");
    });
    let stdout = "";
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    await new Promise<void>((resolve) => {
      child.stdout.on("data", (chunk: Buffer) => {
        stdout += chunk.toString("utf8");
        if (stdout.includes("ready\n")) {
          resolve();
        }
      });
    });
    // Nobody reads its stderr any more: each write fails with EPIPE.
    const closed = once(child.stderr, "close");
    child.stderr.destroy();
    await closed;
    child.stdin.write("go\n");
    // (A logger that retried the broken pipe at exit would never get here.)
    expect(await exited).toBe(0);
    expect(stdout).toContain("logged\n");
  }, 60_000);
});
