import { create } from "@bufbuild/protobuf";
import type { Message, PubSub } from "@google-cloud/pubsub";
import { describe, expect, it } from "vitest";
import {
  createOrderSagaServicePublisher,
  PaymentServiceSubscriptions,
  subscribePaymentServiceAtLeastOnce,
} from "../../generated/checkout/v1/applications_pe.js";
import { OrderPlacedSchema } from "../../generated/checkout/v1/order_events_pb.js";
import {
  encodeOrderPlaced,
  type OrderPlacedValid,
} from "../../generated/checkout/v1/order_events_pe.js";
import { registry } from "../../generated/protoevents_registry.js";
import {
  bindHandler,
  type Consumer,
  type DeliveryOutcome,
  settle,
  startConsumer,
} from "../../runtime/src/consumer.js";
import type { ContractRegistry, SubscriptionContract } from "../../runtime/src/contract.js";
import type { Envelope } from "../../runtime/src/envelope.js";
import { Code, PermanentError, ProtoeventsError } from "../../runtime/src/errors.js";
import { provision } from "../../runtime/src/provision.js";
import { afterThisTest } from "../helpers/cleanup.js";
import { captureLogs } from "../helpers/logs.js";
import { validOrderPlaced } from "../helpers/orders.js";
import { testPubSub } from "../helpers/pubsub.js";
import { uniqueName } from "../helpers/stores.js";
import { fastSubscription, registryWith } from "../helpers/test-contracts.js";
import { deferred, waitFor } from "../helpers/wait.js";

async function provisioned(contracts: ContractRegistry = registry): Promise<PubSub> {
  const pubsub = testPubSub("consume");
  afterThisTest(() => pubsub.close());
  await provision(pubsub, contracts, { dryRun: false });
  return pubsub;
}

function track(consumer: Consumer): Consumer {
  afterThisTest(() => consumer.close());
  return consumer;
}

/** Receive everything that lands on a subscription (a dead-letter one, say), acking it. */
function collect(pubsub: PubSub, subscription: string): Message[] {
  const messages: Message[] = [];
  const sub = pubsub.subscription(subscription);
  sub.on("message", (message: Message) => {
    messages.push(message);
    message.ack();
  });
  sub.on("error", () => {});
  afterThisTest(() => sub.close());
  return messages;
}

const chargeOrder = PaymentServiceSubscriptions.chargeOrder;

describe("generated producer and consumer on the emulator", () => {
  it("should deliver a typed OrderPlaced with its envelope and ordering key", async () => {
    const pubsub = await provisioned();
    const received: Array<{ event: OrderPlacedValid; envelope: Envelope; attempt: number }> = [];
    track(
      subscribePaymentServiceAtLeastOnce(pubsub, {
        chargeOrder(event, context) {
          received.push({ event, envelope: context.envelope, attempt: context.deliveryAttempt });
        },
        refundOrder() {
          throw new Error("not expected in this test");
        },
      }),
    );
    const publisher = createOrderSagaServicePublisher(pubsub);
    const result = await publisher.publishOrderPlaced(validOrderPlaced("ord-100"));

    await waitFor("the OrderPlaced delivery", () => received.length > 0);
    const [delivery] = received;
    expect(delivery?.event.$typeName).toBe("checkout.v1.OrderPlaced");
    expect(delivery?.event.orderId).toBe("ord-100");
    expect(delivery?.event.total.amountMinor).toBe(12980n);
    expect(delivery?.event.items.map((i) => i.productId)).toEqual(["sku-keyboard", "sku-mouse"]);
    expect(delivery?.envelope).toEqual({
      id: result.id,
      type: "checkout.v1.OrderPlaced",
      source: "order",
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      subject: "ord-100",
      dataschema: expect.stringMatching(
        /^urn:protoevents:schema:checkout\.v1\.OrderPlaced:sha256-/,
      ),
      contentType: "application/protobuf",
      specversion: "1.0",
      traceparent: undefined,
      orderingKey: "ord-100",
    });
    expect(delivery?.attempt).toBe(1);
  });

  it("should refuse to publish an event that breaks its rules, sending nothing", async () => {
    const pubsub = await provisioned();
    const publisher = createOrderSagaServicePublisher(pubsub);
    const error = await publisher
      .publishOrderPlaced({ ...validOrderPlaced(), customerEmail: "not-an-email" })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProtoeventsError);
    expect((error as ProtoeventsError).code).toBe(Code.ValidationFailed);
    expect((error as ProtoeventsError).details.violations).toEqual([
      { path: "customer_email", rule: "pattern", message: expect.stringContaining("must match") },
    ]);
    // Nothing reached the topic: a raw pull finds no message.
    const [pulled] = await pubsub.subscription(chargeOrder.name).get();
    const messages: Message[] = [];
    pulled.on("message", (m: Message) => messages.push(m));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await pulled.close();
    expect(messages).toEqual([]);
  });
});

