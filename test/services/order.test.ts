import { create, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type Client,
  Code as ConnectCode,
  ConnectError,
  createClient,
  createRouterTransport,
} from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import type { Message, PubSub } from "@google-cloud/pubsub";
import { describe, expect, inject, it } from "vitest";
import {
  CatalogViewServiceSubscriptions,
  createCatalogServicePublisher,
  createInventoryServicePublisher,
  createPaymentServicePublisher,
  OrderSagaServiceSubscriptions,
  orderSagaServiceOutbox,
} from "../../generated/checkout/v1/applications_pe.js";
import { ProductUpdatedSchema } from "../../generated/checkout/v1/catalog_events_pb.js";
import {
  type ProductUpdatedValid,
  validateProductUpdated,
} from "../../generated/checkout/v1/catalog_events_pe.js";
import {
  type Address,
  AddressSchema,
  CancellationReason,
  MoneySchema,
} from "../../generated/checkout/v1/common_pb.js";
import {
  InventoryReleasedSchema,
  InventoryReservationFailedSchema,
  InventoryReservedSchema,
} from "../../generated/checkout/v1/inventory_events_pb.js";
import {
  type InventoryReleasedValid,
  type InventoryReservationFailedValid,
  type InventoryReservedValid,
  validateInventoryReleased,
  validateInventoryReservationFailed,
  validateInventoryReserved,
} from "../../generated/checkout/v1/inventory_events_pe.js";
import {
  OrderService,
  OrderStatus,
  type PlaceOrderRequest,
  PlaceOrderRequestSchema,
  StepStatus,
} from "../../generated/checkout/v1/order_api_pb.js";
import {
  type OrderCancelled,
  OrderCancelledSchema,
  type OrderConfirmed,
  OrderConfirmedSchema,
  type OrderPlaced,
  OrderPlacedSchema,
} from "../../generated/checkout/v1/order_events_pb.js";
import {
  decodeOrderCancelled,
  decodeOrderConfirmed,
  decodeOrderPlaced,
  ORDER_CANCELLED_TOPIC,
  ORDER_CONFIRMED_TOPIC,
  ORDER_PLACED_TOPIC,
} from "../../generated/checkout/v1/order_events_pe.js";
import {
  PaymentDeclineCode,
  PaymentFailedSchema,
  PaymentProcessedSchema,
  PaymentRefundedSchema,
} from "../../generated/checkout/v1/payment_events_pb.js";
import {
  type PaymentFailedValid,
  type PaymentProcessedValid,
  type PaymentRefundedValid,
  validatePaymentFailed,
  validatePaymentProcessed,
  validatePaymentRefunded,
} from "../../generated/checkout/v1/payment_events_pe.js";
import { registry } from "../../generated/protoevents_registry.js";
import { DeadLetterAttribute } from "../../runtime/src/consumer.js";
import type { SubscriptionContract } from "../../runtime/src/contract.js";
import type { Envelope } from "../../runtime/src/envelope.js";
import { Code, type FieldViolation, isProtoeventsError } from "../../runtime/src/errors.js";
import { createLogger } from "../../runtime/src/logger.js";
import { provision } from "../../runtime/src/provision.js";
import type { Store, StoreDialect, StoreTransaction } from "../../runtime/src/store/store.js";
import { type RunningService, startService } from "../../services/lib/run-service.js";
import {
  type IncomingOrderEvent,
  nextSequence,
  type SagaDecision,
  sagaStep,
} from "../../services/order/decide-saga.js";
import {
  foldOrder,
  foldOrderState,
  type OrderLogEntry,
  type OrderLogEvent,
} from "../../services/order/fold-order.js";
import { createOrderServiceImpl } from "../../services/order/order-api.js";
import { type CatalogProduct, priceOrder } from "../../services/order/price-order.js";
import {
  createCatalogViewHandlers,
  createOrderSagaHandlers,
  definition,
  migrations,
  type OrderTables,
} from "../../services/order/service.js";
import { afterThisTest, tempDir } from "../helpers/cleanup.js";
import { testPubSub } from "../helpers/pubsub.js";
import { testStoreLocation } from "../helpers/stores.js";
import { waitFor } from "../helpers/wait.js";

const quiet = createLogger({ test: "order" });
quiet.level = "silent";

// ---- fixtures --------------------------------------------------------------

const ORDER_ID = "ord_test-1";
const PLACED_AT = Date.parse("2026-11-26T10:00:00Z");
const NOW = new Date("2026-11-26T10:05:00Z");

function address(): Address {
  return create(AddressSchema, {
    recipientName: "Ada Lovelace",
    line1: "12 St James's Square",
    city: "London",
    postalCode: "SW1Y 4JH",
    countryCode: "GB",
  });
}

function placed(orderId = ORDER_ID): OrderPlaced {
  return create(OrderPlacedSchema, {
    orderId,
    customerId: "cust-42",
    customerEmail: "ada@example.com",
    items: [
      {
        productId: "sku-keyboard",
        productName: "Keyboard",
        quantity: 1,
        unitPrice: { currencyCode: "EUR", amountMinor: 7990n },
      },
      {
        productId: "sku-mouse",
        productName: "Mouse",
        quantity: 2,
        unitPrice: { currencyCode: "EUR", amountMinor: 2495n },
      },
    ],
    total: { currencyCode: "EUR", amountMinor: 12980n },
    shippingAddress: address(),
    paymentToken: "tok_visa_4242",
    placedAt: timestampFromMs(PLACED_AT),
  });
}

const money = { currencyCode: "EUR", amountMinor: 12980n };
const at = timestampFromMs(PLACED_AT + 1000);

/** The event, checked against its field rules, as the `…Valid` type handlers receive. */
function valid<V extends T, T = V>(event: T, validate: (event: T) => readonly FieldViolation[]): V {
  expect(validate(event)).toEqual([]);
  return event as V;
}

