/**
 * The payment service (application `payment`): charges every placed order
 * once through the fake gateway and refunds the charge of an order the saga
 * cancels.
 *
 * Its one table, `payments`, has one row per order id, whatever event created
 * it. That key is what makes "once" hold across different events about one
 * order: a second OrderPlaced finds the row and does nothing, a second
 * OrderCancelled finds it refunded, and a cancellation that overtakes its
 * OrderPlaced leaves a `cancelled` row (a tombstone) that the late OrderPlaced
 * finds instead of charging. Every decision inserts first and reads second, so
 * two replicas racing on one order collide on the primary key rather than both
 * acting.
 */
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type Migration,
  PermanentError,
  type StoreDialect,
  type StoreTransaction,
} from "@protoevents/runtime";
import type { Kysely, Selectable } from "kysely";
import {
  type PaymentServiceContext,
  type PaymentServiceHandlers,
  subscribePaymentService,
} from "../../generated/checkout/v1/applications_pe.js";
import { PaymentDeclineCode } from "../../generated/checkout/v1/payment_events_pb.js";
import { orderScopedId } from "../lib/order-scoped-id.js";
import type { ServiceDefinition } from "../lib/run-service.js";
import { decideCharge, paymentLimitFromEnv } from "./gateway.js";

/**
 * Where an order's payment stands.
 *
 * - `charged`: the gateway took the total; a refund may follow.
 * - `declined`: the gateway refused; nothing was taken, nothing to refund.
 * - `refunded`: charged, then paid back after a cancellation.
 * - `cancelled`: the cancellation (with `refund_required`) arrived before the
 *   order's OrderPlaced; the order is never charged.
 */
export type PaymentStatus = "charged" | "declined" | "refunded" | "cancelled";

/** One row per order: the charge, its decline or refund, or the tombstone. */
export interface PaymentsTable {
  /** The business key: at most one charge and one refund per order. */
  readonly order_id: string;
  readonly status: PaymentStatus;
  /** What was charged (or attempted); null on a tombstone until the OrderPlaced arrives. */
  readonly amount_minor: number | null;
  /** ISO 4217 code of `amount_minor`; null with it. */
  readonly currency_code: string | null;
  /** `pay_<order_id>`; set when charged (kept after the refund). */
  readonly payment_id: string | null;
  /** `PaymentDeclineCode` name, e.g. `CARD_DECLINED`; set when declined. */
  readonly decline_code: string | null;
  /** The gateway's decline message; set when declined. */
  readonly decline_reason: string | null;
  /** `ref_<order_id>`; set when refunded. */
  readonly refund_id: string | null;
  /** When the row was written: the charge or decline, or the tombstone. Unix ms. */
  readonly created_at: number;
  /** Last change. Unix ms. */
  readonly updated_at: number;
  /** When the refund was made. Unix ms. */
  readonly refunded_at: number | null;
}

/** The payment service's own tables. */
export interface PaymentTables {
  readonly payments: PaymentsTable;
}

/** The payment service's migrations, portable between SQLite and PostgreSQL. */
export const migrations: Readonly<Record<string, Migration>> = {
  "0001_payments": {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable("payments")
        .addColumn("order_id", "text", (col) => col.primaryKey())
        .addColumn("status", "text", (col) => col.notNull())
        .addColumn("amount_minor", "bigint")
        .addColumn("currency_code", "text")
        .addColumn("payment_id", "text")
        .addColumn("decline_code", "text")
        .addColumn("decline_reason", "text")
        .addColumn("refund_id", "text")
        .addColumn("created_at", "bigint", (col) => col.notNull())
        .addColumn("updated_at", "bigint", (col) => col.notNull())
        .addColumn("refunded_at", "bigint")
        .execute();
    },
  },
};

/** What the payment handlers need besides the event. */
export interface PaymentHandlerOptions {
  /** The store's dialect: rows are locked with FOR UPDATE on PostgreSQL only. */
  readonly dialect: StoreDialect;
  /** The gateway's per-order limit in minor units. */
  readonly limitMinor: bigint;
  /** Clock in Unix milliseconds. @default Date.now */
  readonly now?: () => number;
}

type Tx = StoreTransaction<PaymentTables>;

/**
 * The business logic of application `payment`.
 *
 * - `chargeOrder` (OrderPlaced): asks the gateway and records `charged` +
 *   publishes PaymentProcessed, or records `declined` + publishes
 *   PaymentFailed. An order that already has a row is not charged again: a
 *   repeated OrderPlaced does nothing, and one that finds a `cancelled`
 *   tombstone only records its amount.
 * - `refundOrder` (OrderCancelled with `refund_required`): a `charged` row
 *   becomes `refunded` + PaymentRefunded (refund id `ref_<order_id>`); no row
 *   yet → a `cancelled` tombstone; `declined`, `refunded` or `cancelled` →
 *   nothing. Without `refund_required` it does nothing at all.
 */
