import { describe, expect, it } from "vitest";
import { PaymentServiceSubscriptions } from "../../../generated/checkout/v1/applications_pe.js";
import type { SubscriptionContract } from "../../../runtime/src/contract.js";
import {
  createDeadLetterPublisher,
  type DeadLetterMessage,
} from "../../../runtime/src/delivery/dead-letter-publisher.js";
import { PermanentError } from "../../../runtime/src/errors.js";
import { captureLogs } from "../../helpers/logs.js";

/** A fake dead-letter topic: records what is published, or refuses it. */
class FakeTopic {
  readonly published: { data: Buffer; attributes: Record<string, string> }[] = [];
  refuseWith: Error | undefined;

  async publishMessage(message: {
    data?: Buffer | null;
    attributes?: Record<string, string> | null;
  }): Promise<string> {
    if (this.refuseWith !== undefined) {
      throw this.refuseWith;
    }
    this.published.push({
      data: message.data ?? Buffer.alloc(0),
      attributes: message.attributes ?? {},
    });
    return String(this.published.length);
  }
}

/** A fake received message: records how it was settled, in order with the topic's publishes. */
function fakeMessage(events: string[], exactlyOnceRefusal?: Error): DeadLetterMessage {
  return {
    id: "m-1",
    data: Buffer.from("payload"),
    attributes: { "ce-id": "evt-1", "ce-type": "checkout.v1.OrderPlaced", "ce-subject": "ord-1" },
    orderingKey: "ord-1",
    deliveryAttempt: 2,
    ack: () => void events.push("ack"),
    nack: () => void events.push("nack"),
    ackWithResponse: async () => {
      events.push("ackWithResponse");
      if (exactlyOnceRefusal !== undefined) {
        throw exactlyOnceRefusal;
      }
      return "SUCCESS";
    },
    nackWithResponse: async () => {
      events.push("nackWithResponse");
      return "SUCCESS";
    },
  };
}

const subscription: SubscriptionContract = {
  ...PaymentServiceSubscriptions.chargeOrder,
  name: "payment.charge-order",
  deadLetter: {
    topic: "payment.charge-order.dead-letter",
    subscription: "payment.charge-order.dead-letter",
  },
};

describe("createDeadLetterPublisher", () => {
  it("should publish to the subscription's dead-letter topic with the protocol's attributes, then ack", async () => {
    const topic = new FakeTopic();
    const events: string[] = [];
    const logs = captureLogs("debug");
    const publisher = createDeadLetterPublisher((name) => {
      events.push(`publish to ${name}`);
      return topic;
    }, logs.logger);
    const result = await publisher.deadLetter(
      subscription,
      fakeMessage(events),
      new PermanentError("no such product"),
    );
    expect(result).toBe("dead-lettered");
    expect(events).toEqual(["publish to payment.charge-order.dead-letter", "ack"]);
    expect(topic.published).toHaveLength(1);
    expect(topic.published[0]?.data.toString()).toBe("payload");
    expect(topic.published[0]?.attributes).toMatchObject({
      "ce-id": "evt-1",
      "protoevents-dead-letter-reason": "permanent",
      "protoevents-dead-letter-detail": "no such product",
      "protoevents-dead-letter-subscription": "payment.charge-order",
      "protoevents-dead-letter-delivery-attempt": "2",
      "protoevents-ordering-key": "ord-1",
    });
    expect(logs.lines()).toEqual([
      expect.objectContaining({
        level: 40,
        op: "dead-letter",
        msg: "dead-lettered",
        subscription: "payment.charge-order",
        eventId: "evt-1",
        reason: "permanent",
        detail: "no such product",
        deadLetterTopic: "payment.charge-order.dead-letter",
      }),
    ]);
  });

  it("should nack, not ack, when the dead-letter topic refuses the message", async () => {
    const topic = new FakeTopic();
    topic.refuseWith = new Error("UNAVAILABLE");
    const events: string[] = [];
    const logs = captureLogs("info");
    const publisher = createDeadLetterPublisher(() => topic, logs.logger);
    const result = await publisher.deadLetter(
      subscription,
      fakeMessage(events),
      new PermanentError("no such product"),
    );
    expect(result).toBe("nacked");
    expect(events).toEqual(["nack"]);
    expect(logs.lines()).toEqual([
      expect.objectContaining({
        level: 50,
        msg: "could not publish to the dead-letter topic; nacked",
        err: expect.objectContaining({ code: "publish_failed" }),
      }),
    ]);
  });

  it("should nack without publishing when the subscription has no dead-letter topic", async () => {
    const topic = new FakeTopic();
    const events: string[] = [];
    const logs = captureLogs("info");
    const publisher = createDeadLetterPublisher(() => topic, logs.logger);
    const result = await publisher.deadLetter(
      { ...subscription, deadLetter: undefined },
      fakeMessage(events),
      new PermanentError("no such product"),
    );
    expect(result).toBe("nacked");
    expect(events).toEqual(["nack"]);
    expect(topic.published).toEqual([]);
    expect(logs.lines()[0]?.msg).toBe(
      "permanent failure on a subscription without dead-lettering; nacked",
    );
  });

  it("should wait for Pub/Sub's answer to the ack with exactly-once delivery", async () => {
    const topic = new FakeTopic();
    const events: string[] = [];
    const logs = captureLogs("info");
    const publisher = createDeadLetterPublisher(() => topic, logs.logger);
    const result = await publisher.deadLetter(
      { ...subscription, exactlyOnceDelivery: true },
      fakeMessage(events, Object.assign(new Error("expired"), { errorCode: "INVALID" })),
      new PermanentError("no such product"),
    );
    // Published, so dead-lettered: a refused ack only brings it back once more.
    expect(result).toBe("dead-lettered");
    expect(events).toEqual(["ackWithResponse"]);
    expect(logs.lines().map((l) => l.msg)).toEqual([
      "Pub/Sub did not confirm the ack (exactly-once delivery): the event will come back, and the inbox recognises it",
      "dead-lettered",
    ]);
  });
});
