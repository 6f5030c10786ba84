import type { Kysely, Migration } from "kysely";
import { PaymentServiceSubscriptions } from "../../generated/checkout/v1/applications_pe.js";
import type { OrderPlacedSchema } from "../../generated/checkout/v1/order_events_pb.js";
import { registry } from "../../generated/protoevents_registry.js";
import type { ContractRegistry, SubscriptionContract } from "../../runtime/src/contract.js";

/**
 * A copy of the payment service's OrderPlaced subscription with Pub/Sub's
 * shortest timings (ack deadline 10 s, backoff 0–1 s), so that redelivery
 * tests take seconds rather than minutes.
 */
export function fastSubscription(
  name: string,
  overrides: Partial<SubscriptionContract<typeof OrderPlacedSchema>> = {},
): SubscriptionContract<typeof OrderPlacedSchema> {
  return {
    ...PaymentServiceSubscriptions.chargeOrder,
    name,
    ackDeadlineSeconds: 10,
    minBackoffSeconds: 0,
    maxBackoffSeconds: 1,
    deadLetter: { topic: `${name}.dead-letter`, subscription: `${name}.dead-letter` },
    ...overrides,
  };
}

/** The checkout's events plus one test application consuming `subscriptions`. */
export function registryWith(...subscriptions: SubscriptionContract[]): ContractRegistry {
  return {
    events: registry.events,
    applications: [
      {
        kind: "application",
        name: "test",
        service: "test.TestService",
        publishes: [],
        subscriptions,
      },
    ],
  };
}

/** The effect table of the exactly-once tests: one row per handler run, no unique key, so a double run shows. */
export interface ChargesTable {
  readonly event_id: string;
  readonly order_id: string;
  readonly worker: string;
}

export interface TestDatabase {
  readonly charges: ChargesTable;
}

/** The service migration that creates {@link ChargesTable}. */
export const chargesMigrations: Record<string, Migration> = {
  "001_charges": {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable("charges")
        .addColumn("event_id", "text", (c) => c.notNull())
        .addColumn("order_id", "text", (c) => c.notNull())
        .addColumn("worker", "text", (c) => c.notNull())
        .execute();
    },
  },
};
