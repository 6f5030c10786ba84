import { create, equals } from "@bufbuild/protobuf";
import { PubSub } from "@google-cloud/pubsub";
import { describe, expect, expectTypeOf, it } from "vitest";
import type {
  OrderSagaServiceHandlers,
  PaymentServiceHandlers,
  PaymentServicePublisher,
} from "../../generated/checkout/v1/applications_pe.js";
import type { Money } from "../../generated/checkout/v1/common_pb.js";
import { OrderPlacedSchema } from "../../generated/checkout/v1/order_events_pb.js";
import {
  decodeOrderPlaced,
  encodeOrderPlaced,
  ORDER_PLACED_TOPIC,
  ORDER_PLACED_TYPE,
  OrderPlacedEvent,
  type OrderPlacedInput,
  type OrderPlacedValid,
  validateOrderPlaced,
} from "../../generated/checkout/v1/order_events_pe.js";
import { registry } from "../../generated/protoevents_registry.js";
import type { EventContract } from "../../runtime/src/contract.js";
import { decodeEvent, encodeEvent, REDACTED, toJsonView } from "../../runtime/src/envelope.js";
import { Code, isProtoeventsError } from "../../runtime/src/errors.js";
import { createEventPublisher } from "../../runtime/src/publisher.js";
import { validOrderPlaced } from "../helpers/orders.js";
import { sampleOf } from "../helpers/sample.js";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("checkout events", () => {
  it("should cover every event of the checkout design", () => {
    expect(registry.events.map((e) => e.type).sort()).toEqual(
      [
        "checkout.v1.InventoryReleased",
        "checkout.v1.InventoryReservationFailed",
        "checkout.v1.InventoryReserved",
        "checkout.v1.NotificationSent",
        "checkout.v1.OrderCancelled",
        "checkout.v1.OrderConfirmed",
        "checkout.v1.OrderPlaced",
        "checkout.v1.OrderReadyForShipping",
        "checkout.v1.PaymentFailed",
        "checkout.v1.PaymentProcessed",
        "checkout.v1.PaymentRefunded",
        "checkout.v1.ProductUpdated",
      ].sort(),
    );
  });

  for (const contract of registry.events) {
    for (const encoding of ["binary", "json"] as const) {
      it(`should round-trip ${contract.type} through the ${encoding} envelope`, () => {
        const typed: EventContract = { ...contract, encoding };
        const event = sampleOf(typed.schema);
        const message = encodeEvent(typed, event, { source: "test" });
        expect(Buffer.isBuffer(message.data)).toBe(true);
        expect(message.attributes["content-type"]).toBe(
          encoding === "json" ? "application/json" : "application/protobuf",
        );
        const decoded = decodeEvent(typed, message);
        expect(equals(typed.schema, decoded.event, event)).toBe(true);
        expect(decoded.envelope.type).toBe(contract.type);
        expect(decoded.envelope.source).toBe("test");
      });
    }
  }
});

