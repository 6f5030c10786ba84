import { create } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { OrderPlacedSchema } from "../../generated/checkout/v1/order_events_pb.js";
import {
  encodeOrderPlaced,
  OrderPlacedEvent,
} from "../../generated/checkout/v1/order_events_pe.js";
import {
  decodeValidEvent,
  type IncomingMessage,
  readEnvelope,
  toJsonView,
} from "../../runtime/src/envelope.js";
import { Code, isPermanentCode, isProtoeventsError } from "../../runtime/src/errors.js";
import { validOrderPlaced } from "../helpers/orders.js";
import { fuzzOptions } from "./options.js";

/** Where the consumer's decode-validate step may end: a valid event, or a reason to dead-letter. */
const DEAD_LETTER_REASONS = new Set<Code>([
  Code.DecodeFailed,
  Code.UnknownEventType,
  Code.ValidationFailed,
  Code.TooLarge,
]);

/** Decode as a consumer does; the outcome, or a thrown non-protoevents error (a bug). */
function consume(message: IncomingMessage): "valid" | Code {
  try {
    const decoded = decodeValidEvent(OrderPlacedEvent, message);
    // What a consumer hands on must pass its rules.
    expect(OrderPlacedEvent.validate(decoded.event)).toEqual([]);
    return "valid";
  } catch (error) {
    if (!isProtoeventsError(error)) {
      throw error;
    }
    return error.code;
  }
}

const valid = encodeOrderPlaced(create(OrderPlacedSchema, validOrderPlaced()), {
  source: "order",
});

const attributeKey = fc.oneof(
  fc.constantFrom(
    "ce-id",
    "ce-type",
    "ce-source",
    "ce-time",
    "ce-specversion",
    "content-type",
    "ce-subject",
    "protoevents-replay-for",
  ),
  fc.string({ maxLength: 12 }),
);

/** A message a hostile publisher could send: anything, or a real one bent out of shape. */
const hostile: fc.Arbitrary<IncomingMessage> = fc.oneof(
  fc.record({
    data: fc.uint8Array({ maxLength: 600 }),
    attributes: fc.dictionary(attributeKey, fc.string({ maxLength: 40 }), { maxKeys: 10 }),
  }),
  // The real envelope around random bytes.
  fc.record({ data: fc.uint8Array({ maxLength: 600 }), attributes: fc.constant(valid.attributes) }),
  // The real payload with bytes flipped or cut.
  fc
    .tuple(fc.nat({ max: valid.data.length - 1 }), fc.integer({ min: 1, max: 255 }), fc.boolean())
    .map(([at, xor, cut]) => {
      const data = Buffer.from(valid.data);
      data[at] = (data[at] ?? 0) ^ xor;
      return { data: cut ? data.subarray(0, at) : data, attributes: valid.attributes };
    }),
  // JSON of any shape, or the real fields with values of any type.
  fc
    .oneof(
      fc.json({ maxDepth: 3 }),
      fc
        .record({
          orderId: fc.anything({ maxDepth: 1 }),
          customerEmail: fc.anything({ maxDepth: 1 }),
          total: fc.anything({ maxDepth: 2 }),
          items: fc.anything({ maxDepth: 2 }),
        })
        .map((o) => JSON.stringify(o) ?? "null"),
    )
    .map((json) => ({
      data: Buffer.from(json),
      attributes: { ...valid.attributes, "content-type": "application/json" },
    })),
);

describe("the consumer's decode-validate step under hostile messages", () => {
  it("should end every message in a valid event or a dead-letter reason, never an unexpected error (seeded)", () => {
    fc.assert(
      fc.property(hostile, (message) => {
        const outcome = consume(message);
        expect(outcome === "valid" || DEAD_LETTER_REASONS.has(outcome), String(outcome)).toBe(true);
        if (outcome !== "valid") {
          expect(isPermanentCode(outcome)).toBe(true);
        }
      }),
      fuzzOptions(1500),
    );
  });

  it("should never show a pii value in an event's JSON view (seeded)", () => {
    const secret = fc.string({ minLength: 8, maxLength: 40 }).filter((s) => s.trim().length >= 8);
    fc.assert(
      fc.property(secret, secret, (email, token) => {
        const event = create(OrderPlacedSchema, {
          ...validOrderPlaced(),
          customerEmail: email,
          paymentToken: token,
        });
        const message = encodeOrderPlaced(event, { source: "order" });
        const shown = JSON.stringify(
          toJsonView(OrderPlacedEvent, { event, envelope: readEnvelope(message) }),
        );
        expect(shown).not.toContain(JSON.stringify(email).slice(1, -1));
        expect(shown).not.toContain(JSON.stringify(token).slice(1, -1));
      }),
      fuzzOptions(300),
    );
  });
});
