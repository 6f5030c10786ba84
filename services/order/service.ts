/**
 * The order service (application `order`): the Connect API customers place
 * and follow orders with, the order as an event-sourced aggregate, the
 * checkout saga that confirms or cancels each order from the payment and
 * inventory outcomes, and the local catalog view that prices new orders.
 *
 * Idempotency, beyond the inbox (which runs each delivery's handler once per
 * subscription): every saga event is recorded at most once per order
 * (unique (order_id, event_id) in `order_events`, checked before appending);
 * the order row is locked while its log is read and extended, and a decision
 * is only taken while the order is placed and is recorded in the same
 * transaction, so an order is confirmed or cancelled at most once, whatever
 * arrives twice or late; a product update is applied only when its version
 * is higher than the view's, in one conditional upsert.
 */
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { type HandlerContext, PermanentError, type StoreDialect } from "@protoevents/runtime";
import {
  type CatalogViewServiceContext,
  type CatalogViewServiceHandlers,
  type OrderSagaServiceContext,
  type OrderSagaServiceHandlers,
  subscribeCatalogViewService,
  subscribeOrderSagaService,
} from "../../generated/checkout/v1/applications_pe.js";
import { CancellationReason } from "../../generated/checkout/v1/common_pb.js";
import { OrderService, OrderStatus } from "../../generated/checkout/v1/order_api_pb.js";
import { apiAccessFromEnv, portFromEnv, startConnectServer } from "../lib/connect-server.js";
import type { ServiceDefinition } from "../lib/run-service.js";
import { nextSequence, sagaStep } from "./decide-saga.js";
import type { OrderLogEvent } from "./fold-order.js";
import { createOrderServiceImpl } from "./order-api.js";
import { appendOrderLog, loadOrderLog } from "./order-log.js";
import { migrations, type OrderTables } from "./tables.js";

export { foldOrder, foldOrderState } from "./fold-order.js";
export {
  type CatalogViewTable,
  migrations,
  type OrderEventsTable,
  type OrdersTable,
  type OrderTables,
} from "./tables.js";

/** Environment variable with the API's port; `0` picks a free one. */
export const ORDER_API_PORT_ENV = "ORDER_API_PORT";
/** The API's port when {@link ORDER_API_PORT_ENV} is unset. */
export const DEFAULT_ORDER_API_PORT = 8080;

/** What the saga and catalog handlers need besides their context. */
export interface OrderHandlerDeps {
  /** The store's dialect: row locks (`FOR UPDATE`) only on PostgreSQL. */
  readonly dialect: StoreDialect;
  /** The clock for decisions (confirmed_at, cancelled_at, ce-time). @default () => new Date() */
  readonly now?: () => Date;
}

/** What a saga handler uses of its context. */
type SagaContext = Pick<HandlerContext, "envelope" | "log"> & OrderSagaServiceContext<OrderTables>;

/**
 * The checkout saga's handlers. Each one, in the delivery's transaction:
 * locks the order's row (FOR UPDATE on PostgreSQL, so replicas take turns
 * per order), loads its log, appends the event unless its event id is
 * already there, folds, and acts on the decision ({@link sagaStep}):
 * OrderConfirmed or OrderCancelled goes to the outbox and into the log with
 * the outbox's event id. An event for an order this service never placed
 * is dead-lettered with a {@link PermanentError}.
 */
export function createOrderSagaHandlers(
  deps: OrderHandlerDeps,
): OrderSagaServiceHandlers<OrderSagaServiceContext<OrderTables>> {
  const now = deps.now ?? (() => new Date());

  async function record(orderId: string, event: OrderLogEvent, context: SagaContext) {
    const { tx, envelope, log, publisher } = context;
    const lookup = tx.db.selectFrom("orders").select("order_id").where("order_id", "=", orderId);
    const row = await (deps.dialect === "postgres"
      ? lookup.forUpdate()
      : lookup
    ).executeTakeFirst();
    if (row === undefined) {
      throw new PermanentError(
        `${envelope.type} ${envelope.id} is about order ${JSON.stringify(orderId)}, which this service never placed`,
      );
    }
    const entries = await loadOrderLog(tx.db, orderId);
    const decidedAt = now();
    const occurredAt = Date.parse(envelope.time);
    const step = sagaStep(
      entries,
      {
        eventId: envelope.id,
        occurredAt: Number.isNaN(occurredAt) ? decidedAt.getTime() : occurredAt,
        event,
      },
      decidedAt,
    );
    if (step.kind === "duplicate") {
      log.info({ orderId, eventType: envelope.type }, "event already in the order's history");
      return;
    }
    await appendOrderLog(tx.db, orderId, step.entry);
    const { decision } = step;
    switch (decision.kind) {
      case "waiting":
      case "final":
        log.info(
          { orderId, eventType: envelope.type, status: OrderStatus[step.state.order.status] },
          decision.kind === "final" ? "recorded after the order was final" : "recorded",
        );
        return;
      case "confirm": {
        // The decision's ce-time is its confirmedAt, so envelope, payload and log agree.
        const { id } = await publisher.publishOrderConfirmed(decision.event, { time: decidedAt });
        await appendOrderLog(tx.db, orderId, {
          sequence: nextSequence([step.entry]),
          eventId: id,
          occurredAt: decidedAt.getTime(),
          event: decision.event,
        });
        log.info({ orderId, eventType: envelope.type }, "order confirmed");
        return;
      }
      case "cancel": {
        // The decision's ce-time is its cancelledAt, so envelope, payload and log agree.
        const { id } = await publisher.publishOrderCancelled(decision.event, { time: decidedAt });
        await appendOrderLog(tx.db, orderId, {
          sequence: nextSequence([step.entry]),
          eventId: id,
          occurredAt: decidedAt.getTime(),
          event: decision.event,
        });
        log.info(
          {
            orderId,
            eventType: envelope.type,
            reason: CancellationReason[decision.event.reason],
            refundRequired: decision.event.refundRequired,
            releaseRequired: decision.event.releaseRequired,
          },
          "order cancelled",
        );
        return;
      }
    }
  }

  return {
    onPaymentProcessed: (event, context) => record(event.orderId, event, context),
    onPaymentFailed: (event, context) => record(event.orderId, event, context),
    onPaymentRefunded: (event, context) => record(event.orderId, event, context),
    onInventoryReserved: (event, context) => record(event.orderId, event, context),
    onInventoryReservationFailed: (event, context) => record(event.orderId, event, context),
    onInventoryReleased: (event, context) => record(event.orderId, event, context),
  };
}