describe("OrderPlaced envelope", () => {
  it("should write every CloudEvents attribute and the ordering key", () => {
    const event = create(OrderPlacedSchema, validOrderPlaced("ord-7"));
    const message = encodeOrderPlaced(event, { source: "order" });
    expect(message.orderingKey).toBe("ord-7");
    expect(message.attributes).toEqual({
      "ce-specversion": "1.0",
      "ce-id": expect.stringMatching(UUID_V7),
      "ce-type": "checkout.v1.OrderPlaced",
      "ce-source": "order",
      "ce-time": expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      "ce-subject": "ord-7",
      "ce-dataschema": expect.stringMatching(
        /^urn:protoevents:schema:checkout\.v1\.OrderPlaced:sha256-[0-9a-f]{16}$/,
      ),
      "content-type": "application/protobuf",
    });
    expect(ORDER_PLACED_TOPIC).toBe("checkout.order-placed");
    expect(ORDER_PLACED_TYPE).toBe("checkout.v1.OrderPlaced");
  });

  it("should keep a given event id, time and extra attributes", () => {
    const event = create(OrderPlacedSchema, validOrderPlaced());
    const message = encodeOrderPlaced(event, {
      source: "order",
      id: "evt-1",
      time: new Date("2026-01-02T03:04:05Z"),
      attributes: { region: "eu" },
    });
    expect(message.attributes["ce-id"]).toBe("evt-1");
    expect(message.attributes["ce-time"]).toBe("2026-01-02T03:04:05.000Z");
    expect(message.attributes.region).toBe("eu");
    expect(message.attributes["ce-type"]).toBe("checkout.v1.OrderPlaced");
  });

  it.each([
    "ce-type",
    "CE-ID",
    "content-type",
    "traceparent",
    "protoevents-replay-for",
    "protoevents-dead-letter-reason",
    "googclient_schemaname",
  ])("should refuse the reserved attribute %s from a producer, naming it", (name) => {
    const event = create(OrderPlacedSchema, validOrderPlaced());
    let error: unknown;
    try {
      encodeOrderPlaced(event, { source: "order", attributes: { region: "eu", [name]: "x" } });
    } catch (e) {
      error = e;
    }
    expect(isProtoeventsError(error) && error.code).toBe(Code.InvalidArgument);
    expect((error as Error).message).toContain(
      `attribute ${JSON.stringify(name)} cannot be set by a producer`,
    );
  });

  it("should reject a publish with a reserved attribute before anything is sent", async () => {
    // No emulator: the publish must fail before it would reach Pub/Sub.
    const publisher = createEventPublisher(new PubSub({ projectId: "never-contacted" }), {
      source: "order",
    });
    await expect(
      publisher.publish(OrderPlacedEvent, validOrderPlaced(), {
        attributes: { "protoevents-replay-for": "payment.charge-order" },
      }),
    ).rejects.toMatchObject({ code: Code.InvalidArgument });
  });

  it("should decode what it encodes, with the envelope", () => {
    const event = create(OrderPlacedSchema, validOrderPlaced("ord-9"));
    const message = encodeOrderPlaced(event, { source: "order", id: "evt-9" });
    const decoded = decodeOrderPlaced(message);
    expect(decoded.envelope).toMatchObject({ id: "evt-9", subject: "ord-9", orderingKey: "ord-9" });
    expect(decoded.event.total.amountMinor).toBe(12980n);
  });

  it("should refuse a message of another type as unknown_event_type", () => {
    const event = create(OrderPlacedSchema, validOrderPlaced());
    const message = encodeOrderPlaced(event, { source: "order" });
    const forged = {
      ...message,
      attributes: { ...message.attributes, "ce-type": "checkout.v1.Nope" },
    };
    expect(() => decodeOrderPlaced(forged)).toThrow(
      expect.objectContaining({ code: Code.UnknownEventType }),
    );
  });

  it("should refuse garbage bytes as decode_failed, naming the event", () => {
    const message = encodeOrderPlaced(create(OrderPlacedSchema, validOrderPlaced()), {
      source: "order",
    });
    const garbage = { ...message, data: Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]) };
    try {
      decodeOrderPlaced(garbage);
      expect.unreachable();
    } catch (error) {
      expect(isProtoeventsError(error)).toBe(true);
      expect((error as { code: Code }).code).toBe(Code.DecodeFailed);
      expect((error as Error).message).toMatch(
        /payload of checkout\.v1\.OrderPlaced event .* cannot be decoded as application\/protobuf/,
      );
    }
  });

  it.each([
    [
      "a pii field of the wrong type",
      '{"customerEmail": 4242424242}',
      "4242424242",
      "cannot decode field checkout.v1.OrderPlaced.customer_email from JSON: its value does not fit the field's type ([redacted]: the field is pii)",
    ],
    ["text that is not JSON", "ada@example.com", "ada@example.com", "the payload is not JSON"],
  ])(
    "should name the field but never quote personal data when %s fails to decode",
    (_, data, secret, said) => {
      const message = encodeOrderPlaced(create(OrderPlacedSchema, validOrderPlaced()), {
        source: "order",
      });
      const json = {
        ...message,
        attributes: { ...message.attributes, "content-type": "application/json" },
        data: Buffer.from(data),
      };
      let error: unknown;
      try {
        decodeOrderPlaced(json);
      } catch (e) {
        error = e;
      }
      expect(isProtoeventsError(error) && error.code).toBe(Code.DecodeFailed);
      const text = `${(error as Error).message} ${JSON.stringify(error, Object.getOwnPropertyNames(error))}`;
      expect(text).toContain(said);
      expect(text).not.toContain(secret);
    },
  );

  it("should keep the value of a field that is not pii in a decoding error", () => {
    const message = encodeOrderPlaced(create(OrderPlacedSchema, validOrderPlaced()), {
      source: "order",
    });
    const json = {
      ...message,
      attributes: { ...message.attributes, "content-type": "application/json" },
      data: Buffer.from('{"total": {"amountMinor": "twelve"}}'),
    };
    expect(() => decodeOrderPlaced(json)).toThrow(
      "cannot decode field checkout.v1.Money.amount_minor from JSON: expected bigint (int64): twelve out of range",
    );
  });

  it("should refuse an event over its contract's max_bytes on encode and on decode, before decoding", () => {
    const small: EventContract<typeof OrderPlacedSchema> = { ...OrderPlacedEvent, maxBytes: 64 };
    const event = create(OrderPlacedSchema, validOrderPlaced());
    expect(OrderPlacedEvent.maxBytes).toBe(1024 * 1024);
    let error: unknown;
    try {
      encodeEvent(small, event, { source: "order" });
    } catch (e) {
      error = e;
    }
    expect(isProtoeventsError(error) && error.code).toBe(Code.TooLarge);
    expect((error as Error).message).toMatch(
      /^\[too_large\] checkout\.v1\.OrderPlaced is \d+ bytes encoded, over the 64 its contract allows \(max_bytes\); nothing was published$/,
    );
    // Garbage that would fail to decode: the size is refused first.
    const message = encodeOrderPlaced(event, { source: "order" });
    const garbage = { ...message, data: Buffer.alloc(65, 0xff) };
    try {
      decodeEvent(small, garbage);
      error = undefined;
    } catch (e) {
      error = e;
    }
    expect(isProtoeventsError(error) && error.code).toBe(Code.TooLarge);
    expect((error as { details?: unknown }).details).toEqual({ size: 65, limit: 64 });
  });

  it("should refuse a message without ce-id as not a CloudEvent", () => {
    expect(() =>
      decodeOrderPlaced({ data: Buffer.alloc(0), attributes: { "ce-type": ORDER_PLACED_TYPE } }),
    ).toThrow(/\[decode_failed\] message has no ce-id attribute/);
  });

  it("should refuse an event that breaks a rule as validation_failed with the field path", () => {
    const invalid = create(OrderPlacedSchema, { ...validOrderPlaced(), customerEmail: "nope" });
    const message = encodeOrderPlaced(invalid, { source: "order" });
    expect(() => decodeOrderPlaced(message)).toThrow(
      /\[validation_failed\] .*customer_email must match/,
    );
  });

  it("should redact pii fields in the JSON view", () => {
    const event = create(OrderPlacedSchema, validOrderPlaced("ord-5"));
    const decoded = decodeEvent(
      OrderPlacedEvent,
      encodeOrderPlaced(event, { source: "order", id: "e-5" }),
    );
    const view = toJsonView(OrderPlacedEvent, decoded);
    expect(view).toMatchObject({
      eventId: "e-5",
      eventType: "checkout.v1.OrderPlaced",
      subject: "ord-5",
      source: "order",
    });
    const payload = view.payload as Record<string, unknown>;
    expect(payload.orderId).toBe("ord-5");
    expect(payload.customerEmail).toBe(REDACTED);
    expect(payload.paymentToken).toBe(REDACTED);
    expect(payload.shippingAddress).toMatchObject({
      recipientName: REDACTED,
      line1: REDACTED,
      city: "London",
    });
    expect(JSON.stringify(view)).not.toContain("ada@example.com");
    expect(JSON.stringify(view)).not.toContain("tok_visa_4242");
  });
});

