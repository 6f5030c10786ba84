import type { TestProject } from "vitest/node";
import { startEmulator } from "../runtime/src/emulator.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** `host:port` of the Pub/Sub emulator started for this test run. */
    emulatorHost: string;
  }
}

/** Start one real Pub/Sub emulator for the run and stop it by PID afterwards. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const emulator = await startEmulator();
  project.provide("emulatorHost", emulator.endpoint);
  return () => emulator.stop();
}
