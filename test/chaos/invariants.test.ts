import { describe, expect, it } from "vitest";
import { mailFileName } from "../../services/notification/emails.js";
import {
  awaited,
  checkInvariants,
  type DeadLetterRecord,
  type Evidence,
  type Expectations,
  type PlacedOrder,
} from "./invariants.js";
import type { SeenEvent } from "./monitor.js";
import type { ServiceName } from "./schedule.js";
import type { OrderLogRow, PaymentRow, ReservationRow } from "./stores.js";

const VALID: PlacedOrder = {
  n: 1,
  orderId: "ord_1",
  kind: "valid",
  paymentToken: "tok_visa_4242",
  totalMinor: 7990n,
  currency: "EUR",
  lines: [{ productId: "sku-keyboard", quantity: 1 }],
};
const DECLINED: PlacedOrder = {
  ...VALID,
  n: 7,
  orderId: "ord_7",
  kind: "declined-card",
  paymentToken: "tok_declined",
};
const LIMITED_WON: PlacedOrder = {
  ...VALID,
  n: 11,
  orderId: "ord_11",
  kind: "limited",
  totalMinor: 29800n,
  lines: [{ productId: "sku-limited", quantity: 2 }],
};
const LIMITED_LOST: PlacedOrder = { ...LIMITED_WON, n: 22, orderId: "ord_22" };

const expectations: Expectations = {
  subscriptions: new Map([
    ["checkout.order-placed", ["inventory.reserve-stock", "payment.charge-order"]],
  ]),
  orders: [VALID, DECLINED, LIMITED_WON, LIMITED_LOST],
  initialStock: new Map([
    ["sku-keyboard", 10],
    ["sku-limited", 3],
  ]),
  limitMinor: 500_000n,
  poison: [
    {
      id: "poison-1-garbage-bytes-1",
      kind: "garbage-bytes",
      topic: "checkout.order-placed",
      subscriptions: ["inventory.reserve-stock", "payment.charge-order"],
      reason: "decode_failed",
    },
  ],
};

let ids = 0;
const log = (...types: string[]): OrderLogRow[] =>
  types.map((type) => ({
    type: type.replace(/:.*/, ""),
    eventId: `e${++ids}`,
    payload: type.includes(":")
      ? JSON.stringify({ reason: `CANCELLATION_REASON_${type.split(":")[1]}` })
      : "{}",
  }));

const charged = (id: string, amount: number, status = "charged"): PaymentRow => ({
  status,
  amountMinor: amount,
  currencyCode: "EUR",
  paymentId: `pay_${id}`,
  declineCode: null,
  refundId: status === "refunded" ? `ref_${id}` : null,
});
const reserved = (order: PlacedOrder, status = "reserved"): ReservationRow => ({
  status,
  items: order.lines,
});

/** Evidence whose parts a test can change. */
interface World extends Evidence {
  readonly snapshot: {
    readonly orders: Map<string, OrderLogRow[]>;
    readonly payments: Map<string, PaymentRow>;
    readonly reservations: Map<string, ReservationRow>;
    readonly stock: Map<string, number>;
    readonly shipments: Map<string, number>;
    readonly notifications: Map<string, Map<string, { sent: boolean }>>;
    readonly pendingOutbox: Map<ServiceName, number>;
    readonly claims: Map<string, Set<string>>;
  };
  readonly observed: {
    readonly byOrder: Map<string, Map<string, Set<string>>>;
    readonly byTopic: Map<string, Map<string, SeenEvent>>;
  };
}