/** The i-th item of an order input, for mutating it in a test. */
function itemOf(
  order: Record<string, unknown>,
  i: number,
): Record<string, unknown> & { unitPrice: Record<string, unknown> } {
  const item = (
    order.items as Array<Record<string, unknown> & { unitPrice: Record<string, unknown> }>
  )[i];
  if (item === undefined) {
    throw new Error(`the sample order has no item ${i}`);
  }
  return item;
}

describe("validateOrderPlaced", () => {
  const check = (change: (input: OrderPlacedInput & Record<string, unknown>) => void) => {
    const input = structuredClone(validOrderPlaced()) as OrderPlacedInput & Record<string, unknown>;
    change(input);
    return validateOrderPlaced(create(OrderPlacedSchema, input)).map((v) => `${v.path} ${v.rule}`);
  };

  it("should accept a valid order", () => {
    expect(check(() => {})).toEqual([]);
  });

  it.each([
    ["a missing order id", (o: Record<string, unknown>) => (o.orderId = ""), ["order_id required"]],
    [
      "an order id of 65 characters",
      (o: Record<string, unknown>) => (o.orderId = "x".repeat(65)),
      ["order_id max_len"],
    ],
    ["no items", (o: Record<string, unknown>) => (o.items = []), ["items min_items"]],
    [
      "101 items",
      (o: Record<string, unknown>) =>
        (o.items = Array.from({ length: 101 }, () => ({
          productId: "p",
          quantity: 1,
          unitPrice: { currencyCode: "EUR" },
        }))),
      ["items max_items"],
    ],
    [
      "a zero quantity in the second item",
      (o: Record<string, unknown>) => (itemOf(o, 1).quantity = 0),
      ["items[1].quantity min"],
    ],
    [
      "a lowercase country",
      (o: Record<string, unknown>) =>
        ((o.shippingAddress as Record<string, unknown>).countryCode = "gb"),
      ["shipping_address.country_code pattern"],
    ],
    [
      "no shipping address",
      (o: Record<string, unknown>) => delete o.shippingAddress,
      ["shipping_address required"],
    ],
    [
      "a bad currency in an item price",
      (o: Record<string, unknown>) => (itemOf(o, 0).unitPrice.currencyCode = "euro"),
      ["items[0].unit_price.currency_code pattern"],
    ],
    [
      "a negative total",
      (o: Record<string, unknown>) => ((o.total as Record<string, unknown>).amountMinor = -1n),
      ["total.amount_minor min"],
    ],
    [
      "an e-mail without a domain",
      (o: Record<string, unknown>) => (o.customerEmail = "ada@"),
      ["customer_email pattern"],
    ],
    [
      // The crafted value that once stalled consumers: over max_len, so the pattern never runs on it.
      "a 100,000-character e-mail without a dot",
      (o: Record<string, unknown>) => (o.customerEmail = `a@${".".repeat(100_000)} `),
      ["customer_email max_len"],
    ],
    [
      "two broken rules",
      (o: Record<string, unknown>) => {
        o.orderId = "";
        o.paymentToken = "";
      },
      ["order_id required", "payment_token required"],
    ],
  ])("should reject %s with the field path", (_name, change, expected) => {
    expect(check(change)).toEqual(expected);
  });

  it("should count string length in code points, not UTF-16 units", () => {
    // 64 emoji are 128 UTF-16 units but 64 characters: within max_len 64.
    expect(check((o) => (o.orderId = "😀".repeat(64)))).toEqual([]);
    expect(check((o) => (o.orderId = "😀".repeat(65)))).toEqual(["order_id max_len"]);
  });
});