/** The saga's input events for one order, by what they say. */
const outcomes = {
  paymentOk: (orderId = ORDER_ID): PaymentProcessedValid =>
    valid(
      create(PaymentProcessedSchema, {
        orderId,
        paymentId: "pay-1",
        amount: money,
        processedAt: at,
      }),
      validatePaymentProcessed,
    ),
  paymentFailed: (orderId = ORDER_ID): PaymentFailedValid =>
    valid(
      create(PaymentFailedSchema, {
        orderId,
        declineCode: PaymentDeclineCode.INSUFFICIENT_FUNDS,
        reason: "Insufficient funds",
        amount: money,
        failedAt: at,
      }),
      validatePaymentFailed,
    ),
  refunded: (orderId = ORDER_ID): PaymentRefundedValid =>
    valid(
      create(PaymentRefundedSchema, {
        orderId,
        paymentId: "pay-1",
        refundId: "ref-1",
        amount: money,
        refundedAt: at,
      }),
      validatePaymentRefunded,
    ),
  inventoryOk: (orderId = ORDER_ID): InventoryReservedValid =>
    valid(
      create(InventoryReservedSchema, {
        orderId,
        reservationId: "res-1",
        items: [{ productId: "sku-keyboard", quantity: 1 }],
        reservedAt: at,
      }),
      validateInventoryReserved,
    ),
  inventoryFailed: (orderId = ORDER_ID): InventoryReservationFailedValid =>
    valid(
      create(InventoryReservationFailedSchema, {
        orderId,
        unavailableItems: [{ productId: "sku-mouse", requestedQuantity: 2, availableQuantity: 1 }],
        failedAt: at,
      }),
      validateInventoryReservationFailed,
    ),
  released: (orderId = ORDER_ID): InventoryReleasedValid =>
    valid(
      create(InventoryReleasedSchema, {
        orderId,
        reservationId: "res-1",
        items: [{ productId: "sku-keyboard", quantity: 1 }],
        releasedAt: at,
      }),
      validateInventoryReleased,
    ),
};

function entry(sequence: number, event: OrderLogEvent, occurredAt = PLACED_AT): OrderLogEntry {
  return { sequence, eventId: `evt-${sequence}`, occurredAt, event };
}

/**
 * Drive the pure saga the way the handlers do: start with OrderPlaced, apply
 * each incoming event with {@link sagaStep}, append the decision's event.
 */
function runSaga(incoming: readonly IncomingOrderEvent[]): {
  log: OrderLogEntry[];
  decisions: SagaDecision[];
} {
  const log: OrderLogEntry[] = [entry(1, placed())];
  const decisions: SagaDecision[] = [];
  for (const event of incoming) {
    const step = sagaStep(log, event, NOW);
    if (step.kind === "duplicate") {
      continue;
    }
    log.push(step.entry);
    decisions.push(step.decision);
    if (step.decision.kind === "confirm" || step.decision.kind === "cancel") {
      log.push({
        sequence: nextSequence(log),
        eventId: `decision-${log.length}`,
        occurredAt: NOW.getTime(),
        event: step.decision.event,
      });
    }
  }
  return { log, decisions };
}

function incoming(eventId: string, event: OrderLogEvent, occurredAt = PLACED_AT + 1000) {
  return { eventId, occurredAt, event };
}

function typesOf(log: readonly OrderLogEntry[]): string[] {
  return log.map((e) => e.event.$typeName.replace("checkout.v1.", ""));
}

function decisionsIn(log: readonly OrderLogEntry[]): Array<OrderConfirmed | OrderCancelled> {
  return log.flatMap((e) =>
    e.event.$typeName === "checkout.v1.OrderConfirmed" ||
    e.event.$typeName === "checkout.v1.OrderCancelled"
      ? [e.event]
      : [],
  );
}

// ---- unit: the fold ----------------------------------------------------------

describe("foldOrder", () => {
  it("should be an unspecified order when the log is empty", () => {
    const order = foldOrder([]);
    expect(order.status).toBe(OrderStatus.UNSPECIFIED);
    expect(order.orderId).toBe("");
  });

  it("should be placed with both steps pending when only OrderPlaced is in the log", () => {
    const order = foldOrder([entry(1, placed())]);
    expect(order.orderId).toBe(ORDER_ID);
    expect(order.customerId).toBe("cust-42");
    expect(order.status).toBe(OrderStatus.PLACED);
    expect(order.payment).toBe(StepStatus.PENDING);
    expect(order.inventory).toBe(StepStatus.PENDING);
    expect(order.items.map((i) => i.productId)).toEqual(["sku-keyboard", "sku-mouse"]);
    expect(order.total?.amountMinor).toBe(12980n);
    expect(order.placedAt).toEqual(timestampFromMs(PLACED_AT));
    expect(order.updatedAt).toEqual(timestampFromMs(PLACED_AT));
    expect(order.cancellationReason).toBe(CancellationReason.UNSPECIFIED);
  });

  it("should report the latest occurred_at as updated_at when events arrive out of time order", () => {
    const order = foldOrder([
      entry(1, placed(), PLACED_AT),
      entry(2, outcomes.inventoryOk(), PLACED_AT + 5000),
      entry(3, outcomes.paymentOk(), PLACED_AT + 2000),
    ]);
    expect(order.updatedAt).toEqual(timestampFromMs(PLACED_AT + 5000));
  });

  it("should mark the steps succeeded but stay placed when no decision is in the log", () => {
    const state = foldOrderState([
      entry(1, placed()),
      entry(2, outcomes.paymentOk()),
      entry(3, outcomes.inventoryOk()),
    ]);
    expect(state.order.status).toBe(OrderStatus.PLACED);
    expect(state.order.payment).toBe(StepStatus.SUCCEEDED);
    expect(state.order.inventory).toBe(StepStatus.SUCCEEDED);
    expect(state.paymentId).toBe("pay-1");
    expect(state.reservationId).toBe("res-1");
  });

  it("should be confirmed when OrderConfirmed is in the log", () => {
    const { log } = runSaga([
      incoming("p", outcomes.paymentOk()),
      incoming("i", outcomes.inventoryOk()),
    ]);
    const order = foldOrder(log);
    expect(order.status).toBe(OrderStatus.CONFIRMED);
    expect(order.updatedAt).toEqual(timestampFromDate(NOW));
  });

  it("should carry the cancellation reason and detail when OrderCancelled is in the log", () => {
    const { log } = runSaga([incoming("p", outcomes.paymentFailed())]);
    const order = foldOrder(log);
    expect(order.status).toBe(OrderStatus.CANCELLED);
    expect(order.payment).toBe(StepStatus.FAILED);
    expect(order.cancellationReason).toBe(CancellationReason.PAYMENT_DECLINED);
    expect(order.cancellationDetail).toBe(
      "payment declined (insufficient funds): Insufficient funds",
    );
  });

  it("should mark a step compensated when its refund or release arrives, also before its outcome", () => {
    const order = foldOrder([
      entry(1, placed()),
      entry(2, outcomes.inventoryFailed()),
      entry(3, create(OrderCancelledSchema, { orderId: ORDER_ID, reason: 2 })),
      entry(4, outcomes.refunded()),
      entry(5, outcomes.paymentOk()),
    ]);
    expect(order.status).toBe(OrderStatus.CANCELLED);
    expect(order.payment).toBe(StepStatus.COMPENSATED);
    expect(order.inventory).toBe(StepStatus.FAILED);
  });

  it("should keep the first outcome of a step when a contradicting one follows", () => {
    const order = foldOrder([
      entry(1, placed()),
      entry(2, outcomes.paymentOk()),
      entry(3, outcomes.paymentFailed()),
    ]);
    expect(order.payment).toBe(StepStatus.SUCCEEDED);
  });

  it("should stay cancelled when an OrderConfirmed follows an OrderCancelled", () => {
    const order = foldOrder([
      entry(1, placed()),
      entry(2, create(OrderCancelledSchema, { orderId: ORDER_ID, reason: 1, detail: "x" })),
      entry(3, create(OrderConfirmedSchema, { orderId: ORDER_ID })),
    ]);
    expect(order.status).toBe(OrderStatus.CANCELLED);
    expect(order.cancellationDetail).toBe("x");
  });
});

