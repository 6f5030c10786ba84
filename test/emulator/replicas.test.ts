import { create, fromBinary } from "@bufbuild/protobuf";
import type { Message, PubSub } from "@google-cloud/pubsub";
import { describe, expect, inject, it } from "vitest";
import {
  createOrderSagaServicePublisher,
  orderSagaServiceOutbox,
} from "../../generated/checkout/v1/applications_pe.js";
import { OrderPlacedSchema } from "../../generated/checkout/v1/order_events_pb.js";
import {
  encodeOrderPlaced,
  OrderPlacedEvent,
} from "../../generated/checkout/v1/order_events_pe.js";
import { type Emulator, freePort, startEmulator } from "../../runtime/src/emulator.js";
import { createLogger } from "../../runtime/src/logger.js";
import { startOutboxRelay } from "../../runtime/src/outbox.js";
import { provision } from "../../runtime/src/provision.js";
import { createPubSub } from "../../runtime/src/pubsub-client.js";
import type { Store } from "../../runtime/src/store/store.js";
import { afterThisTest } from "../helpers/cleanup.js";
import { validOrderPlaced } from "../helpers/orders.js";
import { startTsProcess, type TestProcess } from "../helpers/processes.js";
import { testPubSub } from "../helpers/pubsub.js";
import { PG_URL, testStoreLocation, uniqueName } from "../helpers/stores.js";
import {
  chargesMigrations,
  fastSubscription,
  registryWith,
  type TestDatabase,
} from "../helpers/test-contracts.js";
import { waitFor } from "../helpers/wait.js";

const quiet = createLogger({ test: "replicas" });
quiet.level = "silent";

/** A store location, a reader on it, a provisioned project, and a way to start consumer processes. */
async function setUp(dialect: "sqlite" | "postgres", subscription: string) {
  const where = await testStoreLocation(dialect);
  afterThisTest(() => where.remove());
  const reader: Store<TestDatabase> = await where.open<TestDatabase>(chargesMigrations);
  afterThisTest(() => reader.close());
  const pubsub: PubSub = testPubSub("replicas");
  afterThisTest(() => pubsub.close());
  await provision(pubsub, registryWith(fastSubscription(subscription)), { dryRun: false });
  const consumer = (worker: string, extra: Record<string, string> = {}): TestProcess => {
    const child = startTsProcess("test/fixtures/consumer-process.ts", {
      PUBSUB_EMULATOR_HOST: inject("emulatorHost"),
      PROJECT: pubsub.projectId,
      SUBSCRIPTION: subscription,
      WORKER: worker,
      STORE: `${dialect}:${where.name}`,
      PG_URL,
      ...extra,
    });
    afterThisTest(() => child.stop());
    return child;
  };
  const charges = () =>
    reader.db.selectFrom("charges").select(["event_id", "order_id", "worker"]).execute();
  return { pubsub, consumer, charges, reader };
}

/** Lines `<result> <ce-id>` a consumer process printed. */
function deliveries(child: TestProcess): Array<{ result: string; eventId: string }> {
  return child
    .output()
    .split("\n")
    .map((line) => line.split(" "))
    .filter(
      (parts) => parts.length === 2 && ["acked", "duplicate", "nacked"].includes(parts[0] ?? ""),
    )
    .map(([result, eventId]) => ({ result: result as string, eventId: eventId as string }));
}

describe("a consumer killed between commit and ack", () => {
  it("should recognise the redelivery and ack it without a second effect", async () => {
    const { pubsub, consumer, charges } = await setUp("sqlite", uniqueName("crash"));
    // One stream: when a process holding two streaming pulls dies, the
    // emulator hands the expired message to the dead streams first and
    // redelivery takes three ack deadlines (≈33 s) instead of one (≈10 s).
    const doomed = consumer("doomed", { CRASH_AFTER_COMMIT: "1", MAX_STREAMS: "1" });
    await doomed.waitFor("ready");
    const published = await createOrderSagaServicePublisher(pubsub).publishOrderPlaced(
      validOrderPlaced("ord-crash"),
    );

    const exit = await doomed.exited;
    expect(exit.signal).toBe("SIGKILL");
    expect(await charges()).toEqual([
      { event_id: published.id, order_id: "ord-crash", worker: "doomed" },
    ]);

    // The ack never left, so Pub/Sub redelivers once the 10 s ack deadline
    // passes. The bound is only a safety net for a loaded machine.
    const survivor = consumer("survivor");
    await survivor.waitFor(`duplicate ${published.id}`, 100_000);
    expect(deliveries(survivor)).toEqual([{ result: "duplicate", eventId: published.id }]);
    expect(await charges()).toEqual([
      { event_id: published.id, order_id: "ord-crash", worker: "doomed" },
    ]);
  }, 150_000);
});