describe("generated types", () => {
  it("should make required fields mandatory in producer input", () => {
    // @ts-expect-error orderId has a required rule, so an init object must give it
    const missing: OrderPlacedInput = { customerId: "c" };
    void missing;
    expectTypeOf<OrderPlacedInput>().toMatchTypeOf<
      { orderId: string } | { $typeName: "checkout.v1.OrderPlaced" }
    >();
  });

  it("should flag a handler implementation that misses a consumer rpc", () => {
    // @ts-expect-error refundOrder is a consumer rpc of PaymentService, so it must be handled
    const handlers: PaymentServiceHandlers = { chargeOrder() {} };
    void handlers;
  });

  it("should type a publisher to exactly the events its application declares", () => {
    expectTypeOf<PaymentServicePublisher>().toHaveProperty("publishPaymentProcessed");
    expectTypeOf<keyof PaymentServicePublisher>().toEqualTypeOf<
      "publishPaymentProcessed" | "publishPaymentFailed" | "publishPaymentRefunded"
    >();
  });

  it("should give consumers required message fields as never undefined", () => {
    expectTypeOf<OrderPlacedValid["total"]>().toEqualTypeOf<Money>();
    type SagaEvent = Parameters<OrderSagaServiceHandlers["onPaymentProcessed"]>[0];
    expectTypeOf<SagaEvent["amount"]>().toEqualTypeOf<Money>();
  });
});