// ---- unit: the saga's decision ---------------------------------------------

describe("sagaStep", () => {
  type Side = "ok" | "failed";
  const cases: Array<{ payment: Side; inventory: Side; paymentFirst: boolean }> = [];
  for (const payment of ["ok", "failed"] as const) {
    for (const inventory of ["ok", "failed"] as const) {
      for (const paymentFirst of [true, false]) {
        cases.push({ payment, inventory, paymentFirst });
      }
    }
  }

  function eventsFor(c: (typeof cases)[number]): IncomingOrderEvent[] {
    const p = incoming(
      "payment-1",
      c.payment === "ok" ? outcomes.paymentOk() : outcomes.paymentFailed(),
    );
    const i = incoming(
      "inventory-1",
      c.inventory === "ok" ? outcomes.inventoryOk() : outcomes.inventoryFailed(),
    );
    return c.paymentFirst ? [p, i] : [i, p];
  }

  function expectOutcome(c: (typeof cases)[number], log: readonly OrderLogEntry[]): void {
    const decisions = decisionsIn(log);
    expect(decisions).toHaveLength(1);
    const [decision] = decisions;
    const order = foldOrder(log);
    // Both outcomes are in the history, whatever the order decided.
    expect(typesOf(log).filter((t) => !t.startsWith("Order"))).toHaveLength(2);
    if (c.payment === "ok" && c.inventory === "ok") {
      expect(decision?.$typeName).toBe("checkout.v1.OrderConfirmed");
      const confirmed = decision as OrderConfirmed;
      expect(confirmed.paymentId).toBe("pay-1");
      expect(confirmed.reservationId).toBe("res-1");
      expect(confirmed.customerEmail).toBe("ada@example.com");
      expect(confirmed.items).toHaveLength(2);
      expect(confirmed.total?.amountMinor).toBe(12980n);
      expect(confirmed.shippingAddress?.city).toBe("London");
      expect(confirmed.confirmedAt).toEqual(timestampFromDate(NOW));
      expect(order.status).toBe(OrderStatus.CONFIRMED);
      return;
    }
    expect(decision?.$typeName).toBe("checkout.v1.OrderCancelled");
    const cancelled = decision as OrderCancelled;
    // The side that failed first names the reason.
    const firstFailed =
      c.payment === "failed" && (c.paymentFirst || c.inventory === "ok") ? "payment" : "inventory";
    expect(cancelled.reason).toBe(
      firstFailed === "payment"
        ? CancellationReason.PAYMENT_DECLINED
        : CancellationReason.OUT_OF_STOCK,
    );
    // Compensation for every side that had not failed when the order was cancelled.
    expect(cancelled.refundRequired).toBe(firstFailed !== "payment");
    expect(cancelled.releaseRequired).toBe(firstFailed !== "inventory");
    expect(cancelled.customerEmail).toBe("ada@example.com");
    expect(cancelled.cancelledAt).toEqual(timestampFromDate(NOW));
    expect(order.status).toBe(OrderStatus.CANCELLED);
    expect(order.payment).toBe(c.payment === "ok" ? StepStatus.SUCCEEDED : StepStatus.FAILED);
    expect(order.inventory).toBe(c.inventory === "ok" ? StepStatus.SUCCEEDED : StepStatus.FAILED);
  }

  it.each(cases)(
    "should decide once when payment is $payment and inventory is $inventory (payment first: $paymentFirst)",
    (c) => {
      const { log } = runSaga(eventsFor(c));
      expectOutcome(c, log);
      // The decision comes right after the first event that makes it possible.
      const decidedBy = c.payment === "ok" && c.inventory === "ok" ? 3 : undefined;
      if (decidedBy !== undefined) {
        expect(typesOf(log)[decidedBy]).toBe("OrderConfirmed");
      }
    },
  );

  it.each(cases)(
    "should ignore duplicates when payment is $payment and inventory is $inventory (payment first: $paymentFirst)",
    (c) => {
      const [first, second] = eventsFor(c) as [IncomingOrderEvent, IncomingOrderEvent];
      const { log } = runSaga([first, first, second, first, second, second]);
      expectOutcome(c, log);
      expect(log).toHaveLength(4);
    },
  );

  it("should wait when only one side has answered successfully", () => {
    const { decisions } = runSaga([incoming("p", outcomes.paymentOk())]);
    expect(decisions.map((d) => d.kind)).toEqual(["waiting"]);
  });

  it("should cancel once and never confirm when InventoryReservationFailed arrives before PaymentProcessed", () => {
    const { log, decisions } = runSaga([
      incoming("i", outcomes.inventoryFailed()),
      incoming("p", outcomes.paymentOk()),
    ]);
    expect(typesOf(log)).toEqual([
      "OrderPlaced",
      "InventoryReservationFailed",
      "OrderCancelled",
      "PaymentProcessed",
    ]);
    expect(decisions.map((d) => d.kind)).toEqual(["cancel", "final"]);
    const cancelled = decisionsIn(log)[0] as OrderCancelled;
    expect(cancelled.reason).toBe(CancellationReason.OUT_OF_STOCK);
    expect(cancelled.refundRequired).toBe(true);
    expect(cancelled.releaseRequired).toBe(false);
    expect(cancelled.detail).toBe("out of stock: sku-mouse (2 ordered, 1 available)");
    expect(foldOrder(log).payment).toBe(StepStatus.SUCCEEDED);
  });

  it("should record a second outcome with a new event id without deciding again", () => {
    const { log } = runSaga([
      incoming("p", outcomes.paymentOk()),
      incoming("i", outcomes.inventoryOk()),
      incoming("p-again", outcomes.paymentOk()),
      incoming("i-failed-late", outcomes.inventoryFailed()),
    ]);
    expect(decisionsIn(log)).toHaveLength(1);
    expect(typesOf(log)).toHaveLength(6);
    expect(foldOrder(log).status).toBe(OrderStatus.CONFIRMED);
  });

  it("should mark steps compensated when refund and release follow a cancellation", () => {
    const { log } = runSaga([
      incoming("p", outcomes.paymentFailed()),
      incoming("i", outcomes.inventoryOk()),
      incoming("rel", outcomes.released()),
    ]);
    const order = foldOrder(log);
    expect(order.status).toBe(OrderStatus.CANCELLED);
    expect(order.payment).toBe(StepStatus.FAILED);
    expect(order.inventory).toBe(StepStatus.COMPENSATED);
    expect(decisionsIn(log)).toHaveLength(1);
  });

  it("should fall back to the gateway's reason or a plain text when the decline code or items are missing", () => {
    const { log } = runSaga([
      incoming(
        "i",
        create(InventoryReservationFailedSchema, {
          orderId: ORDER_ID,
          reason: "warehouse offline",
          failedAt: at,
        }),
      ),
    ]);
    expect((decisionsIn(log)[0] as OrderCancelled).detail).toBe("out of stock: warehouse offline");
    const declined = runSaga([
      incoming(
        "p",
        create(PaymentFailedSchema, {
          orderId: ORDER_ID,
          declineCode: PaymentDeclineCode.UNSPECIFIED,
          amount: money,
          failedAt: at,
        }),
      ),
    ]);
    expect((decisionsIn(declined.log)[0] as OrderCancelled).detail).toBe("payment declined");
  });
});