export function createPaymentHandlers(
  options: PaymentHandlerOptions,
): PaymentServiceHandlers<PaymentServiceContext<PaymentTables>> {
  const now = options.now ?? Date.now;
  const lockPayment = (tx: Tx, orderId: string) =>
    tx.db
      .selectFrom("payments")
      .selectAll()
      .where("order_id", "=", orderId)
      .$if(options.dialect === "postgres", (qb) => qb.forUpdate())
      .executeTakeFirst();
  const insertIfNew = async (tx: Tx, row: Selectable<PaymentsTable>): Promise<boolean> => {
    const result = await tx.db
      .insertInto("payments")
      .values(row)
      .onConflict((oc) => oc.column("order_id").doNothing())
      .executeTakeFirst();
    return result.numInsertedOrUpdatedRows === 1n;
  };

  return {
    async chargeOrder(event, { tx, publisher, log }) {
      const orderId = event.orderId;
      const amount = event.total;
      // The fake gateway is pure, so deciding before the insert is safe; a real
      // one would be called with the payment id as its idempotency key. It
      // decides on the exact amount: one beyond any limit is declined, so every
      // order ends confirmed or cancelled, whatever its total.
      const decision = decideCharge(
        { orderId, paymentToken: event.paymentToken, amountMinor: amount.amountMinor },
        options.limitMinor,
      );
      // The limit is at most 2^53 − 1, so an approved amount is held exactly;
      // a declined one too large for that is kept in the decline reason only.
      const amountMinor = Number.isSafeInteger(Number(amount.amountMinor))
        ? Number(amount.amountMinor)
        : null;
      const at = now();
      const inserted = await insertIfNew(tx, {
        order_id: orderId,
        status: decision.kind === "approved" ? "charged" : "declined",
        amount_minor: amountMinor,
        currency_code: amount.currencyCode,
        payment_id: decision.kind === "approved" ? decision.paymentId : null,
        decline_code: decision.kind === "declined" ? PaymentDeclineCode[decision.code] : null,
        decline_reason: decision.kind === "declined" ? decision.reason : null,
        refund_id: null,
        created_at: at,
        updated_at: at,
        refunded_at: null,
      });
      if (!inserted) {
        const known = await lockPayment(tx, orderId);
        if (known?.status === "cancelled") {
          if (known.amount_minor === null) {
            await tx.db
              .updateTable("payments")
              .set({
                amount_minor: amountMinor,
                currency_code: amount.currencyCode,
                updated_at: at,
              })
              .where("order_id", "=", orderId)
              .execute();
          }
          log.info(
            { orderId, op: "charge" },
            "not charged: the order was cancelled before it was placed",
          );
          return;
        }
        log.info(
          { orderId, op: "charge", status: known?.status },
          "not charged again: the order already has a payment",
        );
        return;
      }
      switch (decision.kind) {
        case "approved":
          await publisher.publishPaymentProcessed({
            orderId,
            paymentId: decision.paymentId,
            amount,
            processedAt: timestampFromMs(at),
          });
          log.info(
            {
              orderId,
              op: "charge",
              paymentId: decision.paymentId,
              amountMinor,
              currency: amount.currencyCode,
            },
            "charged",
          );
          return;
        case "declined":
          await publisher.publishPaymentFailed({
            orderId,
            declineCode: decision.code,
            reason: decision.reason,
            amount,
            failedAt: timestampFromMs(at),
          });
          log.info(
            {
              orderId,
              op: "charge",
              declineCode: PaymentDeclineCode[decision.code],
              reason: decision.reason,
            },
            "declined",
          );
          return;
      }
    },

    async refundOrder(event, { tx, publisher, log }) {
      const orderId = event.orderId;
      if (!event.refundRequired) {
        log.debug({ orderId, op: "refund" }, "no refund required");
        return;
      }
      const at = now();
      const tombstoned = await insertIfNew(tx, {
        order_id: orderId,
        status: "cancelled",
        amount_minor: null,
        currency_code: null,
        payment_id: null,
        decline_code: null,
        decline_reason: null,
        refund_id: null,
        created_at: at,
        updated_at: at,
        refunded_at: null,
      });
      if (tombstoned) {
        log.info(
          { orderId, op: "refund" },
          "cancelled before it was charged: the order will not be charged",
        );
        return;
      }
      const payment = await lockPayment(tx, orderId);
      if (payment?.status !== "charged") {
        log.info({ orderId, op: "refund", status: payment?.status }, "nothing to refund");
        return;
      }
      const { payment_id: paymentId, amount_minor: amountMinor, currency_code: currency } = payment;
      if (paymentId === null || amountMinor === null || currency === null) {
        throw new PermanentError(
          `order ${orderId}: its payment is charged but lacks the payment id or amount to refund`,
        );
      }
      const refundId = orderScopedId("ref", orderId);
      await tx.db
        .updateTable("payments")
        .set({ status: "refunded", refund_id: refundId, refunded_at: at, updated_at: at })
        .where("order_id", "=", orderId)
        .execute();
      await publisher.publishPaymentRefunded({
        orderId,
        paymentId,
        refundId,
        amount: { currencyCode: currency, amountMinor: BigInt(amountMinor) },
        refundedAt: timestampFromMs(at),
      });
      log.info({ orderId, op: "refund", paymentId, refundId, amountMinor, currency }, "refunded");
    },
  };
}

/**
 * The payment service: consumes `payment.charge-order` and
 * `payment.refund-order` with exactly-once effects. Env: `PAYMENT_LIMIT_MINOR`
 * (the gateway's per-order limit, default 500000).
 */
export const definition: ServiceDefinition<PaymentTables> = {
  name: "payment",
  migrations,
  async start({ pubsub, store, log, env }) {
    const limitMinor = paymentLimitFromEnv(env);
    const consumer = subscribePaymentService(
      pubsub,
      createPaymentHandlers({ dialect: store.dialect, limitMinor }),
      { store, logger: log },
    );
    return {
      closables: [consumer],
      ready: { subscriptions: consumer.subscriptions, limitMinor: limitMinor.toString() },
    };
  },
};
