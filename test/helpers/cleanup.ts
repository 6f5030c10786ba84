import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach } from "vitest";

/**
 * The one way a test cleans up after itself: what it registers here runs
 * after that test, last registered first, whether the test passed or not.
 * Importing this module adds the `afterEach` that runs them to the test file.
 */
const pending: Array<() => unknown> = [];

afterEach(() => cleanUpNow());

/**
 * Run what is registered now, for a file whose own `afterEach` must run
 * after the test's cleanup (say, resetting an exporter the cleanup still
 * writes to). Throws an AggregateError when a step failed, after running all.
 */
export async function cleanUpNow(): Promise<void> {
  const errors: unknown[] = [];
  for (const undo of pending.splice(0).reverse()) {
    try {
      await undo();
    } catch (error) {
      errors.push(error);
    }
  }
  if (errors.length > 0) {
    throw new AggregateError(errors, `${errors.length} cleanup step(s) failed`);
  }
}

/** Run `undo` after the current test (stop a process, close a client, drop a schema). */
export function afterThisTest(undo: () => unknown): void {
  pending.push(undo);
}

/** A fresh temporary directory, removed after the current test. */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `protoevents-${prefix}-`));
  afterThisTest(() => rm(dir, { recursive: true, force: true }));
  return dir;
}