// ---- unit: pricing -----------------------------------------------------------

function product(
  productId: string,
  amountMinor: bigint,
  options: { active?: boolean; currency?: string } = {},
): [string, CatalogProduct] {
  return [
    productId,
    {
      productId,
      version: 1,
      name: `Product ${productId}`,
      price: create(MoneySchema, { currencyCode: options.currency ?? "EUR", amountMinor }),
      active: options.active ?? true,
    },
  ];
}

const catalog = new Map([
  product("sku-keyboard", 7990n),
  product("sku-mouse", 2495n),
  product("sku-retired", 100n, { active: false }),
  product("sku-dollar", 100n, { currency: "USD" }),
]);

function request(
  overrides: MessageInitShape<typeof PlaceOrderRequestSchema> = {},
): PlaceOrderRequest {
  return create(PlaceOrderRequestSchema, {
    customerId: "cust-42",
    customerEmail: "ada@example.com",
    lines: [
      { productId: "sku-keyboard", quantity: 1 },
      { productId: "sku-mouse", quantity: 2 },
    ],
    shippingAddress: address(),
    paymentToken: "tok_visa_4242",
    ...overrides,
  });
}

describe("priceOrder", () => {
  it("should price every item from the catalog and sum the total when the request is valid", () => {
    const priced = priceOrder(request(), catalog);
    expect(priced.kind).toBe("priced");
    if (priced.kind !== "priced") return;
    expect(
      priced.items.map((i) => [i.productId, i.productName, i.quantity, i.unitPrice?.amountMinor]),
    ).toEqual([
      ["sku-keyboard", "Product sku-keyboard", 1, 7990n],
      ["sku-mouse", "Product sku-mouse", 2, 2495n],
    ]);
    expect(priced.total.currencyCode).toBe("EUR");
    expect(priced.total.amountMinor).toBe(12980n);
  });

  const invalid: Array<[string, PlaceOrderRequest, string]> = [
    [
      "an unknown product",
      request({
        lines: [
          { productId: "sku-keyboard", quantity: 1 },
          { productId: "sku-nope", quantity: 1 },
        ],
      }),
      'lines[1].product_id: unknown product "sku-nope"',
    ],
    [
      "a zero quantity",
      request({ lines: [{ productId: "sku-keyboard", quantity: 0 }] }),
      "lines[0].quantity: must be 1 to 1000, got 0",
    ],
    [
      "a quantity over 1000",
      request({ lines: [{ productId: "sku-keyboard", quantity: 1001 }] }),
      "lines[0].quantity: must be 1 to 1000, got 1001",
    ],
    [
      "a product off sale",
      request({ lines: [{ productId: "sku-retired", quantity: 1 }] }),
      'lines[0].product_id: product "sku-retired" is not on sale',
    ],
    [
      "a line without product",
      request({ lines: [{ productId: "", quantity: 1 }] }),
      "lines[0].product_id: required",
    ],
    [
      "two currencies",
      request({
        lines: [
          { productId: "sku-keyboard", quantity: 1 },
          { productId: "sku-dollar", quantity: 1 },
        ],
      }),
      'lines[1].product_id: product "sku-dollar" is priced in USD, the order\'s other items in EUR; place one order per currency',
    ],
    ["no lines", request({ lines: [] }), "lines: at least one line required"],
    [
      "101 lines",
      request({
        lines: Array.from({ length: 101 }, () => ({ productId: "sku-mouse", quantity: 1 })),
      }),
      "lines: at most 100 lines per order, got 101; split the order",
    ],
    ["a missing address", request({ shippingAddress: undefined }), "shipping_address: required"],
    [
      "an address without city",
      request({ shippingAddress: { ...address(), city: "" } }),
      "shipping_address.city: required",
    ],
    [
      "a lower-case country code",
      request({ shippingAddress: { ...address(), countryCode: "gb" } }),
      "shipping_address.country_code: must be an ISO 3166-1 alpha-2 country code in capitals, such as DE or US",
    ],
    ["a missing customer id", request({ customerId: "" }), "customer_id: required"],
    [
      "a malformed e-mail",
      request({ customerEmail: "ada" }),
      "customer_email: must be an e-mail address such as ada@example.com, at most 254 characters",
    ],
    ["a missing payment token", request({ paymentToken: "" }), "payment_token: required"],
    [
      "a request_id over 64 characters",
      request({ requestId: "r".repeat(65) }),
      "request_id: must be at most 64 characters, got 65",
    ],
  ];

  it.each(invalid)("should refuse the request naming the field when it has %s", (_, r, problem) => {
    const priced = priceOrder(r, catalog);
    expect(priced).toEqual({ kind: "invalid", problems: [problem] });
  });

  it("should refuse an order whose total is beyond what can be charged exactly", () => {
    const pricey: CatalogProduct = {
      productId: "sku-yacht",
      version: 1,
      name: "Yacht",
      price: create(MoneySchema, { currencyCode: "EUR", amountMinor: 2n ** 62n }),
      active: true,
    };
    const priced = priceOrder(
      request({ lines: [{ productId: "sku-yacht", quantity: 4 }] }),
      new Map([["sku-yacht", pricey]]),
    );
    expect(priced).toEqual({
      kind: "invalid",
      problems: [
        `lines: the order totals ${2n ** 64n} minor units, more than the 9007199254740991 an order can total; order fewer or cheaper items`,
      ],
    });
  });

  it("should report every problem at once when several fields are wrong", () => {
    const priced = priceOrder(
      request({
        customerEmail: "",
        lines: [
          { productId: "sku-nope", quantity: 1 },
          { productId: "sku-mouse", quantity: 0 },
          { productId: "sku-nope-2", quantity: -1 },
        ],
        shippingAddress: undefined,
      }),
      catalog,
    );
    expect(priced.kind === "invalid" ? priced.problems : []).toEqual([
      "customer_email: required",
      'lines[0].product_id: unknown product "sku-nope"',
      "lines[1].quantity: must be 1 to 1000, got 0",
      'lines[2].product_id: unknown product "sku-nope-2"',
      "lines[2].quantity: must be 1 to 1000, got -1",
      "shipping_address: required",
    ]);
  });
});

