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