describe("dead-lettering on the emulator", () => {
  it("should move a message whose handler keeps failing to the dead-letter topic after max delivery attempts", async () => {
    // The checkout's charge subscription waits up to minutes between attempts;
    // a copy with Pub/Sub's smallest limits keeps the test short.
    const failing: SubscriptionContract<typeof OrderPlacedSchema> = {
      ...chargeOrder,
      name: "test.always-fails",
      maxDeliveryAttempts: 5,
      minBackoffSeconds: 0,
      maxBackoffSeconds: 1,
      deadLetter: {
        topic: "test.always-fails.dead-letter",
        subscription: "test.always-fails.dead-letter",
      },
    };
    const pubsub = await provisioned({
      events: registry.events,
      applications: [
        {
          kind: "application",
          name: "test",
          service: "test.Failing",
          publishes: [],
          subscriptions: [failing],
        },
      ],
    });
    const attempts: number[] = [];
    const outcomes: DeliveryOutcome[] = [];
    track(
      startConsumer(
        pubsub,
        [
          bindHandler(failing, (_event, context) => {
            attempts.push(context.deliveryAttempt);
            throw new Error("payment gateway unavailable");
          }),
        ],
        { onDelivery: (o) => outcomes.push(o) },
      ),
    );
    const deadLetters = collect(pubsub, "test.always-fails.dead-letter");
    const published = await createOrderSagaServicePublisher(pubsub).publishOrderPlaced(
      validOrderPlaced("ord-dl"),
    );

    await waitFor("the dead letter", () => deadLetters.length > 0, 45_000);
    expect(attempts).toEqual([1, 2, 3, 4, 5]);
    expect(outcomes.map((o) => o.result)).toEqual([
      "nacked",
      "nacked",
      "nacked",
      "nacked",
      "nacked",
    ]);
    expect(outcomes[0]?.error?.code).toBe(Code.HandlerFailed);
    const [dead] = deadLetters;
    expect(dead?.attributes).toMatchObject({
      "ce-id": published.id,
      "ce-type": "checkout.v1.OrderPlaced",
      CloudPubSubDeadLetterSourceDeliveryCount: "5",
      CloudPubSubDeadLetterSourceSubscription: "test.always-fails",
    });
    expect(dead?.attributes.CloudPubSubDeadLetterSourceSubscriptionProject).toBeDefined();
    expect(dead?.attributes.CloudPubSubDeadLetterSourceTopicPublishTime).toBeDefined();
  });

  async function poison(
    publishRaw: (pubsub: PubSub) => Promise<string>,
    expectedReason: string,
    detail: RegExp,
  ): Promise<void> {
    const pubsub = await provisioned();
    const handled: string[] = [];
    const outcomes: DeliveryOutcome[] = [];
    track(
      startConsumer(
        pubsub,
        [bindHandler(chargeOrder, (event) => void handled.push(event.orderId))],
        { onDelivery: (o) => outcomes.push(o) },
      ),
    );
    const deadLetters = collect(pubsub, `${chargeOrder.name}.dead-letter`);
    const messageId = await publishRaw(pubsub);

    await waitFor("the dead letter", () => deadLetters.length > 0);
    const [dead] = deadLetters;
    expect(dead?.attributes).toMatchObject({
      "protoevents-dead-letter-reason": expectedReason,
      "protoevents-dead-letter-subscription": chargeOrder.name,
      "protoevents-dead-letter-delivery-attempt": "1",
    });
    expect(dead?.attributes["protoevents-dead-letter-detail"]).toMatch(detail);
    expect(dead?.id).not.toBe(messageId);
    // Acked at once: exactly one delivery, no redelivery, no handler call.
    // The subscription's backoff is 2 s; wait past it before counting.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(outcomes.map((o) => o.result)).toEqual(["dead-lettered"]);
    expect(handled).toEqual([]);
    expect(deadLetters).toHaveLength(1);
  }

  it("should blame the handler, not the incoming event, when the handler publishes an invalid event", async () => {
    const pubsub = await provisioned();
    const outcomes: DeliveryOutcome[] = [];
    const publisher = createOrderSagaServicePublisher(pubsub);
    track(
      startConsumer(
        pubsub,
        [
          bindHandler(chargeOrder, async (event) => {
            // A bug: the copy lacks its required order id.
            await publisher.publishOrderPlaced({ ...validOrderPlaced(event.orderId), orderId: "" });
          }),
        ],
        { onDelivery: (o) => outcomes.push(o) },
      ),
    );
    const deadLetters = collect(pubsub, `${chargeOrder.name}.dead-letter`);
    const incoming = await publisher.publishOrderPlaced(validOrderPlaced("ord-blame"));
    await waitFor("the dead letter", () => deadLetters.length > 0);
    const [dead] = deadLetters;
    expect(dead?.attributes["ce-id"]).toBe(incoming.id);
    expect(dead?.attributes["protoevents-dead-letter-reason"]).toBe("outgoing_event_invalid");
    expect(dead?.attributes["protoevents-dead-letter-detail"]).toBe(
      `the handler of payment.charge-order produced an invalid event, so checkout.v1.OrderPlaced ${incoming.id} could not be processed: checkout.v1.OrderPlaced breaks its field rules, nothing was published: order_id is required (required)`,
    );
    expect(outcomes.map((o) => [o.result, o.error?.code])).toEqual([
      ["dead-lettered", Code.OutgoingEventInvalid],
    ]);
  });

  it("should dead-letter garbage bytes at once with the reason", async () => {
    let data: Buffer | undefined;
    await poison(
      async (pubsub) => {
        const valid = encodeOrderPlaced(create(OrderPlacedSchema, validOrderPlaced()), {
          source: "raw",
        });
        data = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]);
        return pubsub
          .topic("checkout.order-placed")
          .publishMessage({ data, attributes: valid.attributes });
      },
      "decode_failed",
      /cannot be decoded as application\/protobuf/,
    );
    expect(data).toBeDefined();
  });

  it("should dead-letter an unknown ce-type at once with the reason", async () => {
    await poison(
      (pubsub) =>
        pubsub.topic("checkout.order-placed").publishMessage({
          data: Buffer.from("{}"),
          attributes: {
            "ce-specversion": "1.0",
            "ce-id": "raw-1",
            "ce-type": "checkout.v1.OrderExploded",
            "ce-source": "raw",
            "content-type": "application/json",
          },
        }),
      "unknown_event_type",
      /ce-type "checkout\.v1\.OrderExploded" is not "checkout\.v1\.OrderPlaced"/,
    );
  });

  it("should dead-letter a message without CloudEvents attributes at once", async () => {
    await poison(
      (pubsub) =>
        pubsub.topic("checkout.order-placed").publishMessage({ data: Buffer.from("hello") }),
      "decode_failed",
      /no ce-id attribute/,
    );
  });

  it("should dead-letter an event that breaks a field rule at once", async () => {
    await poison(
      async (pubsub) => {
        const broken = create(OrderPlacedSchema, { ...validOrderPlaced(), items: [] });
        const message = encodeOrderPlaced(broken, { source: "raw" });
        return pubsub.topic("checkout.order-placed").publishMessage(message);
      },
      "validation_failed",
      /items must have at least 1 item \(min_items\)/,
    );
  });

  it("should dead-letter at once when the handler throws PermanentError", async () => {
    const pubsub = await provisioned();
    const outcomes: DeliveryOutcome[] = [];
    track(
      startConsumer(
        pubsub,
        [
          bindHandler(chargeOrder, () => {
            throw new PermanentError("order ord-perm references a customer that was erased");
          }),
        ],
        { onDelivery: (o) => outcomes.push(o) },
      ),
    );
    const deadLetters = collect(pubsub, `${chargeOrder.name}.dead-letter`);
    await createOrderSagaServicePublisher(pubsub).publishOrderPlaced(validOrderPlaced("ord-perm"));
    await waitFor("the dead letter", () => deadLetters.length > 0);
    expect(deadLetters[0]?.attributes["protoevents-dead-letter-reason"]).toBe("permanent");
    expect(deadLetters[0]?.attributes["protoevents-dead-letter-detail"]).toBe(
      "order ord-perm references a customer that was erased",
    );
    expect(outcomes.map((o) => o.result)).toEqual(["dead-lettered"]);
  });
});

