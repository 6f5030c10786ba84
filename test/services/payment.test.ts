import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { PubSub } from "@google-cloud/pubsub";
import { describe, expect, inject, it } from "vitest";
import {
  createOrderSagaServicePublisher,
  type OrderSagaServicePublisher,
  subscribeOrderSagaServiceAtLeastOnce,
} from "../../generated/checkout/v1/applications_pe.js";
import { CancellationReason, MoneySchema } from "../../generated/checkout/v1/common_pb.js";
import type { OrderCancelledInput } from "../../generated/checkout/v1/order_events_pe.js";
import { PaymentDeclineCode } from "../../generated/checkout/v1/payment_events_pb.js";
import type {
  PaymentFailedValid,
  PaymentProcessedValid,
  PaymentRefundedValid,
} from "../../generated/checkout/v1/payment_events_pe.js";
import { registry } from "../../generated/protoevents_registry.js";
import { Code, isProtoeventsError, provision } from "../../runtime/src/index.js";
import { orderScopedId } from "../../services/lib/order-scoped-id.js";
import { type RunningService, startService } from "../../services/lib/run-service.js";
import {
  DEFAULT_PAYMENT_LIMIT_MINOR,
  decideCharge,
  paymentLimitFromEnv,
} from "../../services/payment/gateway.js";
import { definition, type PaymentTables } from "../../services/payment/service.js";
import { afterThisTest, tempDir } from "../helpers/cleanup.js";
import { validOrderPlaced } from "../helpers/orders.js";
import { testPubSub } from "../helpers/pubsub.js";
import { waitFor } from "../helpers/wait.js";

interface Harness {
  readonly pubsub: PubSub;
  readonly service: RunningService<PaymentTables>;
  readonly saga: OrderSagaServicePublisher;
  readonly processed: PaymentProcessedValid[];
  readonly failed: PaymentFailedValid[];
  readonly refunded: PaymentRefundedValid[];
}

/**
 * The payment service running in-process on a fresh emulator project and
 * SQLite file, with the order saga's subscriptions observed at least once.
 */
async function startPayment(env: Record<string, string> = {}): Promise<Harness> {
  const pubsub = testPubSub("payment");
  afterThisTest(() => pubsub.close());
  await provision(pubsub, registry, { dryRun: false });
  const dataDir = await tempDir("payment-service");
  const service = await startService(definition, {
    PUBSUB_EMULATOR_HOST: inject("emulatorHost"),
    PUBSUB_PROJECT_ID: pubsub.projectId,
    PROTOEVENTS_DATA_DIR: dataDir,
    PROTOEVENTS_LOG_LEVEL: "silent",
    ...env,
  });
  afterThisTest(() => service.stop());
  const processed: PaymentProcessedValid[] = [];
  const failed: PaymentFailedValid[] = [];
  const refunded: PaymentRefundedValid[] = [];
  const observer = subscribeOrderSagaServiceAtLeastOnce(pubsub, {
    onPaymentProcessed: (event) => {
      processed.push(event);
    },
    onPaymentFailed: (event) => {
      failed.push(event);
    },
    onPaymentRefunded: (event) => {
      refunded.push(event);
    },
    onInventoryReserved: () => {},
    onInventoryReservationFailed: () => {},
    onInventoryReleased: () => {},
  });
  afterThisTest(() => observer.close());
  const saga = createOrderSagaServicePublisher(pubsub);
  return { pubsub, service, saga, processed, failed, refunded };
}

/** Resolve once the service committed its handling of event `eventId`. */
async function handled(harness: Harness, subscription: string, eventId: string): Promise<void> {
  await waitFor(`${subscription} to handle ${eventId}`, async () => {
    const claim = await harness.service.context.store.db
      .selectFrom("protoevents_inbox")
      .select("event_id")
      .where("subscription", "=", subscription)
      .where("event_id", "=", eventId)
      .executeTakeFirst();
    return claim !== undefined;
  });
}

/** How many events of `type` the service wrote to its outbox, i.e. ever published. */
async function published(harness: Harness, type: string): Promise<number> {
  const rows = await harness.service.context.store.db
    .selectFrom("protoevents_outbox")
    .select("event_id")
    .where("event_type", "=", type)
    .execute();
  return rows.length;
}

