import { create } from "@bufbuild/protobuf";
import type { PubSub } from "@google-cloud/pubsub";
import { describe, expect, expectTypeOf, it } from "vitest";
import { OrderPlacedSchema } from "../../../generated/checkout/v1/order_events_pb.js";
import { encodeOrderPlaced } from "../../../generated/checkout/v1/order_events_pe.js";
import { startConsumer } from "../../../runtime/src/consumer.js";
import {
  bindHandler,
  type HandlerContext,
  type TransactionContext,
  withTransaction,
} from "../../../runtime/src/delivery/binding.js";
import { Code, isProtoeventsError } from "../../../runtime/src/errors.js";
import { createLogger } from "../../../runtime/src/logger.js";
import type { Store, StoreTransaction } from "../../../runtime/src/store/store.js";
import { validOrderPlaced } from "../../helpers/orders.js";
import { testStoreLocation } from "../../helpers/stores.js";
import {
  chargesMigrations,
  fastSubscription,
  type TestDatabase,
} from "../../helpers/test-contracts.js";

const subscription = fastSubscription("binding.charge-order");
const log = createLogger({ test: "binding" });
const delivery = {
  deliveryAttempt: 1,
  messageId: "m-1",
  publishTime: new Date("2026-11-26T10:00:00Z"),
  log,
};

function message() {
  return encodeOrderPlaced(create(OrderPlacedSchema, validOrderPlaced("ord-9")), {
    source: "order",
    id: "evt-9",
  });
}

describe("bindHandler", () => {
  it("should decode with its subscription's contract and run the handler with the typed event and the whole context", async () => {
    const seen: unknown[] = [];
    const binding = bindHandler(subscription, (event, context) => {
      expectTypeOf(event.orderId).toEqualTypeOf<string>();
      expectTypeOf(context).toMatchTypeOf<HandlerContext<typeof OrderPlacedSchema>>();
      seen.push(event.orderId, context);
    });
    const decoded = binding.decode(message());
    expect(decoded.envelope).toMatchObject({ id: "evt-9", type: "checkout.v1.OrderPlaced" });
    expect(seen).toEqual([]);
    await decoded.run(delivery, {});
    expect(seen).toEqual(["ord-9", { ...delivery, envelope: decoded.envelope, subscription }]);
  });

  it("should hand the handler what the consumer adds, the store transaction", async () => {
    const fakeTx: Pick<StoreTransaction, "claim"> = { claim: async () => true };
    const seen: unknown[] = [];
    const binding = bindHandler(subscription, (_event, context) => void seen.push(context));
    await binding.decode(message()).run(delivery, { tx: fakeTx });
    expect(seen).toEqual([expect.objectContaining({ tx: fakeTx, messageId: "m-1" })]);
  });

  it("should refuse what is not a valid event of its subscription before any handler runs", () => {
    let runs = 0;
    const binding = bindHandler(subscription, () => {
      runs++;
    });
    const garbage = { ...message(), data: Buffer.from([0xff, 0xff, 0xff]) };
    const broken = encodeOrderPlaced(
      create(OrderPlacedSchema, { ...validOrderPlaced("ord-9"), items: [] }),
      { source: "order" },
    );
    const unknownType = {
      ...message(),
      attributes: { ...message().attributes, "ce-type": "shop.v9.Unknown" },
    };
    const noEnvelope = { data: Buffer.alloc(0), attributes: {} };
    const codes = [garbage, broken, unknownType, noEnvelope].map((m) => {
      try {
        binding.decode(m);
        return "decoded";
      } catch (error) {
        return isProtoeventsError(error) && error.permanent ? error.code : "not permanent";
      }
    });
    expect(codes).toEqual([
      Code.DecodeFailed,
      Code.ValidationFailed,
      Code.UnknownEventType,
      Code.DecodeFailed,
    ]);
    expect(runs).toBe(0);
  });
});

describe("withTransaction", () => {
  it("should add what the application builds from the store transaction", async () => {
    const where = await testStoreLocation("sqlite");
    const store = await where.open<TestDatabase>(chargesMigrations);
    try {
      const base = { ...delivery, envelope: binding().envelope, subscription };
      await store.transaction(async (tx) => {
        const context = withTransaction({ ...base, tx }, (t) => ({ tx: t, publisher: "p" }));
        expect(context).toEqual({ ...base, tx, publisher: "p" });
        expectTypeOf(context.tx).toEqualTypeOf<StoreTransaction<TestDatabase>>();
      });
    } finally {
      await store.close();
      await where.remove();
    }
  });

  it("should refuse to run without a transaction", () => {
    const base = { ...delivery, envelope: binding().envelope, subscription };
    expect(() => withTransaction(base, (tx) => ({ tx }))).toThrow(
      "a handler that needs a store transaction ran on a consumer started without a store",
    );
  });

  function binding() {
    return bindHandler(subscription, () => {}).decode(message());
  }
});

describe("startConsumer's types", () => {
  it("should admit a handler that needs a transaction only with a store of its tables (checked by tsc)", () => {
    // Never run: `npm run typecheck` checks the calls, and fails on an
    // expected error that is not one.
    const calls = (
      pubsub: PubSub,
      store: Store<TestDatabase>,
      other: Store<{ readonly other: { readonly id: string } }>,
    ): void => {
      const needsTx = bindHandler(
        subscription,
        (_event, context: TransactionContext<TestDatabase>) => {
          void context.tx.db.selectFrom("charges");
        },
      );
      const plain = bindHandler(subscription, () => {});
      startConsumer(pubsub, [needsTx, plain], { store });
      startConsumer(pubsub, [plain]);
      // @ts-expect-error a handler that needs a transaction, on a consumer without a store
      startConsumer(pubsub, [needsTx]);
      // @ts-expect-error a handler written for other tables than the store's
      startConsumer(pubsub, [needsTx], { store: other });
    };
    expectTypeOf(calls).parameter(1).toEqualTypeOf<Store<TestDatabase>>();
  });
});