describe("consumer lifecycle on the emulator", () => {
  it("should let a running handler finish and ack before close resolves", async () => {
    const pubsub = await provisioned();
    const started = deferred();
    const release = deferred();
    const order: string[] = [];
    const consumer = startConsumer(
      pubsub,
      [
        bindHandler(chargeOrder, async () => {
          started.resolve();
          await release.promise;
          order.push("handler done");
        }),
      ],
      { onDelivery: (o) => order.push(o.result) },
    );
    await createOrderSagaServicePublisher(pubsub).publishOrderPlaced(validOrderPlaced("ord-close"));
    await started.promise;
    const closing = consumer.close().then(() => order.push("closed"));
    setTimeout(() => release.resolve(), 300);
    await closing;
    expect(order).toEqual(["handler done", "acked", "closed"]);
  });

  it("should run handlers of an ordered subscription one key at a time, in publish order", async () => {
    // The checkout's subscriptions need no ordering; an ordered copy of one.
    const paymentProcessed = registry.applications
      .flatMap((a) => a.subscriptions)
      .find((s) => s.name === "order.on-payment-processed") as SubscriptionContract;
    const ordered: SubscriptionContract = {
      ...paymentProcessed,
      name: "test.ordered-payments",
      ordered: true,
      deadLetter: {
        topic: "test.ordered-payments.dead-letter",
        subscription: "test.ordered-payments.dead-letter",
      },
    };
    const pubsub = await provisioned({
      events: registry.events,
      applications: [
        {
          kind: "application",
          name: "test",
          service: "test.Ordered",
          publishes: [],
          subscriptions: [ordered],
        },
      ],
    });
    const seen: string[] = [];
    let running = 0;
    let maxRunning = 0;
    track(
      startConsumer(pubsub, [
        bindHandler(ordered, async (event) => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          await new Promise((resolve) => setTimeout(resolve, 5));
          seen.push((event as unknown as { paymentId: string }).paymentId);
          running--;
        }),
      ]),
    );
    const { createPaymentServicePublisher } = await import(
      "../../generated/checkout/v1/applications_pe.js"
    );
    const payments = createPaymentServicePublisher(pubsub);
    const ids = Array.from({ length: 20 }, (_, i) => `pay-${String(i).padStart(2, "0")}`);
    await Promise.all(
      ids.map((paymentId) =>
        payments.publishPaymentProcessed({
          orderId: "ord-ordered",
          paymentId,
          amount: { currencyCode: "EUR", amountMinor: 100n },
          processedAt: { seconds: 1_700_000_000n },
        }),
      ),
    );
    await waitFor("20 ordered deliveries", () => seen.length === 20);
    expect(seen).toEqual(ids);
    expect(maxRunning).toBe(1);
  });

  it("should reopen a subscription whose stream the server ended for good, and go on consuming", async () => {
    // A stream that ends with a status the client does not retry (here
    // NOT_FOUND: the subscription was deleted) closes the client's
    // subscription; the consumer must reopen it, not stop pulling in silence.
    const pubsub = await provisioned();
    const received: string[] = [];
    const errors: ProtoeventsError[] = [];
    const changes: boolean[] = [];
    const consumer = track(
      startConsumer(
        pubsub,
        [bindHandler(chargeOrder, (event) => void received.push(event.orderId))],
        {
          onError: (error) => errors.push(error),
          onHealth: (health) => changes.push(health.healthy),
        },
      ),
    );
    const publisher = createOrderSagaServicePublisher(pubsub);
    await publisher.publishOrderPlaced(validOrderPlaced("ord-before"));
    await waitFor("the first delivery", () => received.includes("ord-before"));
    expect(consumer.health()).toEqual({
      healthy: true,
      subscriptions: [{ subscription: chargeOrder.name, state: "streaming" }],
    });

    await pubsub.subscription(chargeOrder.name).delete();
    await waitFor("the stream to end", () => errors.length > 0);
    expect(errors[0]?.code).toBe(Code.PubSubUnavailable);
    expect(errors[0]?.details.grpcCode).toBe(5);
    // Retrying alone cannot fix a deleted subscription: it says so.
    const failing = consumer.health();
    expect(failing.healthy).toBe(false);
    expect(failing.subscriptions[0]?.state).toBe("failing");
    expect(failing.subscriptions[0]?.error?.message).toContain(
      `subscription ${chargeOrder.name} cannot be consumed (NOT_FOUND): provision it`,
    );
    await provision(pubsub, registry, { dryRun: false });

    await publisher.publishOrderPlaced(validOrderPlaced("ord-after"));
    await waitFor("the delivery after the subscription came back", () =>
      received.includes("ord-after"),
    );
    expect(received).toEqual(["ord-before", "ord-after"]);
    expect(consumer.health().healthy).toBe(true);
    expect(changes).toEqual([false, true]);
  });

  it("should report a stream error for a subscription that does not exist", async () => {
    const pubsub = testPubSub("missing");
    afterThisTest(() => pubsub.close());
    const errors: Array<{ error: ProtoeventsError; subscription: string }> = [];
    track(
      startConsumer(pubsub, [bindHandler(chargeOrder, () => {})], {
        onError: (error, subscription) => errors.push({ error, subscription }),
      }),
    );
    await waitFor("the stream error", () => errors.length > 0);
    expect(errors[0]?.subscription).toBe(chargeOrder.name);
    expect(errors[0]?.error.code).toBe(Code.PubSubUnavailable);
    expect(errors[0]?.error.message).toMatch(/Subscription does not exist/);
  });
});

