import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import { freePort } from "../../runtime/src/emulator.js";
import {
  announceLocalEmulator,
  findLocalEmulator,
  type LocalEmulator,
  localEmulatorFile,
} from "../../runtime/src/local-emulator.js";

/** A pid that no process has any more. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""]);
  await new Promise((resolve) => child.once("exit", resolve));
  return child.pid as number;
}

describe("the local emulator announcement", () => {
  let root = "";
  let live: LocalEmulator;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "protoevents-local-"));
    await mkdir(join(root, "node_modules"));
    live = {
      endpoint: inject("emulatorHost"),
      project: "local-1",
      pid: process.pid,
      owner: "test",
    };
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("should find a live owner's answering emulator, and forget it once withdrawn", async () => {
    const withdraw = announceLocalEmulator(root, live);
    expect(await findLocalEmulator(root)).toEqual(live);
    withdraw();
    expect(existsSync(localEmulatorFile(root))).toBe(false);
    expect(await findLocalEmulator(root)).toBeUndefined();
  });

  it("should leave a later owner's announcement in place when an earlier one withdraws", async () => {
    const first = announceLocalEmulator(root, { ...live, pid: await deadPid() });
    announceLocalEmulator(root, live);
    first();
    expect(await findLocalEmulator(root)).toEqual(live);
  });

  it("should ignore an announcement whose owner is gone or whose emulator does not answer", async () => {
    announceLocalEmulator(root, { ...live, pid: await deadPid() });
    expect(await findLocalEmulator(root)).toBeUndefined();
    announceLocalEmulator(root, { ...live, endpoint: `127.0.0.1:${await freePort()}` });
    expect(await findLocalEmulator(root)).toBeUndefined();
  });

  it("should trust only a well-formed note naming a loopback address", async () => {
    const file = localEmulatorFile(root);
    await mkdir(dirname(file), { recursive: true });
    const port = live.endpoint.split(":")[1];
    for (const note of [
      { ...live, endpoint: `10.1.2.3:${port}` },
      { ...live, endpoint: `evil.example.com:${port}` },
      { ...live, pid: "1" },
      { ...live, project: "a b" },
      "not json",
      JSON.stringify({ ...live, owner: "x".repeat(5_000) }),
    ]) {
      await writeFile(file, typeof note === "string" ? note : JSON.stringify(note));
      expect(await findLocalEmulator(root), JSON.stringify(note).slice(0, 80)).toBeUndefined();
    }
    await writeFile(file, JSON.stringify(live));
    expect(await findLocalEmulator(root)).toEqual(live);
  });

  it("should announce nothing where nothing is installed (no node_modules)", async () => {
    await rm(join(root, "node_modules"), { recursive: true });
    const withdraw = announceLocalEmulator(root, live);
    expect(existsSync(localEmulatorFile(root))).toBe(false);
    withdraw();
    // Nor did it make a node_modules of its own.
    expect(existsSync(join(root, "node_modules"))).toBe(false);
  });
});
