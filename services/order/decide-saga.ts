/**
 * The checkout saga's decision: given the fold of an order's log, confirm it,
 * cancel it (and say which compensations are needed), or keep waiting. Pure:
 * the handlers in service.ts do the locking, storing and publishing.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { codePointLength } from "@protoevents/runtime";
import { CancellationReason } from "../../generated/checkout/v1/common_pb.js";
import type { InventoryReservationFailed } from "../../generated/checkout/v1/inventory_events_pb.js";
import { OrderStatus, StepStatus } from "../../generated/checkout/v1/order_api_pb.js";
import {
  type OrderCancelled,
  OrderCancelledSchema,
  type OrderConfirmed,
  OrderConfirmedSchema,
} from "../../generated/checkout/v1/order_events_pb.js";
import {
  PaymentDeclineCode,
  type PaymentFailed,
} from "../../generated/checkout/v1/payment_events_pb.js";
import {
  foldOrderState,
  type OrderAggregate,
  type OrderLogEntry,
  type OrderLogEvent,
} from "./fold-order.js";

/** OrderCancelled.detail allows at most this many characters. */
const MAX_DETAIL_LENGTH = 500;

/**
 * What the saga does after an event was recorded:
 * - `waiting`: the order is placed and one side has not answered yet;
 * - `final`: the order is already confirmed or cancelled, so the event is
 *   only history;
 * - `confirm`: publish and record this OrderConfirmed;
 * - `cancel`: publish and record this OrderCancelled.
 */
export type SagaDecision =
  | { readonly kind: "waiting" }
  | { readonly kind: "final" }
  | { readonly kind: "confirm"; readonly event: OrderConfirmed }
  | { readonly kind: "cancel"; readonly event: OrderCancelled };

/**
 * Decide the order's next step from its folded state:
 *
 * - not placed (already confirmed or cancelled) → `final`: nothing after a
 *   decision changes it, so a late or contradicting outcome cannot confirm a
 *   cancelled order or cancel a confirmed one;
 * - placed, payment and inventory succeeded → `confirm`, carrying items,
 *   address, total, customer e-mail (from OrderPlaced), payment id and
 *   reservation id;
 * - placed, either failed → `cancel` with reason PAYMENT_DECLINED or
 *   OUT_OF_STOCK (the side that failed first), a readable detail, and
 *   `refund_required` = payment did not fail, `release_required` = inventory
 *   did not fail: the side that succeeded, or has not answered yet, must undo
 *   its work;
 * - otherwise → `waiting`.
 *
 * `now` becomes the decision's confirmed_at or cancelled_at.
 */
export function decideSaga(state: OrderAggregate, now: Date): SagaDecision {
  const { order, placed } = state;
  if (order.status === OrderStatus.CONFIRMED || order.status === OrderStatus.CANCELLED) {
    return { kind: "final" };
  }
  if (placed === undefined || order.status !== OrderStatus.PLACED) {
    return { kind: "waiting" };
  }
  const paymentFailed = order.payment === StepStatus.FAILED;
  const inventoryFailed = order.inventory === StepStatus.FAILED;
  if (paymentFailed || inventoryFailed) {
    const byPayment = state.firstFailure === "payment" || !inventoryFailed;
    return {
      kind: "cancel",
      event: create(OrderCancelledSchema, {
        orderId: placed.orderId,
        customerId: placed.customerId,
        customerEmail: placed.customerEmail,
        reason: byPayment ? CancellationReason.PAYMENT_DECLINED : CancellationReason.OUT_OF_STOCK,
        detail: truncate(
          byPayment ? paymentDetail(state.paymentFailure) : inventoryDetail(state.inventoryFailure),
          MAX_DETAIL_LENGTH,
        ),
        refundRequired: !paymentFailed,
        releaseRequired: !inventoryFailed,
        cancelledAt: timestampFromDate(now),
      }),
    };
  }
  if (order.payment === StepStatus.SUCCEEDED && order.inventory === StepStatus.SUCCEEDED) {
    return {
      kind: "confirm",
      event: create(OrderConfirmedSchema, {
        orderId: placed.orderId,
        customerId: placed.customerId,
        customerEmail: placed.customerEmail,
        ...(placed.total === undefined ? {} : { total: placed.total }),
        paymentId: state.paymentId,
        reservationId: state.reservationId,
        items: placed.items,
        ...(placed.shippingAddress === undefined
          ? {}
          : { shippingAddress: placed.shippingAddress }),
        confirmedAt: timestampFromDate(now),
      }),
    };
  }
  return { kind: "waiting" };
}

/** An event that arrived for an order, before it has a place in the log. */
export interface IncomingOrderEvent {
  /** The event's ce-id. */
  readonly eventId: string;
  /** The event's ce-time, Unix milliseconds. */
  readonly occurredAt: number;
  readonly event: OrderLogEvent;
}

/**
 * What one saga event does to an order's log: `duplicate` when an entry with
 * its event id is already there (nothing to do); otherwise `recorded`, with
 * the entry to append, the state after it, and the decision on that state.
 */
export type SagaStep =
  | { readonly kind: "duplicate" }
  | {
      readonly kind: "recorded";
      readonly entry: OrderLogEntry;
      readonly state: OrderAggregate;
      readonly decision: SagaDecision;
    };

/**
 * Apply one incoming event to an order's log (sorted by sequence): skip it if
 * already recorded, else append it, fold, and decide (see {@link decideSaga}).
 * The caller appends the decision's event after `entry` when there is one.
 */
export function sagaStep(
  log: readonly OrderLogEntry[],
  incoming: IncomingOrderEvent,
  now: Date,
): SagaStep {
  if (log.some((entry) => entry.eventId === incoming.eventId)) {
    return { kind: "duplicate" };
  }
  const entry: OrderLogEntry = { ...incoming, sequence: nextSequence(log) };
  const state = foldOrderState([...log, entry]);
  return { kind: "recorded", entry, state, decision: decideSaga(state, now) };
}

/** The sequence number the next entry of a log (sorted by sequence) gets. */
export function nextSequence(log: readonly OrderLogEntry[]): number {
  return (log.at(-1)?.sequence ?? 0) + 1;
}

function paymentDetail(failure: PaymentFailed | undefined): string {
  if (failure === undefined) {
    return "payment declined";
  }
  const code = PaymentDeclineCode[failure.declineCode];
  const what =
    code === undefined || failure.declineCode === PaymentDeclineCode.UNSPECIFIED
      ? "payment declined"
      : `payment declined (${code.toLowerCase().replaceAll("_", " ")})`;
  return failure.reason === "" ? what : `${what}: ${failure.reason}`;
}

function inventoryDetail(failure: InventoryReservationFailed | undefined): string {
  if (failure === undefined) {
    return "out of stock";
  }
  if (failure.unavailableItems.length > 0) {
    const items = failure.unavailableItems
      .map(
        (item) =>
          `${item.productId} (${item.requestedQuantity} ordered, ${item.availableQuantity} available)`,
      )
      .join(", ");
    return failure.reason === ""
      ? `out of stock: ${items}`
      : `out of stock: ${items}; ${failure.reason}`;
  }
  return failure.reason === "" ? "out of stock" : `out of stock: ${failure.reason}`;
}

function truncate(text: string, max: number): string {
  if (codePointLength(text) <= max) {
    return text;
  }
  return `${Array.from(text)
    .slice(0, max - 1)
    .join("")}…`;
}
