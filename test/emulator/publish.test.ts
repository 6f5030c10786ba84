import { describe, expect, it } from "vitest";
import { createOrderSagaServicePublisher } from "../../generated/checkout/v1/applications_pe.js";
import { OrderPlacedEvent } from "../../generated/checkout/v1/order_events_pe.js";
import { Code, isProtoeventsError, type ProtoeventsError } from "../../runtime/src/errors.js";
import { afterThisTest } from "../helpers/cleanup.js";
import { validOrderPlaced } from "../helpers/orders.js";
import { testPubSub } from "../helpers/pubsub.js";

describe("generated producer", () => {
  it("should fail with publish_failed naming the event and topic when the topic is missing, and resume its ordering key", async () => {
    const pubsub = testPubSub("publish");
    afterThisTest(() => pubsub.close());
    const publisher = createOrderSagaServicePublisher(pubsub);

    const error = await publisher
      .publishOrderPlaced(validOrderPlaced("ord-resume"))
      .catch((e: unknown) => e);
    expect(isProtoeventsError(error)).toBe(true);
    expect((error as ProtoeventsError).code).toBe(Code.PublishFailed);
    expect((error as Error).message).toMatch(
      /^\[publish_failed\] Pub\/Sub did not accept checkout\.v1\.OrderPlaced event [0-9a-f-]{36} on topic checkout\.order-placed: .*NOT_FOUND/,
    );

    // The same ordering key publishes again once the topic exists: the client
    // pauses a key after a failed publish and the publisher resumes it, so a
    // caller's retry is not refused.
    await pubsub.createTopic(OrderPlacedEvent.topic);
    const retried = await publisher.publishOrderPlaced(validOrderPlaced("ord-resume"), {
      id: "evt-retry",
    });
    expect(retried.id).toBe("evt-retry");
    expect(retried.messageId).toMatch(/^\d+$/);
  });
});
