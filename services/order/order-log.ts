/**
 * The order's event log in the store: reading and appending entries, the
 * payload codec (proto3 JSON by `ce-type`), and the redacted history view.
 */
import { create, type DescMessage, fromJsonString, toJsonString } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ProtoeventsError, redactedJson } from "@protoevents/runtime";
import {
  InventoryReleasedSchema,
  InventoryReservationFailedSchema,
  InventoryReservedSchema,
} from "../../generated/checkout/v1/inventory_events_pb.js";
import {
  INVENTORY_RELEASED_TYPE,
  INVENTORY_RESERVATION_FAILED_TYPE,
  INVENTORY_RESERVED_TYPE,
  InventoryReleasedEvent,
  InventoryReservationFailedEvent,
  InventoryReservedEvent,
} from "../../generated/checkout/v1/inventory_events_pe.js";
import {
  type OrderHistoryEntry,
  OrderHistoryEntrySchema,
} from "../../generated/checkout/v1/order_api_pb.js";
import {
  OrderCancelledSchema,
  OrderConfirmedSchema,
  OrderPlacedSchema,
} from "../../generated/checkout/v1/order_events_pb.js";
import {
  ORDER_CANCELLED_TYPE,
  ORDER_CONFIRMED_TYPE,
  ORDER_PLACED_TYPE,
  OrderCancelledEvent,
  OrderConfirmedEvent,
  OrderPlacedEvent,
} from "../../generated/checkout/v1/order_events_pe.js";
import {
  PaymentFailedSchema,
  PaymentProcessedSchema,
  PaymentRefundedSchema,
} from "../../generated/checkout/v1/payment_events_pb.js";
import {
  PAYMENT_FAILED_TYPE,
  PAYMENT_PROCESSED_TYPE,
  PAYMENT_REFUNDED_TYPE,
  PaymentFailedEvent,
  PaymentProcessedEvent,
  PaymentRefundedEvent,
} from "../../generated/checkout/v1/payment_events_pe.js";
import type { OrderLogEntry, OrderLogEvent } from "./fold-order.js";
import type { OrderDb } from "./tables.js";

/** What the log needs of an event's contract: its schema and its pii fields. */
interface LogContract {
  readonly type: string;
  readonly schema: DescMessage;
  readonly piiFields: ReadonlySet<string>;
}

/** The contract of a log event, by its type. */
function contractOf(event: OrderLogEvent): LogContract {
  switch (event.$typeName) {
    case "checkout.v1.OrderPlaced":
      return OrderPlacedEvent;
    case "checkout.v1.OrderConfirmed":
      return OrderConfirmedEvent;
    case "checkout.v1.OrderCancelled":
      return OrderCancelledEvent;
    case "checkout.v1.PaymentProcessed":
      return PaymentProcessedEvent;
    case "checkout.v1.PaymentFailed":
      return PaymentFailedEvent;
    case "checkout.v1.PaymentRefunded":
      return PaymentRefundedEvent;
    case "checkout.v1.InventoryReserved":
      return InventoryReservedEvent;
    case "checkout.v1.InventoryReservationFailed":
      return InventoryReservationFailedEvent;
    case "checkout.v1.InventoryReleased":
      return InventoryReleasedEvent;
  }
}

/** The proto3 JSON the log stores for an event, personal data included. */
export function encodeLogPayload(event: OrderLogEvent): string {
  return toJsonString(contractOf(event).schema, event);
}

/**
 * Decode a stored payload by its `ce-type`. Unknown JSON fields are ignored,
 * so a log written by a newer contract revision still folds after a rollback.
 *
 * @throws ProtoeventsError `internal` for a type the log never stores or a
 *   payload that is not that type's JSON: the log is corrupt.
 */
export function decodeLogPayload(eventType: string, payload: string): OrderLogEvent {
  const options = { ignoreUnknownFields: true };
  try {
    switch (eventType) {
      case ORDER_PLACED_TYPE:
        return fromJsonString(OrderPlacedSchema, payload, options);
      case ORDER_CONFIRMED_TYPE:
        return fromJsonString(OrderConfirmedSchema, payload, options);
      case ORDER_CANCELLED_TYPE:
        return fromJsonString(OrderCancelledSchema, payload, options);
      case PAYMENT_PROCESSED_TYPE:
        return fromJsonString(PaymentProcessedSchema, payload, options);
      case PAYMENT_FAILED_TYPE:
        return fromJsonString(PaymentFailedSchema, payload, options);
      case PAYMENT_REFUNDED_TYPE:
        return fromJsonString(PaymentRefundedSchema, payload, options);
      case INVENTORY_RESERVED_TYPE:
        return fromJsonString(InventoryReservedSchema, payload, options);
      case INVENTORY_RESERVATION_FAILED_TYPE:
        return fromJsonString(InventoryReservationFailedSchema, payload, options);
      case INVENTORY_RELEASED_TYPE:
        return fromJsonString(InventoryReleasedSchema, payload, options);
    }
  } catch (error) {
    throw new ProtoeventsError(
      Code.Internal,
      `order_events holds a ${eventType} payload that does not decode`,
      { cause: error },
    );
  }
  throw new ProtoeventsError(
    Code.Internal,
    `order_events holds an event of type ${JSON.stringify(eventType)}, which an order log never contains`,
  );
}

/** The order's log, in sequence order; empty for an order that does not exist. */
export async function loadOrderLog(db: OrderDb, orderId: string): Promise<OrderLogEntry[]> {
  const rows = await db
    .selectFrom("order_events")
    .select(["sequence", "event_id", "event_type", "occurred_at", "payload"])
    .where("order_id", "=", orderId)
    .orderBy("sequence")
    .execute();
  return rows.map((row) => ({
    sequence: Number(row.sequence),
    eventId: row.event_id,
    occurredAt: Number(row.occurred_at),
    event: decodeLogPayload(row.event_type, row.payload),
  }));
}

/**
 * Append an entry to the order's log. The primary key (order_id, sequence)
 * and the unique (order_id, event_id) make a concurrent or repeated append
 * fail instead of forking or doubling the history.
 */
export async function appendOrderLog(
  db: OrderDb,
  orderId: string,
  entry: OrderLogEntry,
): Promise<void> {
  await db
    .insertInto("order_events")
    .values({
      order_id: orderId,
      sequence: entry.sequence,
      event_id: entry.eventId,
      event_type: contractOf(entry.event).type,
      occurred_at: entry.occurredAt,
      payload: encodeLogPayload(entry.event),
    })
    .execute();
}

/** A log entry as GetOrderHistory shows it: its payload as JSON with pii fields redacted. */
export function toHistoryEntry(entry: OrderLogEntry): OrderHistoryEntry {
  const contract = contractOf(entry.event);
  return create(OrderHistoryEntrySchema, {
    sequence: BigInt(entry.sequence),
    eventType: contract.type,
    eventId: entry.eventId,
    occurredAt: timestampFromMs(entry.occurredAt),
    payloadJson: JSON.stringify(redactedJson(contract.schema, entry.event, contract.piiFields)),
  });
}
