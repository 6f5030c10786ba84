/**
 * The order service's Connect API: PlaceOrder writes the order's first event
 * and its OrderPlaced in one store transaction; GetOrder and GetOrderHistory
 * read the order's event log.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code as ConnectCode, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  Code,
  isProtoeventsError,
  type Logger,
  ProtoeventsError,
  type Store,
  uuidv7,
} from "@protoevents/runtime";
import { orderSagaServiceOutbox } from "../../generated/checkout/v1/applications_pe.js";
import { MoneySchema } from "../../generated/checkout/v1/common_pb.js";
import {
  GetOrderHistoryResponseSchema,
  GetOrderResponseSchema,
  type Order,
  type OrderService,
  type PlaceOrderRequest,
  PlaceOrderResponseSchema,
} from "../../generated/checkout/v1/order_api_pb.js";
import { OrderPlacedSchema } from "../../generated/checkout/v1/order_events_pb.js";
import { foldOrder, type OrderLogEntry } from "./fold-order.js";
import { appendOrderLog, loadOrderLog, toHistoryEntry } from "./order-log.js";
import { type CatalogProduct, priceOrder, productIdsOf } from "./price-order.js";
import type { OrderDb, OrderTables } from "./tables.js";

/** What the API needs. */
export interface OrderApiDeps {
  readonly store: Store<OrderTables>;
  readonly log: Logger;
  /** The clock: placed_at and the OrderPlaced's ce-time. @default () => new Date() */
  readonly now?: () => Date;
}

/** A new order id: `ord_` and a UUIDv7, so ids sort by creation time. */
export function newOrderId(): string {
  return `ord_${uuidv7()}`;
}

/**
 * The implementation of checkout.v1.OrderService:
 *
 * - PlaceOrder: a repeated `request_id` (same customer) returns the order it
 *   placed first, storing and publishing nothing; otherwise the request is
 *   checked and priced against the catalog view ({@link priceOrder}): any
 *   problem fails with INVALID_ARGUMENT naming every bad field, and nothing
 *   is stored or published. A good request becomes order `ord_<uuidv7>`: in
 *   one store transaction its `orders` row, its OrderPlaced in the outbox and
 *   as the first entry of its event log. A `request_id` already used by
 *   another customer fails with ALREADY_EXISTS.
 * - GetOrder: the fold of the order's log; NOT_FOUND for an unknown id.
 * - GetOrderHistory: the log, oldest first, payloads as JSON with personal
 *   data redacted; NOT_FOUND for an unknown id.
 *
 * A store that cannot be reached answers UNAVAILABLE; anything unexpected
 * INTERNAL, logged without the request's personal data.
 */