/**
 * The catalog view's handler: stores a product's name, price and
 * availability when the update's version is higher than the view's, in one
 * conditional upsert (so two replicas applying two versions at once keep the
 * higher one); an older or equal version is skipped and logged.
 */
export function createCatalogViewHandlers(): CatalogViewServiceHandlers<
  CatalogViewServiceContext<OrderTables>
> {
  return {
    async applyProductUpdated(event, { tx, log }) {
      const version = Number(event.version);
      const priceMinor = Number(event.price.amountMinor);
      if (!Number.isSafeInteger(version) || !Number.isSafeInteger(priceMinor)) {
        throw new PermanentError(
          `ProductUpdated of ${JSON.stringify(event.productId)} version ${event.version} has a version or price beyond what the view stores exactly (2^53 - 1)`,
        );
      }
      const result = await tx.db
        .insertInto("catalog_view")
        .values({
          product_id: event.productId,
          version,
          name: event.name,
          price_currency: event.price.currencyCode,
          price_minor: priceMinor,
          active: event.active ? 1 : 0,
          updated_at: timestampMs(event.updatedAt),
        })
        .onConflict((conflict) =>
          conflict
            .column("product_id")
            .doUpdateSet((eb) => ({
              version: eb.ref("excluded.version"),
              name: eb.ref("excluded.name"),
              price_currency: eb.ref("excluded.price_currency"),
              price_minor: eb.ref("excluded.price_minor"),
              active: eb.ref("excluded.active"),
              updated_at: eb.ref("excluded.updated_at"),
            }))
            .where("catalog_view.version", "<", (eb) => eb.ref("excluded.version")),
        )
        .executeTakeFirst();
      if (Number(result.numInsertedOrUpdatedRows ?? 0n) === 0) {
        const held = await tx.db
          .selectFrom("catalog_view")
          .select("version")
          .where("product_id", "=", event.productId)
          .executeTakeFirst();
        log.info(
          { productId: event.productId, version, heldVersion: held?.version },
          "skipped stale product update",
        );
        return;
      }
      log.info(
        { productId: event.productId, version, active: event.active },
        "catalog view updated",
      );
    },
  };
}

/**
 * The order service: the OrderService API on `ORDER_API_PORT` (default
 * 8080, 0 = a free port, reported as `port` in the ready line), the saga's
 * six subscriptions and the catalog view's subscription, all on the
 * service's store.
 */
export const definition: ServiceDefinition<OrderTables> = {
  name: "order",
  migrations,
  async start({ pubsub, store, log, env }) {
    const port = portFromEnv(env, ORDER_API_PORT_ENV, DEFAULT_ORDER_API_PORT);
    const saga = subscribeOrderSagaService(
      pubsub,
      createOrderSagaHandlers({ dialect: store.dialect }),
      { store, logger: log },
    );
    const catalog = subscribeCatalogViewService(pubsub, createCatalogViewHandlers(), {
      store,
      logger: log,
    });
    let api: Awaited<ReturnType<typeof startConnectServer>>;
    try {
      const impl = createOrderServiceImpl({ store, log });
      api = await startConnectServer({
        port,
        ...apiAccessFromEnv(env),
        routes: (router) => {
          router.service(OrderService, impl);
        },
      });
    } catch (error) {
      await saga.close();
      await catalog.close();
      throw error;
    }
    // The API first, so no new orders arrive while the consumers finish.
    return { closables: [api, saga, catalog], ready: { port: api.port } };
  },
};
