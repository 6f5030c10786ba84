/**
 * The order as an event-sourced aggregate: its state is the fold of its
 * event log. Pure: no store, no clock.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type {
  InventoryReleased,
  InventoryReservationFailed,
  InventoryReserved,
} from "../../generated/checkout/v1/inventory_events_pb.js";
import {
  type Order,
  OrderSchema,
  OrderStatus,
  StepStatus,
} from "../../generated/checkout/v1/order_api_pb.js";
import type {
  OrderCancelled,
  OrderConfirmed,
  OrderPlaced,
} from "../../generated/checkout/v1/order_events_pb.js";
import type {
  PaymentFailed,
  PaymentProcessed,
  PaymentRefunded,
} from "../../generated/checkout/v1/payment_events_pb.js";

/**
 * Every event that can be in an order's log: what the order service
 * published about it and what payment and inventory reported. Tagged by
 * protobuf-es's `$typeName`, which is also the event's `ce-type`.
 */
export type OrderLogEvent =
  | OrderPlaced
  | OrderConfirmed
  | OrderCancelled
  | PaymentProcessed
  | PaymentFailed
  | PaymentRefunded
  | InventoryReserved
  | InventoryReservationFailed
  | InventoryReleased;

/** One entry of an order's event log. */
export interface OrderLogEntry {
  /** Position in the log, from 1. */
  readonly sequence: number;
  /** The event's ce-id; an event is recorded once per order. */
  readonly eventId: string;
  /** The event's ce-time, Unix milliseconds. */
  readonly occurredAt: number;
  readonly event: OrderLogEvent;
}

/** Which side of the saga failed first. */
export type SagaSide = "payment" | "inventory";

/**
 * The fold of an order's log: the API's {@link Order} plus what the saga
 * needs to decide and to carry into its events.
 */
export interface OrderAggregate {
  /** The order as GetOrder shows it. */
  readonly order: Order;
  /** The OrderPlaced that opened the log; undefined only for a log without one. */
  readonly placed: OrderPlaced | undefined;
  /** From the first PaymentProcessed; empty until then. */
  readonly paymentId: string;
  /** From the first InventoryReserved; empty until then. */
  readonly reservationId: string;
  /** The PaymentFailed that failed the payment step, if one did. */
  readonly paymentFailure: PaymentFailed | undefined;
  /** The InventoryReservationFailed that failed the inventory step, if one did. */
  readonly inventoryFailure: InventoryReservationFailed | undefined;
  /** The side whose failure was recorded first, if any failed. */
  readonly firstFailure: SagaSide | undefined;
}

/**
 * A step's status after an outcome event. The first outcome wins (a second,
 * contradicting outcome is only history); a compensation wins over
 * everything, so a refund or release that overtakes the outcome it undoes
 * still leaves the step compensated.
 */
function afterOutcome(current: StepStatus, outcome: StepStatus): StepStatus {
  if (current === StepStatus.COMPENSATED) {
    return current;
  }
  if (current === StepStatus.SUCCEEDED || current === StepStatus.FAILED) {
    return current;
  }
  return outcome;
}

/**
 * Fold an order's log, in sequence order, into its state. Total over any
 * sequence of entries: unexpected orders (a refund before the charge, an
 * outcome after the order is final) never throw, they follow the rules of
 * {@link afterOutcome}, and only the order's own decisions (OrderConfirmed,
 * OrderCancelled) change its status, and only while it is placed.
 */
export function foldOrderState(entries: readonly OrderLogEntry[]): OrderAggregate {
  const order = create(OrderSchema, {
    status: OrderStatus.UNSPECIFIED,
    payment: StepStatus.PENDING,
    inventory: StepStatus.PENDING,
  });
  let placed: OrderPlaced | undefined;
  let paymentId = "";
  let reservationId = "";
  let paymentFailure: PaymentFailed | undefined;
  let inventoryFailure: InventoryReservationFailed | undefined;
  let firstFailure: SagaSide | undefined;
  let updatedAt: number | undefined;

  for (const { event, occurredAt } of entries) {
    // Arrival order is not ce-time order; "last changed" is the latest time seen.
    updatedAt = updatedAt === undefined ? occurredAt : Math.max(updatedAt, occurredAt);
    switch (event.$typeName) {
      case "checkout.v1.OrderPlaced":
        if (placed === undefined) {
          placed = event;
          order.orderId = event.orderId;
          order.customerId = event.customerId;
          order.items = event.items;
          if (event.total !== undefined) {
            order.total = event.total;
          }
          if (event.placedAt !== undefined) {
            order.placedAt = event.placedAt;
          }
          if (order.status === OrderStatus.UNSPECIFIED) {
            order.status = OrderStatus.PLACED;
          }
        }
        break;
      case "checkout.v1.PaymentProcessed":
        if (order.payment === StepStatus.PENDING) {
          paymentId = event.paymentId;
        }
        order.payment = afterOutcome(order.payment, StepStatus.SUCCEEDED);
        break;
      case "checkout.v1.PaymentFailed":
        if (order.payment === StepStatus.PENDING) {
          paymentFailure = event;
          firstFailure ??= "payment";
        }
        order.payment = afterOutcome(order.payment, StepStatus.FAILED);
        break;
      case "checkout.v1.PaymentRefunded":
        order.payment = StepStatus.COMPENSATED;
        break;
      case "checkout.v1.InventoryReserved":
        if (order.inventory === StepStatus.PENDING) {
          reservationId = event.reservationId;
        }
        order.inventory = afterOutcome(order.inventory, StepStatus.SUCCEEDED);
        break;
      case "checkout.v1.InventoryReservationFailed":
        if (order.inventory === StepStatus.PENDING) {
          inventoryFailure = event;
          firstFailure ??= "inventory";
        }
        order.inventory = afterOutcome(order.inventory, StepStatus.FAILED);
        break;
      case "checkout.v1.InventoryReleased":
        order.inventory = StepStatus.COMPENSATED;
        break;
      case "checkout.v1.OrderConfirmed":
        if (order.status === OrderStatus.PLACED) {
          order.status = OrderStatus.CONFIRMED;
        }
        break;
      case "checkout.v1.OrderCancelled":
        if (order.status === OrderStatus.PLACED) {
          order.status = OrderStatus.CANCELLED;
          order.cancellationReason = event.reason;
          order.cancellationDetail = event.detail;
        }
        break;
      default: {
        // Unreachable while the switch covers OrderLogEvent; tsc checks that.
        const unhandled: never = event;
        throw new Error(`unhandled order log event ${(unhandled as OrderLogEvent).$typeName}`);
      }
    }
  }
  if (placed === undefined) {
    // Without its OrderPlaced there is no order: the steps were never started.
    order.payment = order.payment === StepStatus.PENDING ? StepStatus.UNSPECIFIED : order.payment;
    order.inventory =
      order.inventory === StepStatus.PENDING ? StepStatus.UNSPECIFIED : order.inventory;
  }
  if (updatedAt !== undefined) {
    order.updatedAt = timestampFromMs(updatedAt);
  }
  return {
    order,
    placed,
    paymentId,
    reservationId,
    paymentFailure,
    inventoryFailure,
    firstFailure,
  };
}

/**
 * The order as its events describe it now: the fold of its log (see
 * {@link foldOrderState}). An empty log folds to an order with status
 * UNSPECIFIED.
 */
export function foldOrder(entries: readonly OrderLogEntry[]): Order {
  return foldOrderState(entries).order;
}