describe("two consumer processes on one subscription with PostgreSQL", () => {
  it("should apply 2,000 events exactly once with 20% duplicates injected concurrently", async () => {
    const { pubsub, consumer, charges } = await setUp("postgres", uniqueName("replicas"));
    const workers = [consumer("w1"), consumer("w2")];
    await Promise.all(workers.map((w) => w.waitFor("ready")));

    const topic = pubsub.topic(OrderPlacedEvent.topic, {
      batching: { maxMessages: 100, maxMilliseconds: 10 },
    });
    const messages = Array.from({ length: 2000 }, (_, i) =>
      encodeOrderPlaced(
        create(OrderPlacedSchema, validOrderPlaced(`ord-${String(i).padStart(4, "0")}`)),
        {
          source: "test",
          id: `evt-${String(i).padStart(4, "0")}`,
        },
      ),
    );
    // Every fifth event again, interleaved with the originals so both copies
    // are in flight at the same moment, often on different replicas.
    const sends = messages.flatMap((message, i) => (i % 5 === 0 ? [message, message] : [message]));
    expect(sends).toHaveLength(2400);
    await Promise.all(sends.map((message) => topic.publishMessage(message)));

    const handled = () =>
      workers.flatMap(deliveries).filter((d) => d.result === "acked" || d.result === "duplicate");
    await waitFor("all 2,400 deliveries to be handled", () => handled().length >= 2400, 90_000);
    const rows = await charges();
    expect(rows).toHaveLength(2000);
    expect(new Set(rows.map((r) => r.event_id)).size).toBe(2000);
    const acked = handled().filter((d) => d.result === "acked");
    expect(acked).toHaveLength(2000);
    expect(handled().filter((d) => d.result === "duplicate").length).toBeGreaterThanOrEqual(400);
  });
});

describe("the outbox relay across a Pub/Sub outage", () => {
  it("should deliver 500 events written while the emulator was down exactly once each, in order per key", async () => {
    const port = await freePort();
    let emulator: Emulator = await startEmulator({ port });
    afterThisTest(() => emulator.stop());
    const pubsub = createPubSub({
      projectId: uniqueName("outage").replace(/_/g, "-"),
      emulatorHost: `127.0.0.1:${port}`,
    });
    afterThisTest(() => pubsub.close());
    const subscription = fastSubscription(uniqueName("outage"), { ordered: true });
    const contracts = registryWith(subscription);
    await provision(pubsub, contracts, { dryRun: false });
    const where = await testStoreLocation("sqlite");
    afterThisTest(() => where.remove());
    const store = await where.open<TestDatabase>(chargesMigrations);
    afterThisTest(() => store.close());
    const relay = startOutboxRelay(pubsub, store, {
      minBackoffMs: 50,
      maxBackoffMs: 500,
      pollIntervalMs: 100,
      logger: quiet,
    });
    afterThisTest(() => relay.stop());

    await emulator.stop();
    const written: Array<{ id: string; key: string; seq: number }> = [];
    for (let i = 0; i < 500; i++) {
      const key = `ord-${i % 10}`;
      await store.transaction(async (tx) => {
        const order = validOrderPlaced(key);
        const result = await orderSagaServiceOutbox(tx).publishOrderPlaced({
          ...order,
          customerId: `seq-${i}`,
        });
        written.push({ id: result.id, key, seq: i });
      });
    }
    expect((await store.pendingOutbox(1000)).length).toBe(500);

    // A new, empty emulator on the same port. Provision it while holding the
    // relay's lock, so no event reaches a topic before its subscription exists.
    emulator = await startEmulator({ port });
    for (let provisioned = false; !provisioned; ) {
      provisioned =
        (await store.lockOutbox(async () => {
          await provision(pubsub, contracts, { dryRun: false });
          return true;
        })) === true;
      if (!provisioned) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }

    const received: Array<{ id: string; key: string; customerId: string }> = [];
    const sub = pubsub.subscription(subscription.name);
    sub.on("message", (message: Message) => {
      received.push({
        id: message.attributes["ce-id"] ?? "",
        key: message.orderingKey ?? "",
        customerId: decodeCustomer(message),
      });
      message.ack();
    });
    sub.on("error", () => {});
    afterThisTest(() => sub.close());

    await waitFor("500 relayed events", () => received.length >= 500, 60_000);
    await relay.drain();
    expect(await store.pendingOutbox(10)).toEqual([]);
    // Exactly once per ce-id.
    expect(received).toHaveLength(500);
    expect(new Set(received.map((r) => r.id))).toEqual(new Set(written.map((w) => w.id)));
    // In write order per ordering key.
    for (let k = 0; k < 10; k++) {
      const key = `ord-${k}`;
      expect(received.filter((r) => r.key === key).map((r) => r.customerId)).toEqual(
        written.filter((w) => w.key === key).map((w) => `seq-${w.seq}`),
      );
    }
  });
});

function decodeCustomer(message: Message): string {
  return fromBinary(OrderPlacedSchema, message.data).customerId;
}
