import { create } from "@bufbuild/protobuf";
import type { PubSub } from "@google-cloud/pubsub";
import { describe, expect, it } from "vitest";
import {
  createOrderSagaServicePublisher,
  PaymentServiceSubscriptions,
} from "../../generated/checkout/v1/applications_pe.js";
import { OrderPlacedSchema } from "../../generated/checkout/v1/order_events_pb.js";
import { encodeOrderPlaced } from "../../generated/checkout/v1/order_events_pe.js";
import { registry } from "../../generated/protoevents_registry.js";
import {
  bindHandler,
  type Consumer,
  type DeliveryOutcome,
  REPLAY_FOR_ATTRIBUTE,
  startConsumer,
} from "../../runtime/src/consumer.js";
import type { ContractRegistry } from "../../runtime/src/contract.js";
import {
  type DeadLetter,
  type DeadLetterSummary,
  deadLetterReason,
  EXHAUSTED_RETRIES,
  listDeadLetters,
  replayAttributes,
  replayDeadLetters,
  selectsDeadLetter,
  showDeadLetters,
  UNKNOWN_REASON,
  viewDeadLetter,
} from "../../runtime/src/dead-letters.js";
import type { Envelope } from "../../runtime/src/envelope.js";
import { Code, isProtoeventsError, PermanentError } from "../../runtime/src/errors.js";
import { provision } from "../../runtime/src/provision.js";
import type { Store } from "../../runtime/src/store/store.js";
import { afterThisTest } from "../helpers/cleanup.js";
import { captureLogs } from "../helpers/logs.js";
import { validOrderPlaced } from "../helpers/orders.js";
import { testPubSub } from "../helpers/pubsub.js";
import { testStoreLocation } from "../helpers/stores.js";
import {
  chargesMigrations,
  fastSubscription,
  registryWith,
  type TestDatabase,
} from "../helpers/test-contracts.js";
import { waitFor } from "../helpers/wait.js";

async function provisioned(contracts: ContractRegistry): Promise<PubSub> {
  const pubsub = testPubSub("dlq");
  afterThisTest(() => pubsub.close());
  await provision(pubsub, contracts, { dryRun: false });
  return pubsub;
}

function track(consumer: Consumer): Consumer {
  afterThisTest(() => consumer.close());
  return consumer;
}

async function sqliteStore(): Promise<Store<TestDatabase>> {
  const location = await testStoreLocation("sqlite");
  const store = await location.open<TestDatabase>(chargesMigrations);
  afterThisTest(() => location.remove());
  afterThisTest(() => store.close());
  return store;
}

function summaryOf(summaries: DeadLetterSummary[], subscription: string): DeadLetterSummary {
  const summary = summaries.find((s) => s.subscription === subscription);
  expect(summary).toBeDefined();
  return summary as DeadLetterSummary;
}