async function paymentRow(harness: Harness, orderId: string) {
  return harness.service.context.store.db
    .selectFrom("payments")
    .selectAll()
    .where("order_id", "=", orderId)
    .executeTakeFirst();
}

function cancelled(orderId: string, refundRequired = true): OrderCancelledInput {
  return {
    orderId,
    customerId: "cust-42",
    customerEmail: "ada@example.com",
    reason: CancellationReason.OUT_OF_STOCK,
    detail: "sku-limited is out of stock",
    refundRequired,
    releaseRequired: false,
    cancelledAt: timestampFromDate(new Date("2026-11-26T10:00:05Z")),
  };
}

describe("decideCharge", () => {
  const request = { orderId: "ord-1", paymentToken: "tok_visa_4242", amountMinor: 12_980n };

  it("should approve with payment id pay_<order_id> when token and amount pass", () => {
    expect(decideCharge(request)).toEqual({ kind: "approved", paymentId: "pay_ord-1" });
  });

  it.each([
    ["tok_declined", 100n, PaymentDeclineCode.CARD_DECLINED, "the card issuer declined the charge"],
    ["tok_expired", 100n, PaymentDeclineCode.EXPIRED_CARD, "the card has expired"],
    [
      "4242424242424242",
      100n,
      PaymentDeclineCode.INVALID_PAYMENT_TOKEN,
      "the payment token was not issued by the gateway",
    ],
    // Token rules win over the amount.
    [
      "tok_declined",
      900_000n,
      PaymentDeclineCode.CARD_DECLINED,
      "the card issuer declined the charge",
    ],
    [
      "tok_visa",
      500_001n,
      PaymentDeclineCode.AMOUNT_LIMIT_EXCEEDED,
      "the amount of 500001 minor units is above the limit of 500000 per order",
    ],
  ])(
    "should decline when the token is %s and the amount %s",
    (paymentToken, amountMinor, code, reason) => {
      expect(decideCharge({ ...request, paymentToken, amountMinor })).toEqual({
        kind: "declined",
        code,
        reason,
      });
    },
  );

  it("should approve when the amount equals the limit", () => {
    expect(decideCharge({ ...request, amountMinor: DEFAULT_PAYMENT_LIMIT_MINOR }).kind).toBe(
      "approved",
    );
  });

  it("should apply the given limit when one is passed", () => {
    expect(decideCharge({ ...request, amountMinor: 1_001n }, 1_000n)).toMatchObject({
      kind: "declined",
      code: PaymentDeclineCode.AMOUNT_LIMIT_EXCEEDED,
    });
  });

  it("should match tokens exactly when a token only starts with tok_declined", () => {
    expect(decideCharge({ ...request, paymentToken: "tok_declined_2" }).kind).toBe("approved");
  });
});

describe("paymentLimitFromEnv", () => {
  it("should default to 500000 when PAYMENT_LIMIT_MINOR is unset or empty", () => {
    expect(paymentLimitFromEnv({})).toBe(500_000n);
    expect(paymentLimitFromEnv({ PAYMENT_LIMIT_MINOR: " " })).toBe(500_000n);
  });

  it("should read whole minor units when PAYMENT_LIMIT_MINOR is set", () => {
    expect(paymentLimitFromEnv({ PAYMENT_LIMIT_MINOR: "25000" })).toBe(25_000n);
  });

  it.each(["5000.00", "-1", "lots", "9007199254740992"])(
    "should refuse to start when PAYMENT_LIMIT_MINOR is %s",
    (value) => {
      let error: unknown;
      try {
        paymentLimitFromEnv({ PAYMENT_LIMIT_MINOR: value });
      } catch (e) {
        error = e;
      }
      expect(isProtoeventsError(error) && error.code === Code.InvalidArgument).toBe(true);
      expect(String(error)).toContain("PAYMENT_LIMIT_MINOR");
    },
  );
});