/** A world in which every order ended as the rules say, with everything observed once. */
function perfectWorld(): World {
  const orders = new Map<string, OrderLogRow[]>([
    ["ord_1", log("OrderPlaced", "PaymentProcessed", "InventoryReserved", "OrderConfirmed")],
    [
      "ord_7",
      log(
        "OrderPlaced",
        "InventoryReserved",
        "PaymentFailed",
        "OrderCancelled:PAYMENT_DECLINED",
        "InventoryReleased",
      ),
    ],
    ["ord_11", log("OrderPlaced", "PaymentProcessed", "InventoryReserved", "OrderConfirmed")],
    [
      "ord_22",
      log(
        "OrderPlaced",
        "PaymentProcessed",
        "InventoryReservationFailed",
        "OrderCancelled:OUT_OF_STOCK",
        "PaymentRefunded",
      ),
    ],
  ]);
  const payments = new Map<string, PaymentRow>([
    ["ord_1", charged("ord_1", 7990)],
    [
      "ord_7",
      {
        status: "declined",
        amountMinor: 7990,
        currencyCode: "EUR",
        paymentId: null,
        declineCode: "CARD_DECLINED",
        refundId: null,
      },
    ],
    ["ord_11", charged("ord_11", 29800)],
    ["ord_22", charged("ord_22", 29800, "refunded")],
  ]);
  const reservations = new Map<string, ReservationRow>([
    ["ord_1", reserved(VALID)],
    ["ord_7", reserved(DECLINED, "released")],
    ["ord_11", reserved(LIMITED_WON)],
    ["ord_22", reserved(LIMITED_LOST, "failed")],
  ]);
  const byOrder = new Map<string, Map<string, Set<string>>>();
  const see = (orderId: string, ...types: string[]) => {
    const map = new Map<string, Set<string>>();
    for (const type of types) {
      map.set(type, new Set([`${orderId}-${type}`]));
    }
    byOrder.set(orderId, map);
  };
  see(
    "ord_1",
    "PaymentProcessed",
    "InventoryReserved",
    "OrderReadyForShipping",
    "NotificationSent/confirmation",
    "NotificationSent/shipping",
  );
  see(
    "ord_7",
    "PaymentFailed",
    "InventoryReserved",
    "InventoryReleased",
    "NotificationSent/cancellation",
  );
  see(
    "ord_11",
    "PaymentProcessed",
    "InventoryReserved",
    "OrderReadyForShipping",
    "NotificationSent/confirmation",
    "NotificationSent/shipping",
  );
  see("ord_22", "PaymentProcessed", "PaymentRefunded", "NotificationSent/cancellation");
  const notices: Array<[string, string[]]> = [
    ["ord_1", ["confirmation", "shipping"]],
    ["ord_7", ["cancellation"]],
    ["ord_11", ["confirmation", "shipping"]],
    ["ord_22", ["cancellation"]],
  ];
  const deadLetters: DeadLetterRecord[] = ["inventory.reserve-stock", "payment.charge-order"].map(
    (subscription, i) => ({
      subscription,
      messageId: String(i),
      eventId: "poison-1-garbage-bytes-1",
      reason: "decode_failed",
    }),
  );
  return {
    expectations,
    snapshot: {
      orders,
      payments,
      reservations,
      stock: new Map([
        ["sku-keyboard", 9],
        ["sku-limited", 1],
      ]),
      shipments: new Map([
        ["ord_1", 1],
        ["ord_11", 1],
      ]),
      notifications: new Map(
        notices.map(([id, kinds]) => [
          id,
          new Map(kinds.map((k) => [k, { sent: true }] as [string, { sent: boolean }])),
        ]),
      ),
      pendingOutbox: new Map<ServiceName, number>([["order", 0]]),
      claims: new Map([
        ["payment.charge-order", new Set(["placed-1"])],
        ["inventory.reserve-stock", new Set(["placed-1"])],
      ]),
    },
    observed: {
      byOrder,
      byTopic: new Map([["checkout.order-placed", new Map([["placed-1", seenEvent]])]]),
    },
    deadLetters,
    mailFiles: new Set(
      notices.flatMap(([id, kinds]) =>
        kinds.map((k) => mailFileName(id, k as "confirmation" | "cancellation" | "shipping")),
      ),
    ),
    unexpectedExits: [],
    monitorErrors: [],
    resentDeliveries: 0,
  };
}

const seenEvent: SeenEvent = {
  data: Buffer.alloc(0),
  attributes: {},
  orderingKey: undefined,
  firstSeenAt: 0,
};

function failed(evidence: Evidence): Record<string, string[]> {
  return Object.fromEntries(
    checkInvariants(evidence)
      .filter((r) => !r.passed)
      .map((r) => [r.name, [...r.violations]]),
  );
}

