/**
 * The shipping service (application `shipping`): turns every confirmed order
 * into one shipment record and tells notification it is ready to ship.
 *
 * `shipments` has one row per order id, so a second OrderConfirmed for the
 * same order (another ce-id, which the inbox does not catch) finds the row and
 * publishes nothing: one shipment and one OrderReadyForShipping per order. The
 * insert itself is the check (ON CONFLICT DO NOTHING), so two replicas racing
 * on one order cannot both create it and no row lock is needed.
 */
import { toJson, toJsonString } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { Migration } from "@protoevents/runtime";
import type { Kysely } from "kysely";
import {
  type ShippingServiceContext,
  type ShippingServiceHandlers,
  subscribeShippingService,
} from "../../generated/checkout/v1/applications_pe.js";
import { AddressSchema, LineItemSchema } from "../../generated/checkout/v1/common_pb.js";
import { orderScopedId } from "../lib/order-scoped-id.js";
import type { ServiceDefinition } from "../lib/run-service.js";

/** One shipment per confirmed order. */
export interface ShipmentsTable {
  /** The business key: at most one shipment per order. */
  readonly order_id: string;
  /** `shp_<order_id>`. */
  readonly shipment_id: string;
  readonly customer_id: string;
  /** The shipping address as proto3 JSON (`checkout.v1.Address`); personal data. */
  readonly address: string;
  /** The order's line items as a JSON array of proto3 JSON `checkout.v1.LineItem`. */
  readonly items: string;
  /** When the shipment was created (and OrderReadyForShipping published). Unix ms. */
  readonly created_at: number;
}

/** The shipping service's own tables. */
export interface ShippingTables {
  readonly shipments: ShipmentsTable;
}

/** The shipping service's migrations, portable between SQLite and PostgreSQL. */
export const migrations: Readonly<Record<string, Migration>> = {
  "0001_shipments": {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable("shipments")
        .addColumn("order_id", "text", (col) => col.primaryKey())
        .addColumn("shipment_id", "text", (col) => col.notNull())
        .addColumn("customer_id", "text", (col) => col.notNull())
        .addColumn("address", "text", (col) => col.notNull())
        .addColumn("items", "text", (col) => col.notNull())
        .addColumn("created_at", "bigint", (col) => col.notNull())
        .execute();
    },
  },
};

/** What the shipping handlers need besides the event. */
export interface ShippingHandlerOptions {
  /** Clock in Unix milliseconds. @default Date.now */
  readonly now?: () => number;
}

/**
 * The business logic of application `shipping`: `prepareShipment`
 * (OrderConfirmed) records shipment `shp_<order_id>` with the order's address
 * and items and publishes OrderReadyForShipping with everything the shipping
 * notice needs (customer, e-mail, address, items); an order that already has
 * a shipment is left alone.
 */
export function createShippingHandlers(
  options: ShippingHandlerOptions = {},
): ShippingServiceHandlers<ShippingServiceContext<ShippingTables>> {
  const now = options.now ?? Date.now;
  return {
    async prepareShipment(event, { tx, publisher, log }) {
      const orderId = event.orderId;
      const shipmentId = orderScopedId("shp", orderId);
      const at = now();
      const result = await tx.db
        .insertInto("shipments")
        .values({
          order_id: orderId,
          shipment_id: shipmentId,
          customer_id: event.customerId,
          address: toJsonString(AddressSchema, event.shippingAddress),
          items: JSON.stringify(event.items.map((item) => toJson(LineItemSchema, item))),
          created_at: at,
        })
        .onConflict((oc) => oc.column("order_id").doNothing())
        .executeTakeFirst();
      if (result.numInsertedOrUpdatedRows !== 1n) {
        log.info(
          { orderId, op: "prepare-shipment", shipmentId },
          "not prepared again: the order already has a shipment",
        );
        return;
      }
      await publisher.publishOrderReadyForShipping({
        orderId,
        shipmentId,
        customerId: event.customerId,
        customerEmail: event.customerEmail,
        shippingAddress: event.shippingAddress,
        items: event.items,
        readyAt: timestampFromMs(at),
      });
      log.info(
        { orderId, op: "prepare-shipment", shipmentId, items: event.items.length },
        "shipment prepared",
      );
    },
  };
}

/**
 * The shipping service: consumes `shipping.prepare-shipment` with
 * exactly-once effects.
 */
export const definition: ServiceDefinition<ShippingTables> = {
  name: "shipping",
  migrations,
  async start({ pubsub, store, log }) {
    const consumer = subscribeShippingService(pubsub, createShippingHandlers(), {
      store,
      logger: log,
    });
    return { closables: [consumer], ready: { subscriptions: consumer.subscriptions } };
  },
};
