import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { TestProject } from "vitest/node";
import { startEmulator } from "../runtime/src/emulator.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** `host:port` of the Pub/Sub emulator started for this test run. */
    emulatorHost: string;
  }
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * Bring the packages' dist/ up to date (incremental: about a second when
 * nothing changed). Tests that run the `protoevents` command run the built
 * one, as an installed package does: it starts in a fraction of the time
 * the sources take through tsx, and a change to the sources still needs no
 * build by hand.
 */
async function build(): Promise<void> {
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  try {
    await promisify(execFile)(process.execPath, [tsc, "-b", "runtime", "codegen", "cli"], {
      cwd: ROOT,
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (error) {
    const { stdout = "", stderr = "" } = error as { stdout?: string; stderr?: string };
    throw new Error(`tsc -b runtime codegen cli failed:\n${stdout}${stderr}`, { cause: error });
  }
}

/** Build the packages and start one real Pub/Sub emulator for the run; stop it by PID afterwards. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const [emulator] = await Promise.all([startEmulator(), build()]);
  project.provide("emulatorHost", emulator.endpoint);
  return () => emulator.stop();
}