describe("checkInvariants", () => {
  it("should pass a run in which everything ended as the rules say", () => {
    const world = perfectWorld();
    const results = checkInvariants(world);
    expect(results.filter((r) => !r.passed)).toEqual([]);
    expect(results[0]?.counts).toMatchObject({
      confirmed: 2,
      cancelled: 2,
      "expected confirmed": 2,
      "expected cancelled": 2,
    });
    expect(awaited(world.expectations, world.snapshot, world.observed)).toEqual([]);
  });

  it("should fail a second charge, seen as a second PaymentProcessed", () => {
    const world = perfectWorld();
    world.observed.byOrder.get("ord_1")?.get("PaymentProcessed")?.add("another-ce-id");
    expect(failed(world)).toEqual({
      "exactly one charge per paid order and one refund per refunded order": [
        "order 1 (ord_1): 2 PaymentProcessed events (1 in its log), expected 1",
      ],
    });
  });

  it("should fail stock that was not given back", () => {
    const world = perfectWorld();
    world.snapshot.reservations.set("ord_7", reserved(DECLINED));
    expect(Object.keys(failed(world))).toEqual([
      "stock never negative; stock + held = initial (cancelled orders hold nothing)",
    ]);
    expect(awaited(world.expectations, world.snapshot, world.observed)).toEqual(["1 releases"]);
  });

  it("should fail two limited orders confirmed from a stock that covers one", () => {
    const world = perfectWorld();
    world.snapshot.orders.set(
      "ord_22",
      log("OrderPlaced", "PaymentProcessed", "InventoryReserved", "OrderConfirmed"),
    );
    expect(
      failed(world)["every order confirmed or cancelled, as the gateway and stock rules say"],
    ).toEqual(["2 orders of sku-limited were confirmed; its stock covers exactly 1"]);
  });

  it("should fail a missing or a second e-mail", () => {
    const world = perfectWorld();
    world.snapshot.notifications.get("ord_1")?.delete("shipping");
    world.observed.byOrder.get("ord_11")?.get("NotificationSent/confirmation")?.add("again");
    expect(
      failed(world)[
        "exactly one e-mail of each kind per order (.eml file, sent row, NotificationSent)"
      ],
    ).toEqual([
      "order 1 (ord_1, confirmed) shipping: 0 sent in notifications, 1 NotificationSent, 1 .eml file; expected 1",
      "order 11 (ord_11, confirmed) confirmation: 1 sent in notifications, 2 NotificationSent, 1 .eml file; expected 1",
    ]);
  });

  it("should fail a dead letter that is no poison message, and a poison message that is missing", () => {
    const world = perfectWorld();
    const letters = [
      world.deadLetters[0] as DeadLetterRecord,
      {
        subscription: "order.on-payment-processed",
        messageId: "9",
        eventId: "real-event",
        reason: "exhausted-retries",
      },
    ];
    expect(
      failed({ ...world, deadLetters: letters })[
        "every poison message in the dead-letter topics with its reason, nothing else there"
      ],
    ).toEqual([
      "order.on-payment-processed dead-lettered real-event (exhausted-retries), which is no poison message",
      "poison-1-garbage-bytes-1 (garbage-bytes on checkout.order-placed) is not in payment.charge-order's dead-letter subscription",
    ]);
  });

  it("should fail an event a subscription never handled", () => {
    const world = perfectWorld();
    world.snapshot.claims.get("payment.charge-order")?.delete("placed-1");
    expect(awaited(world.expectations, world.snapshot, world.observed)).toEqual([
      "1 deliveries to payment.charge-order",
    ]);
    expect(failed(world)).toEqual({
      "every event handled by every subscription of its topic (inbox claims)": [
        "payment.charge-order never handled event placed-1",
      ],
    });
  });

  it("should fail a run whose own view of the topics had an error", () => {
    const world = perfectWorld();
    expect(
      failed({ ...world, monitorErrors: ["chaos-monitor.checkout.order-placed: stream ended"] }),
    ).toEqual({
      "the run's own view of the topics is complete (no monitor error)": [
        "chaos-monitor.checkout.order-placed: stream ended",
      ],
    });
  });

  it("should report an open order and unsent outbox rows as not drained, and fail them", () => {
    const world = perfectWorld();
    world.snapshot.orders.set("ord_1", log("OrderPlaced", "PaymentProcessed"));
    world.snapshot.shipments.delete("ord_1");
    world.snapshot.pendingOutbox.set("order", 2);
    expect(awaited(world.expectations, world.snapshot, world.observed)).toEqual([
      "1 orders to be confirmed or cancelled",
      "2 outbox rows of order",
    ]);
    expect(Object.keys(failed(world))).toContain("no outbox row left unsent");
  });
});