describe("exactly-once delivery", () => {
  it("should wait for Pub/Sub to confirm each ack on a subscription with exactly-once delivery", async () => {
    const pubsub = testPubSub("eod");
    afterThisTest(() => pubsub.close());
    const subscription = fastSubscription(uniqueName("eod"), { exactlyOnceDelivery: true });
    await provision(pubsub, registryWith(subscription), { dryRun: false });
    const [metadata] = await pubsub.subscription(subscription.name).getMetadata();
    expect(metadata.enableExactlyOnceDelivery).toBe(true);
    const outcomes: DeliveryOutcome[] = [];
    const handled: string[] = [];
    track(
      startConsumer(
        pubsub,
        [bindHandler(subscription, (event) => void handled.push(event.orderId))],
        {
          onDelivery: (o) => outcomes.push(o),
        },
      ),
    );
    await createOrderSagaServicePublisher(pubsub).publishOrderPlaced(validOrderPlaced("ord-eod"));
    await waitFor("the delivery", () => outcomes.length > 0);
    expect(outcomes.map((o) => o.result)).toEqual(["acked"]);
    expect(handled).toEqual(["ord-eod"]);
  });
});

describe("settling a message", () => {
  /** A fake message whose acks and nacks Pub/Sub confirms or refuses as the test says. */
  function fakeMessage(refuse: boolean) {
    const calls: string[] = [];
    const answer = (what: string) => {
      calls.push(what);
      return refuse
        ? Promise.reject(Object.assign(new Error("ack id expired"), { errorCode: "INVALID" }))
        : Promise.resolve("SUCCESS" as const);
    };
    return {
      calls,
      message: {
        id: "42",
        ack: () => void calls.push("ack"),
        nack: () => void calls.push("nack"),
        ackWithResponse: () => answer("ackWithResponse"),
        nackWithResponse: () => answer("nackWithResponse"),
      },
    };
  }

  it("should wait for the answer with exactly-once delivery and log a refused ack", async () => {
    const logs = captureLogs("info");
    const confirmed = fakeMessage(false);
    expect(await settle(confirmed.message, "ack", true, logs.logger, { subscription: "s" })).toBe(
      true,
    );
    expect(confirmed.calls).toEqual(["ackWithResponse"]);

    const refused = fakeMessage(true);
    expect(await settle(refused.message, "ack", true, logs.logger, { subscription: "s" })).toBe(
      false,
    );
    expect(logs.lines()).toEqual([
      expect.objectContaining({
        level: 40,
        op: "ack",
        subscription: "s",
        messageId: "42",
        ackError: "INVALID",
        msg: "Pub/Sub did not confirm the ack (exactly-once delivery): the event will come back, and the inbox recognises it",
      }),
    ]);
    const nacked = fakeMessage(true);
    expect(await settle(nacked.message, "nack", true, logs.logger, {})).toBe(false);
    expect(nacked.calls).toEqual(["nackWithResponse"]);
  });

  it("should ack and nack without waiting when the subscription has no exactly-once delivery", async () => {
    const logs = captureLogs("info");
    const plain = fakeMessage(true);
    expect(await settle(plain.message, "ack", false, logs.logger, {})).toBe(true);
    expect(await settle(plain.message, "nack", false, logs.logger, {})).toBe(true);
    expect(plain.calls).toEqual(["ack", "nack"]);
    expect(logs.lines()).toEqual([]);
  });
});