// ---- the store: handlers and API on SQLite and PostgreSQL --------------------

function envelopeFor(type: string, id: string, time = new Date(PLACED_AT + 1000)): Envelope {
  return {
    id,
    type,
    source: "test",
    time: time.toISOString(),
    subject: undefined,
    dataschema: undefined,
    contentType: "application/protobuf",
    specversion: "1.0",
    traceparent: undefined,
    orderingKey: undefined,
  };
}

function contextFor<Desc extends DescMessage>(
  tx: StoreTransaction<OrderTables>,
  subscription: SubscriptionContract<Desc>,
  eventId: string,
) {
  return {
    tx,
    publisher: orderSagaServiceOutbox(tx),
    envelope: envelopeFor(subscription.event.type, eventId),
    subscription,
    deliveryAttempt: 1,
    messageId: eventId,
    publishTime: new Date(),
    log: quiet,
  };
}

function productUpdated(
  productId: string,
  version: bigint,
  amountMinor: bigint,
  active = true,
): ProductUpdatedValid {
  return valid(
    create(ProductUpdatedSchema, {
      productId,
      version,
      name: `Product ${productId} v${version}`,
      price: { currencyCode: "EUR", amountMinor },
      active,
      updatedAt: timestampFromMs(PLACED_AT),
    }),
    validateProductUpdated,
  );
}

describe.each(["sqlite", "postgres"] as const)(
  "order service store (%s)",
  (dialect: StoreDialect) => {
    async function setup() {
      const where = await testStoreLocation(dialect);
      afterThisTest(() => where.remove());
      const store: Store<OrderTables> = await where.open<OrderTables>({ ...migrations });
      afterThisTest(() => store.close());
      const saga = createOrderSagaHandlers({ dialect, now: () => NOW });
      const view = createCatalogViewHandlers();
      const client = createClient(
        OrderService,
        createRouterTransport(({ service }) => {
          service(OrderService, createOrderServiceImpl({ store, log: quiet }));
        }),
      );
      let n = 0;
      const applyProduct = (event: ReturnType<typeof productUpdated>) =>
        store.transaction(async (tx) =>
          view.applyProductUpdated(event, {
            ...contextFor(tx, CatalogViewServiceSubscriptions.applyProductUpdated, `pu-${++n}`),
          }),
        );
      const outbox = () =>
        store.db
          .selectFrom("protoevents_outbox")
          .select(["event_type", "event_id", "ordering_key"])
          .orderBy("id")
          .execute();
      return { store, saga, client, applyProduct, outbox };
    }

    it("should place, confirm and fold an order when payment and stock succeed", async () => {
      const { store, saga, client, applyProduct, outbox } = await setup();
      await applyProduct(productUpdated("sku-keyboard", 1n, 7990n));
      await applyProduct(productUpdated("sku-mouse", 1n, 2495n));
      const { order } = await client.placeOrder(request());
      const orderId = order?.orderId ?? "";
      expect(orderId).toMatch(/^ord_[0-9a-f-]{36}$/);
      expect(order?.total?.amountMinor).toBe(12980n);

      await store.transaction(async (tx) =>
        saga.onPaymentProcessed(
          outcomes.paymentOk(orderId),
          contextFor(tx, OrderSagaServiceSubscriptions.onPaymentProcessed, "pay-evt"),
        ),
      );
      await store.transaction(async (tx) =>
        saga.onInventoryReserved(
          outcomes.inventoryOk(orderId),
          contextFor(tx, OrderSagaServiceSubscriptions.onInventoryReserved, "inv-evt"),
        ),
      );
      const got = await client.getOrder({ orderId });
      expect(got.order?.status).toBe(OrderStatus.CONFIRMED);
      const rows = await outbox();
      expect(rows.map((r) => r.event_type)).toEqual([
        "checkout.v1.OrderPlaced",
        "checkout.v1.OrderConfirmed",
      ]);
      expect(rows.every((r) => r.ordering_key === orderId)).toBe(true);
      const history = await client.getOrderHistory({ orderId });
      // Log entries carry the outbox's event ids.
      expect(history.entries.map((e) => e.eventId)).toEqual([
        rows[0]?.event_id,
        "pay-evt",
        "inv-evt",
        rows[1]?.event_id,
      ]);
    });

    it("should confirm exactly once when both outcomes are handled concurrently", async () => {
      const { store, saga, client, applyProduct, outbox } = await setup();
      await applyProduct(productUpdated("sku-keyboard", 1n, 7990n));
      const { order } = await client.placeOrder(
        request({ lines: [{ productId: "sku-keyboard", quantity: 1 }] }),
      );
      const orderId = order?.orderId ?? "";
      await Promise.all([
        store.transaction(async (tx) =>
          saga.onPaymentProcessed(
            outcomes.paymentOk(orderId),
            contextFor(tx, OrderSagaServiceSubscriptions.onPaymentProcessed, "pay-evt"),
          ),
        ),
        store.transaction(async (tx) =>
          saga.onInventoryReserved(
            outcomes.inventoryOk(orderId),
            contextFor(tx, OrderSagaServiceSubscriptions.onInventoryReserved, "inv-evt"),
          ),
        ),
      ]);
      expect((await outbox()).map((r) => r.event_type)).toEqual([
        "checkout.v1.OrderPlaced",
        "checkout.v1.OrderConfirmed",
      ]);
      expect((await client.getOrder({ orderId })).order?.status).toBe(OrderStatus.CONFIRMED);
    });

    it("should skip an event already in the history when it is handled again", async () => {
      const { store, saga, client, applyProduct, outbox } = await setup();
      await applyProduct(productUpdated("sku-keyboard", 1n, 7990n));
      const { order } = await client.placeOrder(
        request({ lines: [{ productId: "sku-keyboard", quantity: 1 }] }),
      );
      const orderId = order?.orderId ?? "";
      for (let i = 0; i < 2; i++) {
        await store.transaction(async (tx) =>
          saga.onPaymentFailed(
            outcomes.paymentFailed(orderId),
            contextFor(tx, OrderSagaServiceSubscriptions.onPaymentFailed, "fail-evt"),
          ),
        );
      }
      const history = await client.getOrderHistory({ orderId });
      expect(history.entries.map((e) => e.eventType)).toEqual([
        "checkout.v1.OrderPlaced",
        "checkout.v1.PaymentFailed",
        "checkout.v1.OrderCancelled",
      ]);
      expect((await outbox()).map((r) => r.event_type)).toEqual([
        "checkout.v1.OrderPlaced",
        "checkout.v1.OrderCancelled",
      ]);
    });

    it("should throw a permanent error naming the order when an event is about an unknown order", async () => {
      const { store, saga } = await setup();
      const failure = await store
        .transaction(async (tx) =>
          saga.onInventoryReserved(
            outcomes.inventoryOk("ord_unknown"),
            contextFor(tx, OrderSagaServiceSubscriptions.onInventoryReserved, "inv-evt"),
          ),
        )
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      expect(isProtoeventsError(failure) && failure.code).toBe(Code.Permanent);
      expect(String((failure as Error).message)).toContain('"ord_unknown"');
    });

    it("should apply product updates only when their version is newer", async () => {
      const { store, applyProduct } = await setup();
      const price = async () =>
        (
          await store.db
            .selectFrom("catalog_view")
            .select(["version", "price_minor", "active"])
            .where("product_id", "=", "sku-x")
            .executeTakeFirstOrThrow()
        ).price_minor;
      await applyProduct(productUpdated("sku-x", 2n, 200n));
      expect(await price()).toBe(200);
      await applyProduct(productUpdated("sku-x", 1n, 100n));
      expect(await price()).toBe(200);
      await applyProduct(productUpdated("sku-x", 2n, 999n));
      expect(await price()).toBe(200);
      await applyProduct(productUpdated("sku-x", 3n, 300n, false));
      expect(await price()).toBe(300);
    });

    it("should return the first order and publish once when a request_id is repeated", async () => {
      const { client, applyProduct, outbox } = await setup();
      await applyProduct(productUpdated("sku-keyboard", 1n, 7990n));
      const r = request({
        requestId: "req-1",
        lines: [{ productId: "sku-keyboard", quantity: 1 }],
      });
      const first = await client.placeOrder(r);
      const second = await client.placeOrder(r);
      expect(second.order?.orderId).toBe(first.order?.orderId);
      expect((await outbox()).map((row) => row.event_type)).toEqual(["checkout.v1.OrderPlaced"]);
      const other = await client.placeOrder({ ...r, customerId: "cust-other" }).then(
        () => undefined,
        (error: unknown) => ConnectError.from(error),
      );
      expect(other?.code).toBe(ConnectCode.AlreadyExists);
    });
  },
);