/** Poll the dead-letter summary until `check` passes. */
async function listUntil(
  pubsub: PubSub,
  contracts: ContractRegistry,
  what: string,
  check: (summaries: DeadLetterSummary[]) => boolean,
): Promise<DeadLetterSummary[]> {
  const deadline = Date.now() + 45_000;
  for (;;) {
    const summaries = await listDeadLetters(pubsub, contracts);
    if (check(summaries)) {
      return summaries;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(summaries)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe("dead-letter tooling on the emulator", () => {
  it("should list a poison message by reason, then replay it after the fix: processed again only where it failed", async () => {
    const flaky = fastSubscription("test.flaky");
    const healthy = fastSubscription("test.healthy");
    const contracts = registryWith(flaky, healthy);
    const pubsub = await provisioned(contracts);
    const store = await sqliteStore();

    let fixed = false;
    const flakyRuns: Array<{ orderId: string; envelope: Envelope }> = [];
    const healthyRuns: string[] = [];
    const flakyOutcomes: DeliveryOutcome[] = [];
    const healthyOutcomes: DeliveryOutcome[] = [];
    track(
      startConsumer(
        pubsub,
        [
          bindHandler(flaky, async (event, context) => {
            if (!fixed && event.orderId === "ord-poison") {
              throw new PermanentError("bug #42: cannot charge an order with two mice");
            }
            flakyRuns.push({ orderId: event.orderId, envelope: context.envelope });
          }),
        ],
        { store, onDelivery: (o) => flakyOutcomes.push(o) },
      ),
    );
    track(
      startConsumer(
        pubsub,
        [bindHandler(healthy, (event) => void healthyRuns.push(event.orderId))],
        // With an inbox: the replay is a duplicate there.
        { store, onDelivery: (o) => healthyOutcomes.push(o) },
      ),
    );
    const publisher = createOrderSagaServicePublisher(pubsub);
    const poison = await publisher.publishOrderPlaced(validOrderPlaced("ord-poison"));
    await publisher.publishOrderPlaced(validOrderPlaced("ord-fine"));
    await waitFor(
      "the poison message dead-lettered and both orders handled by the healthy subscription",
      () =>
        flakyOutcomes.some((o) => o.result === "dead-lettered") &&
        flakyOutcomes.some((o) => o.result === "acked") &&
        healthyRuns.length === 2,
    );

    // list: the poison message, its reason, count and age; nothing else anywhere.
    const summaries = await listUntil(
      pubsub,
      contracts,
      "the dead letter",
      (s) => summaryOf(s, "test.flaky").count === 1,
    );
    expect(summaryOf(summaries, "test.flaky")).toMatchObject({
      deadLetterSubscription: "test.flaky.dead-letter",
      count: 1,
      truncated: false,
      groups: [
        {
          reason: "permanent",
          count: 1,
          deliveryCounts: [1],
          eventTypes: ["checkout.v1.OrderPlaced"],
        },
      ],
    });
    const oldest = summaryOf(summaries, "test.flaky").oldest as string;
    expect(Date.now() - Date.parse(oldest)).toBeLessThan(60_000);
    expect(summaryOf(summaries, "test.healthy").count).toBe(0);

    // show: decoded as OrderPlaced, pii redacted, reason and detail.
    const views = await showDeadLetters(pubsub, contracts, { subscriptions: ["test.flaky"] });
    expect(views).toHaveLength(1);
    const [view] = views;
    expect(view?.kind).toBe("decoded");
    if (view?.kind !== "decoded") {
      throw new Error("not decoded");
    }
    expect(view.reason).toBe("permanent");
    expect(view.detail).toBe("bug #42: cannot charge an order with two mice");
    expect(view.event).toMatchObject({
      eventId: poison.id,
      eventType: "checkout.v1.OrderPlaced",
      source: "order",
      subject: "ord-poison",
      payload: {
        orderId: "ord-poison",
        customerEmail: "[redacted]",
        paymentToken: "[redacted]",
        shippingAddress: { line1: "[redacted]", city: "London" },
      },
    });
    expect(view.violations).toEqual([]);
    const shown = JSON.stringify(views);
    expect(shown).not.toContain("ada@example.com");
    expect(shown).not.toContain("tok_visa_4242");
    expect(shown).not.toContain("St James");

    // A dry run changes nothing; reading consumed nothing.
    const dry = await replayDeadLetters(pubsub, contracts, { reason: "permanent", dryRun: true });
    expect(dry.outcomes.map((o) => [o.result, o.eventId, o.topic])).toEqual([
      ["would-replay", poison.id, "checkout.order-placed"],
    ]);
    expect(summaryOf(await listDeadLetters(pubsub, contracts), "test.flaky").count).toBe(1);
    expect(flakyRuns.map((r) => r.orderId)).toEqual(["ord-fine"]);

    // The fix ships; replay.
    fixed = true;
    const report = await replayDeadLetters(pubsub, contracts, { reason: "permanent" });
    expect(report.outcomes).toEqual([
      expect.objectContaining({
        subscription: "test.flaky",
        eventId: poison.id,
        reason: "permanent",
        topic: "checkout.order-placed",
        result: "replayed",
        replayMessageId: expect.any(String),
      }),
    ]);
    await waitFor("the replay handled by the failing subscription", () =>
      flakyRuns.some((r) => r.orderId === "ord-poison"),
    );
    await waitFor("the replay recognised by the healthy subscription's inbox", () =>
      healthyOutcomes.some((o) => o.result === "duplicate" && o.eventId === poison.id),
    );
    const replayed = flakyRuns.find((r) => r.orderId === "ord-poison");
    expect(replayed?.envelope.id).toBe(poison.id);
    expect(replayed?.envelope.orderingKey).toBe("ord-poison");
    // The healthy subscription handled the original once and never the replay.
    expect(healthyRuns.filter((id) => id === "ord-poison")).toHaveLength(1);
    expect(
      healthyOutcomes.filter((o) => o.eventId === poison.id).map((o) => [o.result, o.replayFor]),
    ).toEqual([
      ["acked", undefined],
      ["duplicate", "test.flaky"],
    ]);
    // Acked in the dead-letter subscription: gone.
    expect(summaryOf(await listDeadLetters(pubsub, contracts), "test.flaky").count).toBe(0);

    // A second copy of the replay (an operator replaying twice, a redelivery)
    // keeps the ce-id, so the inbox recognises it: the handler does not run again.
    const again = encodeOrderPlaced(create(OrderPlacedSchema, validOrderPlaced("ord-poison")), {
      source: "order",
      id: poison.id,
    });
    await pubsub.topic("checkout.order-placed").publishMessage({
      data: again.data,
      attributes: { ...again.attributes, [REPLAY_FOR_ATTRIBUTE]: "test.flaky" },
    });
    await waitFor("the second copy", () =>
      flakyOutcomes.some((o) => o.result === "duplicate" && o.eventId === poison.id),
    );
    expect(flakyRuns.filter((r) => r.orderId === "ord-poison")).toHaveLength(1);
  });

  it("should never drop an event for a replay marker anyone could forge: every subscription processes what it never saw", async () => {
    const marked = fastSubscription("test.marked");
    const other = fastSubscription("test.other");
    const loose = fastSubscription("test.loose");
    const contracts = registryWith(marked, other, loose);
    const pubsub = await provisioned(contracts);
    const store = await sqliteStore();
    const { logger, lines } = captureLogs("info");
    const runs: Record<string, string[]> = { marked: [], other: [], loose: [] };
    const outcomes: DeliveryOutcome[] = [];
    const onDelivery = (o: DeliveryOutcome) => outcomes.push(o);
    track(
      startConsumer(
        pubsub,
        [
          bindHandler(marked, (e) => void runs.marked?.push(e.orderId)),
          bindHandler(other, (e) => void runs.other?.push(e.orderId)),
        ],
        { store, logger, onDelivery },
      ),
    );
    track(
      startConsumer(pubsub, [bindHandler(loose, (e) => void runs.loose?.push(e.orderId))], {
        logger,
        onDelivery,
      }),
    );
    // A producer (or anyone with publish rights) sets the marker on an event nobody has seen.
    const forged = encodeOrderPlaced(create(OrderPlacedSchema, validOrderPlaced("ord-forged")), {
      source: "order",
    });
    await pubsub.topic("checkout.order-placed").publishMessage({
      data: forged.data,
      attributes: { ...forged.attributes, [REPLAY_FOR_ATTRIBUTE]: "test.marked" },
    });
    await waitFor("every subscription handling the event", () =>
      ["marked", "other", "loose"].every((name) => runs[name]?.includes("ord-forged")),
    );
    expect(outcomes.map((o) => [o.subscription, o.result, o.replayFor]).sort()).toEqual([
      ["test.loose", "acked", "test.marked"],
      ["test.marked", "acked", "test.marked"],
      ["test.other", "acked", "test.marked"],
    ]);
    logger.flush();
    const warned = lines().filter((l) => l.op === "replay" && l.level === 40);
    expect(warned.map((l) => [l.subscription, l.msg])).toEqual([
      [
        "test.other",
        "processed an event replayed for test.marked that test.other had never processed: the replay marker was forged, copied or misdirected",
      ],
    ]);
  });

  it("should dead-letter a message over its event's max_bytes as too_large, with its size, without decoding it", async () => {
    const limited = fastSubscription("test.limited", {
      event: { ...PaymentServiceSubscriptions.chargeOrder.event, maxBytes: 2048 },
    });
    const contracts = registryWith(limited);
    const pubsub = await provisioned(contracts);
    const runs: string[] = [];
    const outcomes: DeliveryOutcome[] = [];
    track(
      startConsumer(pubsub, [bindHandler(limited, (e) => void runs.push(e.orderId))], {
        onDelivery: (o) => outcomes.push(o),
      }),
    );
    const small = encodeOrderPlaced(create(OrderPlacedSchema, validOrderPlaced("ord-small")), {
      source: "order",
    });
    await pubsub.topic("checkout.order-placed").publishMessage(small);
    // A valid-looking envelope around 100 KB of bytes nobody should decode.
    const big = Buffer.alloc(100_000, 0x0a);
    await pubsub.topic("checkout.order-placed").publishMessage({
      data: big,
      attributes: { ...small.attributes, "ce-id": "ord-big" },
    });
    await waitFor("both delivered", () => outcomes.length === 2);
    expect(runs).toEqual(["ord-small"]);
    const refused = outcomes.find((o) => o.eventId === "ord-big");
    expect(refused?.result).toBe("dead-lettered");
    expect(refused?.error?.code).toBe(Code.TooLarge);
    await listUntil(pubsub, contracts, "the dead letter", (summaries) =>
      summaries.some((x) => x.subscription === "test.limited" && x.count === 1),
    );
    const [letter] = await showDeadLetters(pubsub, contracts, { subscriptions: ["test.limited"] });
    expect(letter?.reason).toBe("too_large");
    expect(letter?.attributes["protoevents-dead-letter-size"]).toBe("100000");
    expect(letter?.detail).toContain("is 100000 bytes, over the 2048 its contract allows");
    expect(letter?.kind).toBe("undecodable");
    if (letter?.kind === "undecodable") {
      expect(letter.data.size).toBe(100_000);
      expect(letter.data.truncated).toBe(true);
      expect(letter.data.hex).toHaveLength(2 * 4096);
    }
  });

  it("should group exhausted retries by Pub/Sub's delivery count, show undecodable messages as bytes and replay by event id", async () => {
    const exhausted = fastSubscription("test.exhausted", { maxDeliveryAttempts: 5 });
    const contracts = registryWith(exhausted);
    const pubsub = await provisioned(contracts);
    let fixed = false;
    const handled: Array<{ orderId: string; attempt: number; envelope: Envelope }> = [];
    const outcomes: DeliveryOutcome[] = [];
    track(
      startConsumer(
        pubsub,
        [
          bindHandler(exhausted, (event, context) => {
            if (!fixed) {
              throw new Error("payment gateway unavailable");
            }
            handled.push({
              orderId: event.orderId,
              attempt: context.deliveryAttempt,
              envelope: context.envelope,
            });
          }),
        ],
        { onDelivery: (o) => outcomes.push(o) },
      ),
    );
    const publisher = createOrderSagaServicePublisher(pubsub);
    const retried = await publisher.publishOrderPlaced(validOrderPlaced("ord-retry"));
    const valid = encodeOrderPlaced(create(OrderPlacedSchema, validOrderPlaced("ord-garbage")), {
      source: "raw",
    });
    const topic = pubsub.topic("checkout.order-placed");
    await topic.publishMessage({
      data: Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]),
      attributes: valid.attributes,
    });
    await topic.publishMessage({ data: Buffer.from("hello, not an event") });

    const summaries = await listUntil(
      pubsub,
      contracts,
      "three dead letters",
      (s) => summaryOf(s, "test.exhausted").count === 3,
    );
    expect(outcomes.filter((o) => o.eventId === retried.id).map((o) => o.result)).toEqual([
      "nacked",
      "nacked",
      "nacked",
      "nacked",
      "nacked",
    ]);
    expect(summaryOf(summaries, "test.exhausted").groups).toEqual([
      {
        reason: "decode_failed",
        count: 2,
        oldest: expect.any(String),
        deliveryCounts: [1],
        eventTypes: ["checkout.v1.OrderPlaced"],
      },
      {
        reason: EXHAUSTED_RETRIES,
        count: 1,
        oldest: expect.any(String),
        deliveryCounts: [5],
        eventTypes: ["checkout.v1.OrderPlaced"],
      },
    ]);

    const views = await showDeadLetters(pubsub, contracts, { reason: "decode_failed" });
    expect(views.map((v) => v.kind)).toEqual(["undecodable", "undecodable"]);
    const garbage = views.find((v) => v.attributes["ce-id"] === valid.attributes["ce-id"]);
    const bare = views.find((v) => v.attributes["ce-id"] === undefined);
    if (garbage?.kind !== "undecodable" || bare?.kind !== "undecodable") {
      throw new Error("expected two undecodable views");
    }
    expect(garbage.data).toEqual({
      size: 6,
      hex: "ffffffff0f01",
      base64: "/////w8B",
      truncated: false,
    });
    expect(garbage.error).toMatch(/cannot be decoded as application\/protobuf/);
    expect(garbage.attributes).toMatchObject({
      "ce-type": "checkout.v1.OrderPlaced",
      "protoevents-dead-letter-reason": "decode_failed",
    });
    expect(bare.data.hex).toBe(Buffer.from("hello, not an event").toString("hex"));
    expect(bare.error).toBe("no ce-type attribute: not a CloudEvent");
    expect(bare.detail).toMatch(/no ce-id attribute/);

    const exhaustedView = (await showDeadLetters(pubsub, contracts, { eventIds: [retried.id] }))[0];
    expect(exhaustedView).toMatchObject({
      kind: "decoded",
      reason: EXHAUSTED_RETRIES,
      deliveryCount: 5,
      detail: "Pub/Sub moved it after 5 delivery attempts",
    });

    // --all on a dry run: the message without ce-id cannot be replayed safely.
    const dry = await replayDeadLetters(pubsub, contracts, { all: true, dryRun: true });
    expect(dry.outcomes.map((o) => o.result).sort()).toEqual([
      "skipped",
      "would-replay",
      "would-replay",
    ]);
    expect(dry.outcomes.find((o) => o.result === "skipped")?.error).toMatch(/no ce-id/);

    fixed = true;
    const report = await replayDeadLetters(pubsub, contracts, { eventIds: [retried.id] });
    expect(report.outcomes.map((o) => [o.result, o.eventId])).toEqual([["replayed", retried.id]]);
    await waitFor("the replayed event handled", () => handled.length > 0);
    expect(handled).toEqual([
      {
        orderId: "ord-retry",
        attempt: 1,
        envelope: expect.objectContaining({ id: retried.id, orderingKey: "ord-retry" }),
      },
    ]);
    const after = summaryOf(await listDeadLetters(pubsub, contracts), "test.exhausted");
    expect(after.count).toBe(2);
    expect(after.groups.map((g) => g.reason)).toEqual(["decode_failed"]);
  });

  it("should refuse a replay that selects nothing and a subscription the contracts do not have", async () => {
    const pubsub = testPubSub("dlq-args");
    afterThisTest(() => pubsub.close());
    const refused = await replayDeadLetters(pubsub, registry, {}).catch((e: unknown) => e);
    expect(isProtoeventsError(refused) && refused.code).toBe(Code.InvalidArgument);
    expect(String(refused)).toContain("all of them, a reason, or event ids");
    const unknown = await listDeadLetters(pubsub, registry, {
      subscriptions: ["payment.charge-orders"],
    }).catch((e: unknown) => e);
    expect(isProtoeventsError(unknown) && unknown.message).toMatch(
      /no subscription "payment\.charge-orders" with a dead-letter topic.*known: payment\.charge-order,/,
    );
    const missing = await listDeadLetters(pubsub, registry, {
      subscriptions: ["payment.charge-order"],
    }).catch((e: unknown) => e);
    expect(isProtoeventsError(missing) && missing.message).toMatch(
      /dead-letter subscription payment\.charge-order\.dead-letter does not exist .*protoevents provision/,
    );
  });
});

describe("dead-letter helpers", () => {
  const letter = (attributes: Record<string, string>, data = Buffer.alloc(0)): DeadLetter => ({
    subscription: "payment.charge-order",
    deadLetterSubscription: "payment.charge-order.dead-letter",
    messageId: "17",
    deadLetteredAt: new Date("2026-11-26T10:00:00Z"),
    ...deadLetterReason(attributes),
    eventId: attributes["ce-id"],
    eventType: attributes["ce-type"],
    orderingKey: attributes["protoevents-ordering-key"],
    attributes,
    data,
  });

  it("should read the reason from protoevents' attributes, else Pub/Sub's delivery count", () => {
    expect(
      deadLetterReason({
        "protoevents-dead-letter-reason": "validation_failed",
        "protoevents-dead-letter-detail": "items must have at least 1 item (min_items)",
        "protoevents-dead-letter-delivery-attempt": "2",
      }),
    ).toEqual({
      reason: "validation_failed",
      detail: "items must have at least 1 item (min_items)",
      deliveryCount: 2,
    });
    expect(deadLetterReason({ CloudPubSubDeadLetterSourceDeliveryCount: "10" })).toEqual({
      reason: EXHAUSTED_RETRIES,
      detail: "Pub/Sub moved it after 10 delivery attempts",
      deliveryCount: 10,
    });
    expect(deadLetterReason({ "ce-id": "x" })).toEqual({
      reason: UNKNOWN_REASON,
      detail: undefined,
      deliveryCount: undefined,
    });
  });

  it("should keep every original attribute but the dead-letter bookkeeping when replaying", () => {
    const attributes = {
      "ce-specversion": "1.0",
      "ce-id": "0199-id",
      "ce-type": "checkout.v1.OrderPlaced",
      "ce-source": "order",
      "ce-subject": "ord-1",
      traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      region: "eu",
      "protoevents-dead-letter-reason": "permanent",
      "protoevents-dead-letter-detail": "bug",
      "protoevents-dead-letter-subscription": "payment.charge-order",
      "protoevents-dead-letter-delivery-attempt": "1",
      "protoevents-dead-letter-time": "2026-11-26T10:00:00Z",
      "protoevents-ordering-key": "ord-1",
      CloudPubSubDeadLetterSourceDeliveryCount: "5",
      CloudPubSubDeadLetterSourceSubscription: "payment.charge-order",
      [REPLAY_FOR_ATTRIBUTE]: "inventory.reserve-stock",
    };
    expect(replayAttributes(letter(attributes))).toEqual({
      "ce-specversion": "1.0",
      "ce-id": "0199-id",
      "ce-type": "checkout.v1.OrderPlaced",
      "ce-source": "order",
      "ce-subject": "ord-1",
      traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      region: "eu",
      [REPLAY_FOR_ATTRIBUTE]: "payment.charge-order",
    });
  });

  it("should select by reason and by event id", () => {
    const a = letter({ "ce-id": "a", "protoevents-dead-letter-reason": "permanent" });
    const b = letter({ "ce-id": "b", CloudPubSubDeadLetterSourceDeliveryCount: "5" });
    expect([a, b].filter((l) => selectsDeadLetter({ reason: "permanent" }, l))).toEqual([a]);
    expect([a, b].filter((l) => selectsDeadLetter({ eventIds: ["b"] }, l))).toEqual([b]);
    expect(
      [a, b].filter((l) => selectsDeadLetter({ reason: "permanent", eventIds: ["b"] }, l)),
    ).toEqual([]);
    expect([a, b].filter((l) => selectsDeadLetter({}, l))).toEqual([a, b]);
  });

  it("should show a message as bytes when its content type or ce-type is unknown, never throwing", () => {
    const json = letter(
      {
        "ce-id": "c",
        "ce-type": "checkout.v1.OrderPlaced",
        "ce-source": "raw",
        "content-type": "text/plain",
      },
      Buffer.from("plain"),
    );
    const view = viewDeadLetter(json, registry);
    expect(view).toMatchObject({
      kind: "undecodable",
      error: expect.stringContaining('content-type "text/plain" is neither'),
      data: { size: 5, hex: "706c61696e", base64: "cGxhaW4=", truncated: false },
    });
    const foreign = viewDeadLetter(
      letter({ "ce-id": "d", "ce-type": "shop.v9.Unknown", "ce-source": "x" }, Buffer.from([1])),
      registry,
    );
    expect(foreign).toMatchObject({
      kind: "undecodable",
      error: 'ce-type "shop.v9.Unknown" is not an event of these contracts',
    });
  });
});