describe("orderScopedId", () => {
  it("should prefix the order id when the result fits 64 characters", () => {
    expect(orderScopedId("ref", "ord-1001")).toBe("ref_ord-1001");
  });

  it("should stay within 64 characters and stay deterministic when the order id is 64 long", () => {
    const orderId = "o".repeat(64);
    const id = orderScopedId("pay", orderId);
    expect(id).toHaveLength(64);
    expect(id).toMatch(/^pay_[0-9a-f]{60}$/);
    expect(orderScopedId("pay", orderId)).toBe(id);
    expect(orderScopedId("pay", `${"o".repeat(63)}p`)).not.toBe(id);
  });
});

describe("payment service", () => {
  it("should publish exactly one PaymentProcessed with the order's total when the card is approved", async () => {
    const harness = await startPayment();
    const { id } = await harness.saga.publishOrderPlaced(validOrderPlaced("ord-pay-ok"));
    await waitFor("PaymentProcessed", () => harness.processed.length === 1);
    const [event] = harness.processed;
    expect(event?.orderId).toBe("ord-pay-ok");
    expect(event?.paymentId).toBe("pay_ord-pay-ok");
    expect(event?.amount.amountMinor).toBe(12_980n);
    expect(event?.amount.currencyCode).toBe("EUR");
    await handled(harness, "payment.charge-order", id);
    expect(await published(harness, "checkout.v1.PaymentProcessed")).toBe(1);
    expect(harness.failed).toEqual([]);
    expect(await paymentRow(harness, "ord-pay-ok")).toMatchObject({
      status: "charged",
      amount_minor: 12_980,
      currency_code: "EUR",
      payment_id: "pay_ord-pay-ok",
    });
  });

  it("should publish PaymentFailed CARD_DECLINED when the token is tok_declined", async () => {
    const harness = await startPayment();
    await harness.saga.publishOrderPlaced({
      ...validOrderPlaced("ord-pay-declined"),
      paymentToken: "tok_declined",
    });
    await waitFor("PaymentFailed", () => harness.failed.length === 1);
    const [event] = harness.failed;
    expect(event?.orderId).toBe("ord-pay-declined");
    expect(event?.declineCode).toBe(PaymentDeclineCode.CARD_DECLINED);
    expect(event?.reason).toBe("the card issuer declined the charge");
    expect(event?.amount.amountMinor).toBe(12_980n);
    expect(harness.processed).toEqual([]);
    expect(await paymentRow(harness, "ord-pay-declined")).toMatchObject({
      status: "declined",
      decline_code: "CARD_DECLINED",
      payment_id: null,
    });
  });

  it("should decline with AMOUNT_LIMIT_EXCEEDED when the total is above PAYMENT_LIMIT_MINOR", async () => {
    const harness = await startPayment({ PAYMENT_LIMIT_MINOR: "10000" });
    expect(harness.service.ready).toMatchObject({ limitMinor: "10000" });
    await harness.saga.publishOrderPlaced(validOrderPlaced("ord-pay-limit"));
    await waitFor("PaymentFailed", () => harness.failed.length === 1);
    expect(harness.failed[0]?.declineCode).toBe(PaymentDeclineCode.AMOUNT_LIMIT_EXCEEDED);
    expect(harness.processed).toEqual([]);
  });

  it("should decline, not dead-letter, a total beyond what a number holds exactly", async () => {
    const harness = await startPayment();
    const huge = 2n ** 60n;
    await harness.saga.publishOrderPlaced({
      ...validOrderPlaced("ord-pay-huge"),
      total: create(MoneySchema, { currencyCode: "EUR", amountMinor: huge }),
    });
    await waitFor("PaymentFailed", () => harness.failed.length === 1);
    expect(harness.failed[0]?.declineCode).toBe(PaymentDeclineCode.AMOUNT_LIMIT_EXCEEDED);
    expect(harness.failed[0]?.amount.amountMinor).toBe(huge);
    expect(harness.failed[0]?.reason).toContain(`${huge} minor units`);
    expect(await paymentRow(harness, "ord-pay-huge")).toMatchObject({
      status: "declined",
      amount_minor: null,
    });
  });

  it("should charge once when OrderPlaced arrives twice with different ce-ids", async () => {
    const harness = await startPayment();
    const first = await harness.saga.publishOrderPlaced(validOrderPlaced("ord-pay-twice"));
    // charge-order is not ordered: let the first be handled before the second is sent.
    await handled(harness, "payment.charge-order", first.id);
    // Second placement with another token: were it charged again, it would decline.
    const second = await harness.saga.publishOrderPlaced({
      ...validOrderPlaced("ord-pay-twice"),
      paymentToken: "tok_declined",
    });
    await handled(harness, "payment.charge-order", second.id);
    await harness.service.relay.drain();
    expect(await published(harness, "checkout.v1.PaymentProcessed")).toBe(1);
    expect(await published(harness, "checkout.v1.PaymentFailed")).toBe(0);
    expect((await paymentRow(harness, "ord-pay-twice"))?.status).toBe("charged");
  });

  it("should refund once when two OrderCancelled with different ce-ids follow a charge", async () => {
    const harness = await startPayment();
    await harness.saga.publishOrderPlaced(validOrderPlaced("ord-pay-refund"));
    await waitFor("PaymentProcessed", () => harness.processed.length === 1);
    await harness.saga.publishOrderCancelled(cancelled("ord-pay-refund"));
    await waitFor("PaymentRefunded", () => harness.refunded.length === 1);
    const [refund] = harness.refunded;
    expect(refund?.orderId).toBe("ord-pay-refund");
    expect(refund?.paymentId).toBe("pay_ord-pay-refund");
    expect(refund?.refundId).toBe("ref_ord-pay-refund");
    expect(refund?.amount.amountMinor).toBe(12_980n);
    expect(refund?.amount.currencyCode).toBe("EUR");

    const again = await harness.saga.publishOrderCancelled(cancelled("ord-pay-refund"));
    await handled(harness, "payment.refund-order", again.id);
    await harness.service.relay.drain();
    expect(await published(harness, "checkout.v1.PaymentRefunded")).toBe(1);
    expect(harness.refunded).toHaveLength(1);
    expect(await paymentRow(harness, "ord-pay-refund")).toMatchObject({
      status: "refunded",
      refund_id: "ref_ord-pay-refund",
    });
  });

  it("should never charge when OrderCancelled arrives before OrderPlaced", async () => {
    const harness = await startPayment();
    const cancel = await harness.saga.publishOrderCancelled(cancelled("ord-pay-early"));
    await handled(harness, "payment.refund-order", cancel.id);
    expect((await paymentRow(harness, "ord-pay-early"))?.status).toBe("cancelled");

    const placed = await harness.saga.publishOrderPlaced(validOrderPlaced("ord-pay-early"));
    await handled(harness, "payment.charge-order", placed.id);
    await harness.service.relay.drain();
    expect(await published(harness, "checkout.v1.PaymentProcessed")).toBe(0);
    expect(await published(harness, "checkout.v1.PaymentFailed")).toBe(0);
    expect(await published(harness, "checkout.v1.PaymentRefunded")).toBe(0);
    // The late placement is recorded on the tombstone.
    expect(await paymentRow(harness, "ord-pay-early")).toMatchObject({
      status: "cancelled",
      amount_minor: 12_980,
      currency_code: "EUR",
      payment_id: null,
    });
  });

  it("should leave no tombstone and charge later when OrderCancelled does not require a refund", async () => {
    const harness = await startPayment();
    const cancel = await harness.saga.publishOrderCancelled(cancelled("ord-pay-norefund", false));
    await handled(harness, "payment.refund-order", cancel.id);
    expect(await paymentRow(harness, "ord-pay-norefund")).toBeUndefined();
    await harness.saga.publishOrderPlaced(validOrderPlaced("ord-pay-norefund"));
    await waitFor("PaymentProcessed", () => harness.processed.length === 1);
  });

  it("should not refund when the charge was declined", async () => {
    const harness = await startPayment();
    await harness.saga.publishOrderPlaced({
      ...validOrderPlaced("ord-pay-declined-cancel"),
      paymentToken: "tok_expired",
    });
    await waitFor("PaymentFailed", () => harness.failed.length === 1);
    const cancel = await harness.saga.publishOrderCancelled(cancelled("ord-pay-declined-cancel"));
    await handled(harness, "payment.refund-order", cancel.id);
    await harness.service.relay.drain();
    expect(await published(harness, "checkout.v1.PaymentRefunded")).toBe(0);
    expect((await paymentRow(harness, "ord-pay-declined-cancel"))?.status).toBe("declined");
  });
});