// ---- on the emulator -----------------------------------------------------------

/** Collect what arrives on a topic through a subscription of the test's own. */
async function observe<T>(
  pubsub: PubSub,
  topic: string,
  name: string,
  decode: (message: Message) => T,
): Promise<T[]> {
  const [subscription] = await pubsub.topic(topic).createSubscription(name);
  const seen: T[] = [];
  subscription.on("message", (message: Message) => {
    seen.push(decode(message));
    message.ack();
  });
  subscription.on("error", () => {});
  afterThisTest(() => subscription.close());
  return seen;
}

describe("order service on the emulator", () => {
  async function startOrderService() {
    const pubsub = testPubSub("order");
    afterThisTest(() => pubsub.close());
    await provision(pubsub, registry, { dryRun: false });
    const dir = await tempDir("order-service");
    const placedSeen = await observe(pubsub, ORDER_PLACED_TOPIC, "test.order-placed", (m) =>
      decodeOrderPlaced(m),
    );
    const confirmedSeen = await observe(
      pubsub,
      ORDER_CONFIRMED_TOPIC,
      "test.order-confirmed",
      (m) => decodeOrderConfirmed(m),
    );
    const cancelledSeen = await observe(
      pubsub,
      ORDER_CANCELLED_TOPIC,
      "test.order-cancelled",
      (m) => decodeOrderCancelled(m),
    );
    const service: RunningService<OrderTables> = await startService(definition, {
      PUBSUB_EMULATOR_HOST: inject("emulatorHost"),
      PUBSUB_PROJECT_ID: pubsub.projectId,
      PROTOEVENTS_DATA_DIR: dir,
      PROTOEVENTS_LOG_LEVEL: "silent",
      ORDER_API_PORT: "0",
    });
    afterThisTest(() => service.stop());
    const port = service.ready.port;
    expect(typeof port).toBe("number");
    const client: Client<typeof OrderService> = createClient(
      OrderService,
      createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "1.1" }),
    );
    const catalogPublisher = createCatalogServicePublisher(pubsub);
    const db = service.context.store.db;
    /** Publish a product update and wait until the view holds this version (or, if stale, until it was handled). */
    const publishProduct = async (event: ReturnType<typeof productUpdated>) => {
      const { id } = await catalogPublisher.publishProductUpdated(event);
      await waitFor(`product update ${id} to be handled`, async () => {
        const claim = await db
          .selectFrom("protoevents_inbox")
          .select("event_id")
          .where("subscription", "=", CatalogViewServiceSubscriptions.applyProductUpdated.name)
          .where("event_id", "=", id)
          .executeTakeFirst();
        return claim !== undefined;
      });
    };
    return {
      pubsub,
      service,
      client,
      db,
      publishProduct,
      payment: createPaymentServicePublisher(pubsub),
      inventory: createInventoryServicePublisher(pubsub),
      placedSeen,
      confirmedSeen,
      cancelledSeen,
    };
  }

  it("should confirm once and show the redacted history when payment and stock succeed", async () => {
    const s = await startOrderService();
    await s.publishProduct(productUpdated("sku-keyboard", 1n, 7990n));
    await s.publishProduct(productUpdated("sku-mouse", 1n, 2495n));

    const { order } = await s.client.placeOrder(request());
    const orderId = order?.orderId ?? "";
    expect(order?.status).toBe(OrderStatus.PLACED);
    expect(order?.items.map((i) => [i.productName, i.unitPrice?.amountMinor])).toEqual([
      ["Product sku-keyboard v1", 7990n],
      ["Product sku-mouse v1", 2495n],
    ]);
    expect(order?.total?.amountMinor).toBe(12980n);

    await waitFor("OrderPlaced", () => s.placedSeen.length > 0);
    const published = s.placedSeen[0]?.event;
    expect(published?.orderId).toBe(orderId);
    expect(published?.customerEmail).toBe("ada@example.com");
    expect(
      published?.items.map((i) => [i.productId, i.quantity, i.unitPrice?.amountMinor]),
    ).toEqual([
      ["sku-keyboard", 1, 7990n],
      ["sku-mouse", 2, 2495n],
    ]);
    expect(published?.total?.amountMinor).toBe(12980n);

    const paymentEvent = outcomes.paymentOk(orderId);
    const { id: paymentEventId } = await s.payment.publishPaymentProcessed(paymentEvent);
    // Two topics, so no order between them: wait, to make the history's order known.
    await waitFor("PaymentProcessed to be recorded", async () => {
      const got = await s.client.getOrder({ orderId });
      return got.order?.payment === StepStatus.SUCCEEDED;
    });
    await s.inventory.publishInventoryReserved(outcomes.inventoryOk(orderId));
    await waitFor("OrderConfirmed", () => s.confirmedSeen.length > 0);
    const confirmed = s.confirmedSeen[0]?.event;
    expect(confirmed?.orderId).toBe(orderId);
    expect(confirmed?.paymentId).toBe("pay-1");
    expect(confirmed?.reservationId).toBe("res-1");
    expect(confirmed?.customerEmail).toBe("ada@example.com");
    expect(confirmed?.items).toHaveLength(2);
    expect(confirmed?.total?.amountMinor).toBe(12980n);
    expect(confirmed?.shippingAddress?.city).toBe("London");

    const got = await s.client.getOrder({ orderId });
    expect(got.order?.status).toBe(OrderStatus.CONFIRMED);
    expect(got.order?.payment).toBe(StepStatus.SUCCEEDED);
    expect(got.order?.inventory).toBe(StepStatus.SUCCEEDED);

    const history = await s.client.getOrderHistory({ orderId });
    expect(history.entries.map((e) => e.eventType)).toEqual([
      "checkout.v1.OrderPlaced",
      "checkout.v1.PaymentProcessed",
      "checkout.v1.InventoryReserved",
      "checkout.v1.OrderConfirmed",
    ]);
    expect(history.entries.map((e) => e.sequence)).toEqual([1n, 2n, 3n, 4n]);
    expect(history.entries[0]?.eventId).toBe(s.placedSeen[0]?.envelope.id);
    expect(history.entries[3]?.eventId).toBe(s.confirmedSeen[0]?.envelope.id);
    expect(history.entries.every((e) => e.occurredAt !== undefined)).toBe(true);
    const placedJson = JSON.parse(history.entries[0]?.payloadJson ?? "{}");
    expect(placedJson.orderId).toBe(orderId);
    expect(placedJson.customerEmail).toBe("[redacted]");
    expect(placedJson.paymentToken).toBe("[redacted]");
    expect(placedJson.shippingAddress.recipientName).toBe("[redacted]");
    expect(placedJson.shippingAddress.city).toBe("London");
    expect(JSON.parse(history.entries[3]?.payloadJson ?? "{}").customerEmail).toBe("[redacted]");
    expect(history.entries.some((e) => e.payloadJson.includes("ada@example.com"))).toBe(false);

    // A redelivered PaymentProcessed (same ce-id) changes nothing; a second one
    // with its own id, on the same ordering key so it is handled after the
    // duplicate, is recorded but confirms nothing again.
    await s.payment.publishPaymentProcessed(paymentEvent, { id: paymentEventId });
    await s.payment.publishPaymentProcessed(outcomes.paymentOk(orderId));
    await waitFor("the second PaymentProcessed to be recorded", async () => {
      const { entries } = await s.client.getOrderHistory({ orderId });
      return entries.length === 5;
    });
    const after = await s.client.getOrderHistory({ orderId });
    expect(after.entries.map((e) => e.eventType)).toEqual([
      "checkout.v1.OrderPlaced",
      "checkout.v1.PaymentProcessed",
      "checkout.v1.InventoryReserved",
      "checkout.v1.OrderConfirmed",
      "checkout.v1.PaymentProcessed",
    ]);
    expect((await s.client.getOrder({ orderId })).order?.status).toBe(OrderStatus.CONFIRMED);
    // One of each went to the outbox, and the topics saw one of each.
    const outbox = await s.db.selectFrom("protoevents_outbox").select("event_type").execute();
    expect(outbox.map((row) => row.event_type)).toEqual([
      "checkout.v1.OrderPlaced",
      "checkout.v1.OrderConfirmed",
    ]);
    await s.service.relay.drain();
    expect(s.placedSeen).toHaveLength(1);
    expect(s.confirmedSeen).toHaveLength(1);
    expect(s.cancelledSeen).toHaveLength(0);
  });

  it("should cancel with release but no refund when the payment is declined", async () => {
    const s = await startOrderService();
    await s.publishProduct(productUpdated("sku-keyboard", 1n, 7990n));
    const { order } = await s.client.placeOrder(
      request({ lines: [{ productId: "sku-keyboard", quantity: 3 }] }),
    );
    const orderId = order?.orderId ?? "";
    expect(order?.total?.amountMinor).toBe(23970n);

    await s.payment.publishPaymentFailed(outcomes.paymentFailed(orderId));
    await waitFor("OrderCancelled", () => s.cancelledSeen.length > 0);
    const cancelled = s.cancelledSeen[0]?.event;
    expect(cancelled?.orderId).toBe(orderId);
    expect(cancelled?.reason).toBe(CancellationReason.PAYMENT_DECLINED);
    expect(cancelled?.refundRequired).toBe(false);
    expect(cancelled?.releaseRequired).toBe(true);
    expect(cancelled?.detail).toBe("payment declined (insufficient funds): Insufficient funds");

    // The reservation that was in flight still lands, then is released.
    await s.inventory.publishInventoryReserved(outcomes.inventoryOk(orderId));
    await s.inventory.publishInventoryReleased(outcomes.released(orderId));
    await waitFor("the release to be recorded", async () => {
      const got = await s.client.getOrder({ orderId });
      return got.order?.inventory === StepStatus.COMPENSATED;
    });
    const got = await s.client.getOrder({ orderId });
    expect(got.order?.status).toBe(OrderStatus.CANCELLED);
    expect(got.order?.payment).toBe(StepStatus.FAILED);
    expect(got.order?.cancellationReason).toBe(CancellationReason.PAYMENT_DECLINED);
    const history = await s.client.getOrderHistory({ orderId });
    expect(history.entries.map((e) => e.eventType)).not.toContain("checkout.v1.OrderConfirmed");
    expect(
      history.entries.filter((e) => e.eventType === "checkout.v1.OrderCancelled"),
    ).toHaveLength(1);
    await s.service.relay.drain();
    expect(s.confirmedSeen).toHaveLength(0);
    expect(s.cancelledSeen).toHaveLength(1);
  });

  it("should cancel once and never confirm when the reservation fails before the payment succeeds", async () => {
    const s = await startOrderService();
    await s.publishProduct(productUpdated("sku-keyboard", 1n, 7990n));
    const { order } = await s.client.placeOrder(
      request({ lines: [{ productId: "sku-keyboard", quantity: 1 }] }),
    );
    const orderId = order?.orderId ?? "";
    await s.inventory.publishInventoryReservationFailed(outcomes.inventoryFailed(orderId));
    await waitFor("OrderCancelled", () => s.cancelledSeen.length > 0);
    await s.payment.publishPaymentProcessed(outcomes.paymentOk(orderId));
    await waitFor("PaymentProcessed to be recorded", async () => {
      const got = await s.client.getOrder({ orderId });
      return got.order?.payment === StepStatus.SUCCEEDED;
    });
    const cancelled = s.cancelledSeen[0]?.event;
    expect(cancelled?.reason).toBe(CancellationReason.OUT_OF_STOCK);
    expect(cancelled?.refundRequired).toBe(true);
    expect(cancelled?.releaseRequired).toBe(false);
    const history = await s.client.getOrderHistory({ orderId });
    expect(history.entries.map((e) => e.eventType)).toEqual([
      "checkout.v1.OrderPlaced",
      "checkout.v1.InventoryReservationFailed",
      "checkout.v1.OrderCancelled",
      "checkout.v1.PaymentProcessed",
    ]);
    expect((await s.client.getOrder({ orderId })).order?.status).toBe(OrderStatus.CANCELLED);
    await s.service.relay.drain();
    expect(s.confirmedSeen).toHaveLength(0);
    expect(s.cancelledSeen).toHaveLength(1);
  });

  it("should refuse bad requests with INVALID_ARGUMENT naming the field and publish nothing", async () => {
    const s = await startOrderService();
    await s.publishProduct(productUpdated("sku-keyboard", 1n, 7990n));
    const refusal = (r: PlaceOrderRequest) =>
      s.client.placeOrder(r).then(
        () => undefined,
        (error: unknown) => ConnectError.from(error),
      );
    const unknown = await refusal(
      request({
        lines: [
          { productId: "sku-keyboard", quantity: 1 },
          { productId: "sku-nope", quantity: 1 },
        ],
      }),
    );
    expect(unknown?.code).toBe(ConnectCode.InvalidArgument);
    expect(unknown?.rawMessage).toBe('lines[1].product_id: unknown product "sku-nope"');
    const zero = await refusal(request({ lines: [{ productId: "sku-keyboard", quantity: 0 }] }));
    expect(zero?.code).toBe(ConnectCode.InvalidArgument);
    expect(zero?.rawMessage).toBe("lines[0].quantity: must be 1 to 1000, got 0");
    const noAddress = await refusal(
      request({ lines: [{ productId: "sku-keyboard", quantity: 1 }], shippingAddress: undefined }),
    );
    expect(noAddress?.code).toBe(ConnectCode.InvalidArgument);
    expect(noAddress?.rawMessage).toBe("shipping_address: required");
    const noCity = await refusal(
      request({
        lines: [{ productId: "sku-keyboard", quantity: 1 }],
        shippingAddress: { ...address(), city: "" },
      }),
    );
    expect(noCity?.rawMessage).toBe("shipping_address.city: required");

    const notFound = await s.client.getOrder({ orderId: "ord_nope" }).then(
      () => undefined,
      (error: unknown) => ConnectError.from(error),
    );
    expect(notFound?.code).toBe(ConnectCode.NotFound);
    const noHistory = await s.client.getOrderHistory({ orderId: "ord_nope" }).then(
      () => undefined,
      (error: unknown) => ConnectError.from(error),
    );
    expect(noHistory?.code).toBe(ConnectCode.NotFound);

    // Nothing was stored or put in the outbox for the refused requests ...
    expect(await s.db.selectFrom("orders").selectAll().execute()).toHaveLength(0);
    expect(await s.db.selectFrom("protoevents_outbox").selectAll().execute()).toHaveLength(0);
    // ... and the topic sees only the order placed afterwards.
    const { order } = await s.client.placeOrder(
      request({ lines: [{ productId: "sku-keyboard", quantity: 1 }] }),
    );
    await waitFor("OrderPlaced", () => s.placedSeen.length > 0);
    await s.service.relay.drain();
    expect(s.placedSeen.map((p) => p.event.orderId)).toEqual([order?.orderId]);
  });

  it("should price new orders from the newest product version when an older one arrives late", async () => {
    const s = await startOrderService();
    await s.publishProduct(productUpdated("sku-keyboard", 2n, 1000n));
    await s.publishProduct(productUpdated("sku-keyboard", 1n, 500n));
    const lines = [{ productId: "sku-keyboard", quantity: 1 }];
    const first = await s.client.placeOrder(request({ lines }));
    expect(first.order?.items[0]?.unitPrice?.amountMinor).toBe(1000n);
    expect(first.order?.items[0]?.productName).toBe("Product sku-keyboard v2");

    await s.publishProduct(productUpdated("sku-keyboard", 3n, 1500n));
    const second = await s.client.placeOrder(request({ lines }));
    expect(second.order?.items[0]?.unitPrice?.amountMinor).toBe(1500n);
    expect(second.order?.total?.amountMinor).toBe(1500n);

    await s.publishProduct(productUpdated("sku-keyboard", 4n, 1500n, false));
    const offSale = await s.client.placeOrder(request({ lines })).then(
      () => undefined,
      (error: unknown) => ConnectError.from(error),
    );
    expect(offSale?.rawMessage).toBe('lines[0].product_id: product "sku-keyboard" is not on sale');
  });

  it("should dead-letter an outcome at once when it is about an order the service never placed", async () => {
    const s = await startOrderService();
    const deadLetters: Message[] = [];
    const dlq = s.pubsub.subscription(
      OrderSagaServiceSubscriptions.onPaymentProcessed.deadLetter?.subscription ?? "",
    );
    dlq.on("message", (message: Message) => {
      deadLetters.push(message);
      message.ack();
    });
    dlq.on("error", () => {});
    afterThisTest(() => dlq.close());
    await s.payment.publishPaymentProcessed(outcomes.paymentOk("ord_stranger"));
    await waitFor("the dead letter", () => deadLetters.length > 0);
    const attributes = deadLetters[0]?.attributes ?? {};
    expect(attributes[DeadLetterAttribute.reason]).toBe("permanent");
    expect(attributes[DeadLetterAttribute.detail]).toContain('"ord_stranger"');
  });
});
