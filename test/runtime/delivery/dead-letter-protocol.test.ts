import { describe, expect, it } from "vitest";
import { MAX_ATTRIBUTE_VALUE_BYTES } from "../../../runtime/src/default-options.js";
import {
  cut,
  DeadLetterAttribute,
  deadLetterAttributes,
  deadLetterOrderingKey,
  deadLetterReason,
  EXHAUSTED_RETRIES,
  REPLAY_FOR_ATTRIBUTE,
  replayAttributes,
  UNKNOWN_REASON,
} from "../../../runtime/src/delivery/dead-letter-protocol.js";
import { Code, PermanentError, ProtoeventsError } from "../../../runtime/src/errors.js";

const envelope = {
  "ce-specversion": "1.0",
  "ce-id": "0199-id",
  "ce-type": "checkout.v1.OrderPlaced",
  "ce-source": "order",
  "ce-subject": "ord-1",
};

describe("deadLetterAttributes", () => {
  it("should keep the envelope and add the reason, detail, subscription, attempt, time and ordering key", () => {
    const attributes = deadLetterAttributes(
      { data: Buffer.from("x"), attributes: envelope, orderingKey: "ord-1", deliveryAttempt: 3 },
      new PermanentError("order ord-1 has no items"),
      "payment.charge-order",
      new Date("2026-11-26T10:00:00.000Z"),
    );
    expect(attributes).toEqual({
      ...envelope,
      "protoevents-dead-letter-reason": "permanent",
      "protoevents-dead-letter-detail": "order ord-1 has no items",
      "protoevents-dead-letter-subscription": "payment.charge-order",
      "protoevents-dead-letter-delivery-attempt": "3",
      "protoevents-dead-letter-time": "2026-11-26T10:00:00.000Z",
      "protoevents-ordering-key": "ord-1",
    });
  });

  it("should add the size for too_large and no ordering key when there is none", () => {
    const attributes = deadLetterAttributes(
      { data: Buffer.alloc(2048), attributes: envelope, orderingKey: "", deliveryAttempt: 1 },
      new ProtoeventsError(Code.TooLarge, "2048 bytes, at most 1024"),
      "payment.charge-order",
    );
    expect(attributes[DeadLetterAttribute.size]).toBe("2048");
    expect(attributes[DeadLetterAttribute.reason]).toBe("too_large");
    expect(DeadLetterAttribute.orderingKey in attributes).toBe(false);
  });

  it("should cut a long failure message to fit an attribute", () => {
    const attributes = deadLetterAttributes(
      { data: Buffer.alloc(0), attributes: {}, deliveryAttempt: 1 },
      new PermanentError("é".repeat(MAX_ATTRIBUTE_VALUE_BYTES)),
      "s",
    );
    const detail = attributes[DeadLetterAttribute.detail] ?? "";
    expect(Buffer.byteLength(detail, "utf8")).toBeLessThanOrEqual(MAX_ATTRIBUTE_VALUE_BYTES);
    expect(detail.endsWith("é...")).toBe(true);
  });

  it("should be read back by deadLetterReason and deadLetterOrderingKey", () => {
    const attributes = deadLetterAttributes(
      { data: Buffer.alloc(0), attributes: envelope, orderingKey: "ord-1", deliveryAttempt: 4 },
      new ProtoeventsError(Code.ValidationFailed, "items must have at least 1 item"),
      "payment.charge-order",
    );
    expect(deadLetterReason(attributes)).toEqual({
      reason: "validation_failed",
      detail: "items must have at least 1 item",
      deliveryCount: 4,
    });
    // A dead-letter topic is unordered: the key comes back from the attribute.
    expect(deadLetterOrderingKey(attributes, "")).toBe("ord-1");
  });
});

describe("deadLetterReason", () => {
  it("should read Pub/Sub's delivery count when protoevents did not dead-letter it", () => {
    expect(deadLetterReason({ CloudPubSubDeadLetterSourceDeliveryCount: "10" })).toEqual({
      reason: EXHAUSTED_RETRIES,
      detail: "Pub/Sub moved it after 10 delivery attempts",
      deliveryCount: 10,
    });
  });

  it("should say unknown for a message without either's attributes, and ignore a count that is not a number", () => {
    expect(deadLetterReason({ "ce-id": "x" })).toEqual({
      reason: UNKNOWN_REASON,
      detail: undefined,
      deliveryCount: undefined,
    });
    expect(
      deadLetterReason({
        "protoevents-dead-letter-reason": "permanent",
        "protoevents-dead-letter-delivery-attempt": "many",
      }).deliveryCount,
    ).toBeUndefined();
  });
});

describe("deadLetterOrderingKey", () => {
  it("should prefer the message's own ordering key, else the kept one, else none", () => {
    expect(deadLetterOrderingKey({ "protoevents-ordering-key": "kept" }, "own")).toBe("own");
    expect(deadLetterOrderingKey({ "protoevents-ordering-key": "kept" }, null)).toBe("kept");
    expect(deadLetterOrderingKey({ "protoevents-ordering-key": "" }, undefined)).toBeUndefined();
    expect(deadLetterOrderingKey({}, "")).toBeUndefined();
  });
});

describe("replayAttributes", () => {
  it("should drop every dead-letter attribute, both protocols', and mark the replay for the failed subscription", () => {
    const written = deadLetterAttributes(
      { data: Buffer.alloc(0), attributes: envelope, orderingKey: "ord-1", deliveryAttempt: 2 },
      new ProtoeventsError(Code.TooLarge, "too big"),
      "payment.charge-order",
    );
    const attributes = {
      ...written,
      CloudPubSubDeadLetterSourceDeliveryCount: "5",
      [REPLAY_FOR_ATTRIBUTE]: "inventory.reserve-stock",
    };
    expect(replayAttributes({ subscription: "payment.charge-order", attributes })).toEqual({
      ...envelope,
      [REPLAY_FOR_ATTRIBUTE]: "payment.charge-order",
    });
  });
});

describe("cut", () => {
  it.each([
    ["short", 10, "short"],
    ["exactly10!", 10, "exactly10!"],
    ["0123456789abc", 10, "0123456..."],
    // "€" is 3 bytes: the 7 bytes left hold two, never half of the third.
    ["€€€€", 10, "€€..."],
  ])("should cut %j to %i bytes as %j", (text, maxBytes, expected) => {
    expect(cut(text, maxBytes)).toBe(expected);
  });
});