export function createOrderServiceImpl(deps: OrderApiDeps): ServiceImpl<typeof OrderService> {
  const { store, log } = deps;
  const now = deps.now ?? (() => new Date());

  async function findByRequestId(request: PlaceOrderRequest): Promise<Order | undefined> {
    const row = await store.db
      .selectFrom("orders")
      .select(["order_id", "customer_id"])
      .where("request_id", "=", request.requestId)
      .executeTakeFirst();
    if (row === undefined) {
      return undefined;
    }
    if (row.customer_id !== request.customerId) {
      throw new ConnectError(
        "request_id: already used for another customer's order; choose a new key for every order",
        ConnectCode.AlreadyExists,
      );
    }
    return foldOrder(await loadOrderLog(store.db, row.order_id));
  }

  async function placeOrder(request: PlaceOrderRequest): Promise<Order> {
    const requestId = request.requestId;
    if (requestId !== "") {
      const existing = await findByRequestId(request);
      if (existing !== undefined) {
        log.info({ op: "place-order", orderId: existing.orderId }, "repeated request_id");
        return existing;
      }
    }
    const priced = priceOrder(request, await loadCatalog(store.db, productIdsOf(request)));
    if (priced.kind === "invalid") {
      // The problems name fields and product ids, never the values of pii fields.
      log.info({ op: "place-order", problems: priced.problems }, "order refused");
      throw new ConnectError(priced.problems.join("; "), ConnectCode.InvalidArgument);
    }
    const placedAt = now();
    const orderId = newOrderId();
    const placed = create(OrderPlacedSchema, {
      orderId,
      customerId: request.customerId,
      customerEmail: request.customerEmail,
      items: [...priced.items],
      total: priced.total,
      ...(request.shippingAddress === undefined
        ? {}
        : { shippingAddress: request.shippingAddress }),
      paymentToken: request.paymentToken,
      placedAt: timestampFromDate(placedAt),
    });
    let entry: OrderLogEntry;
    try {
      entry = await store.transaction(async (tx) => {
        await tx.db
          .insertInto("orders")
          .values({
            order_id: orderId,
            request_id: requestId === "" ? null : requestId,
            customer_id: request.customerId,
            created_at: placedAt.getTime(),
          })
          .execute();
        const { id } = await orderSagaServiceOutbox(tx).publishOrderPlaced(placed, {
          time: placedAt,
        });
        const first: OrderLogEntry = {
          sequence: 1,
          eventId: id,
          occurredAt: placedAt.getTime(),
          event: placed,
        };
        await appendOrderLog(tx.db, orderId, first);
        return first;
      });
    } catch (error) {
      // Two requests with one request_id raced past the lookup: the unique
      // index let one commit; answer this one with that order.
      if (requestId !== "") {
        const existing = await findByRequestId(request);
        if (existing !== undefined) {
          return existing;
        }
      }
      if (isProtoeventsError(error) && error.code === Code.ValidationFailed) {
        throw new ConnectError(error.rawMessage, ConnectCode.InvalidArgument);
      }
      throw error;
    }
    log.info(
      {
        op: "place-order",
        orderId,
        customerId: request.customerId,
        items: priced.items.length,
        total: `${priced.total.amountMinor} ${priced.total.currencyCode}`,
      },
      "order placed",
    );
    return foldOrder([entry]);
  }

  async function orderLog(orderId: string): Promise<OrderLogEntry[]> {
    if (orderId === "") {
      throw new ConnectError("order_id: required", ConnectCode.InvalidArgument);
    }
    const entries = await loadOrderLog(store.db, orderId);
    if (entries.length === 0) {
      throw new ConnectError(`order ${JSON.stringify(orderId)} not found`, ConnectCode.NotFound);
    }
    return entries;
  }

  return {
    placeOrder: (request) =>
      answer(log, "place-order", async () =>
        create(PlaceOrderResponseSchema, { order: await placeOrder(request) }),
      ),
    getOrder: (request) =>
      answer(log, "get-order", async () =>
        create(GetOrderResponseSchema, { order: foldOrder(await orderLog(request.orderId)) }),
      ),
    getOrderHistory: (request) =>
      answer(log, "get-order-history", async () =>
        create(GetOrderHistoryResponseSchema, {
          entries: (await orderLog(request.orderId)).map(toHistoryEntry),
        }),
      ),
  };
}

/** The catalog view's entries for these products. */
export async function loadCatalog(
  db: OrderDb,
  productIds: readonly string[],
): Promise<Map<string, CatalogProduct>> {
  const catalog = new Map<string, CatalogProduct>();
  if (productIds.length === 0) {
    return catalog;
  }
  const rows = await db
    .selectFrom("catalog_view")
    .selectAll()
    .where("product_id", "in", productIds)
    .execute();
  for (const row of rows) {
    catalog.set(row.product_id, {
      productId: row.product_id,
      version: Number(row.version),
      name: row.name,
      price: create(MoneySchema, {
        currencyCode: row.price_currency,
        amountMinor: BigInt(row.price_minor),
      }),
      active: Number(row.active) === 1,
    });
  }
  return catalog;
}

/** Run an API call; turn what is not already a ConnectError into one with a fitting code. */
async function answer<T>(log: Logger, op: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof ConnectError) {
      throw error;
    }
    const failure = ProtoeventsError.from(error);
    if (failure.code === Code.StoreUnavailable) {
      log.warn({ op, err: failure }, "store unavailable");
      throw new ConnectError(
        "the order store is unavailable; retry later",
        ConnectCode.Unavailable,
        undefined,
        undefined,
        error,
      );
    }
    log.error({ op, err: failure }, "request failed");
    throw new ConnectError("internal error", ConnectCode.Internal, undefined, undefined, error);
  }
}
