import type { PubSub } from "@google-cloud/pubsub";
import { inject } from "vitest";
import { createPubSub } from "../../runtime/src/pubsub-client.js";

let counter = 0;

/**
 * A Pub/Sub client on the run's emulator, in a project of its own: the
 * emulator keeps projects apart, so tests never see each other's topics.
 */
export function testPubSub(prefix = "test"): PubSub {
  counter++;
  const projectId = `${prefix}-${process.pid}-${counter}`.toLowerCase().replace(/[^a-z0-9-]/g, "-");
  return createPubSub({ projectId, emulatorHost: inject("emulatorHost") });
}

/**
 * Poll until `check` (sync or async) holds; fail naming `what` after
 * `timeoutMs`. The one way tests wait for something to happen.
 */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A promise with its resolve function, for handlers that a test releases. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve: (value: T) => void = () => {};
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
