import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { OrderPlacedSchema } from "../../../generated/checkout/v1/order_events_pb.js";
import { encodeOrderPlaced } from "../../../generated/checkout/v1/order_events_pe.js";
import type { SubscriptionContract } from "../../../runtime/src/contract.js";
import {
  bindHandler,
  type Handler,
  type HandlerContext,
} from "../../../runtime/src/delivery/binding.js";
import { REPLAY_FOR_ATTRIBUTE } from "../../../runtime/src/delivery/dead-letter-protocol.js";
import type {
  DeadLetterMessage,
  DeadLetterPublisher,
} from "../../../runtime/src/delivery/dead-letter-publisher.js";
import {
  createDeliverer,
  type DeliveryOutcome,
  type ReceivedMessage,
} from "../../../runtime/src/delivery/deliverer.js";
import { AT_LEAST_ONCE, storeInbox } from "../../../runtime/src/delivery/inbox.js";
import { Code, PermanentError, ProtoeventsError } from "../../../runtime/src/errors.js";
import type { StoreTransaction } from "../../../runtime/src/store/store.js";
import { captureLogs } from "../../helpers/logs.js";
import { validOrderPlaced } from "../../helpers/orders.js";
import { fastSubscription } from "../../helpers/test-contracts.js";

const subscription = fastSubscription("deliverer.charge-order");

/** A fake received message: records, in order, how it was settled. */
function fakeMessage(
  events: string[],
  overrides: { attributes?: Record<string, string>; data?: Buffer; orderingKey?: string } = {},
): ReceivedMessage {
  const encoded = encodeOrderPlaced(create(OrderPlacedSchema, validOrderPlaced("ord-7")), {
    source: "order",
    id: "evt-7",
  });
  return {
    id: "m-7",
    data: overrides.data ?? encoded.data,
    attributes: overrides.attributes ?? encoded.attributes,
    orderingKey: overrides.orderingKey ?? encoded.orderingKey ?? "",
    deliveryAttempt: 3,
    publishTime: new Date("2026-11-26T10:00:00Z"),
    ack: () => void events.push("ack"),
    nack: () => void events.push("nack"),
    ackWithResponse: async () => {
      events.push("ackWithResponse");
      return "SUCCESS";
    },
    nackWithResponse: async () => {
      events.push("nackWithResponse");
      return "SUCCESS";
    },
  };
}

/** A fake dead-letter publisher: records what it was given and answers `result`. */
class FakeDeadLetterPublisher implements DeadLetterPublisher {
  readonly calls: { subscription: string; code: Code }[] = [];
  constructor(private readonly result: "dead-lettered" | "nacked" = "dead-lettered") {}
  async deadLetter(
    sub: SubscriptionContract,
    _message: DeadLetterMessage,
    error: ProtoeventsError,
  ): Promise<"dead-lettered" | "nacked"> {
    this.calls.push({ subscription: sub.name, code: error.code });
    return this.result;
  }
}

/** A fake store: claims each (subscription, event id) once, and hands out a fake transaction. */
class FakeStore {
  readonly claimed = new Set<string>();
  readonly transaction = async <T>(
    work: (tx: Pick<StoreTransaction, "claim">) => Promise<T>,
  ): Promise<T> =>
    work({
      claim: async (sub, id) => {
        const key = `${sub}/${id}`;
        const fresh = !this.claimed.has(key);
        this.claimed.add(key);
        return fresh;
      },
    });
}

function setUp(handler: Handler<typeof OrderPlacedSchema>, store?: FakeStore) {
  const logs = captureLogs("debug");
  const outcomes: DeliveryOutcome[] = [];
  const events: string[] = [];
  const deadLetters = new FakeDeadLetterPublisher();
  const deliverer = createDeliverer({
    log: logs.logger,
    inbox: store === undefined ? AT_LEAST_ONCE : storeInbox(store),
    deadLetters,
    onDelivery: (outcome) => outcomes.push(outcome),
    beforeAck: (outcome) => events.push(`beforeAck ${outcome.result}`),
  });
  return {
    deliverer,
    logs,
    outcomes,
    events,
    deadLetters,
    binding: bindHandler(subscription, handler),
  };
}

describe("createDeliverer", () => {
  it("should run the handler with the typed event and its context, then ack and report", async () => {
    const seen: { orderId: string; context: HandlerContext<typeof OrderPlacedSchema> }[] = [];
    const { deliverer, binding, events, outcomes, logs } = setUp((event, context) => {
      events.push("handler");
      seen.push({ orderId: event.orderId, context });
    });
    expect(await deliverer.deliver(binding, fakeMessage(events))).toBe("acked");
    expect(events).toEqual(["handler", "beforeAck acked", "ack"]);
    expect(seen[0]?.orderId).toBe("ord-7");
    expect(seen[0]?.context).toMatchObject({
      envelope: { id: "evt-7", type: "checkout.v1.OrderPlaced", source: "order" },
      subscription,
      deliveryAttempt: 3,
      messageId: "m-7",
      publishTime: new Date("2026-11-26T10:00:00Z"),
    });
    expect("tx" in (seen[0]?.context ?? {})).toBe(false);
    expect(outcomes).toEqual([
      {
        subscription: "deliverer.charge-order",
        result: "acked",
        eventId: "evt-7",
        eventType: "checkout.v1.OrderPlaced",
        deliveryAttempt: 3,
      },
    ]);
    expect(logs.lines().map((l) => [l.op, l.msg])).toEqual([
      ["receive", "received"],
      ["ack", "handled"],
    ]);
  });

  it("should ack a sibling event type of a shared topic without running the handler", async () => {
    const logs = captureLogs("debug");
    const outcomes: DeliveryOutcome[] = [];
    const deliverer = createDeliverer({
      log: logs.logger,
      inbox: AT_LEAST_ONCE,
      deadLetters: new FakeDeadLetterPublisher(),
      onDelivery: (o) => outcomes.push(o),
    });
    const runs: string[] = [];
    const events: string[] = [];
    const sibling = { ...subscription, siblingTypes: new Set(["checkout.v1.OrderPlaced"]) };
    const binding = bindHandler(sibling, (event) => void runs.push(event.orderId));
    expect(await deliverer.deliver(binding, fakeMessage(events))).toBe("filtered");
    expect(runs).toEqual([]);
    expect(events).toEqual(["ack"]);
    expect(outcomes.map((o) => o.result)).toEqual(["filtered"]);
    expect(logs.lines().at(-1)).toMatchObject({ why: "another event type of the topic" });
  });

  it("should nack a failed handler and log it with the event's identity", async () => {
    const { deliverer, binding, events, outcomes, logs } = setUp(() => {
      throw new Error("gateway timeout");
    });
    expect(await deliverer.deliver(binding, fakeMessage(events))).toBe("nacked");
    expect(events).toEqual(["nack"]);
    expect(outcomes[0]?.error?.code).toBe(Code.HandlerFailed);
    expect(logs.lines().find((l) => l.op === "nack")).toMatchObject({
      level: 40,
      msg: "handler failed; nacked for redelivery",
      subscription: "deliverer.charge-order",
      eventId: "evt-7",
      eventType: "checkout.v1.OrderPlaced",
      subject: "ord-7",
      deliveryAttempt: 3,
    });
  });

  it("should log an unreachable store as an error and nack", async () => {
    const { deliverer, binding, events, logs } = setUp(() => {
      throw new ProtoeventsError(Code.StoreUnavailable, "connection refused");
    });
    expect(await deliverer.deliver(binding, fakeMessage(events))).toBe("nacked");
    expect(logs.lines().find((l) => l.op === "nack")).toMatchObject({
      level: 50,
      msg: "store unavailable; nacked for redelivery",
    });
  });

  it("should dead-letter a PermanentError and an undecodable message, reporting the dead-letter result", async () => {
    const { deliverer, binding, events, outcomes, deadLetters } = setUp(() => {
      throw new PermanentError("unknown product");
    });
    expect(await deliverer.deliver(binding, fakeMessage(events))).toBe("dead-lettered");
    const garbage = fakeMessage(events, { data: Buffer.from([0xff, 0xff, 0xff]) });
    expect(await deliverer.deliver(binding, garbage)).toBe("dead-lettered");
    expect(deadLetters.calls).toEqual([
      { subscription: "deliverer.charge-order", code: Code.Permanent },
      { subscription: "deliverer.charge-order", code: Code.DecodeFailed },
    ]);
    // The dead-letter publisher settles the message itself.
    expect(events).toEqual([]);
    expect(outcomes.map((o) => [o.result, o.error?.code])).toEqual([
      ["dead-lettered", Code.Permanent],
      ["dead-lettered", Code.DecodeFailed],
    ]);
  });

  it("should blame the handler when it produced an invalid event, not the incoming one", async () => {
    const { deliverer, binding, events, deadLetters, outcomes } = setUp(() => {
      throw new ProtoeventsError(Code.ValidationFailed, "PaymentProcessed breaks its field rules");
    });
    expect(await deliverer.deliver(binding, fakeMessage(events))).toBe("dead-lettered");
    expect(deadLetters.calls).toEqual([
      { subscription: "deliverer.charge-order", code: Code.OutgoingEventInvalid },
    ]);
    expect(outcomes[0]?.error?.rawMessage).toBe(
      "the handler of deliverer.charge-order produced an invalid event, so checkout.v1.OrderPlaced evt-7 could not be processed: PaymentProcessed breaks its field rules",
    );
  });

  it("should run the handler once per event with a store, and ack the duplicate without it", async () => {
    const store = new FakeStore();
    const runs: string[] = [];
    const { deliverer, binding, events, outcomes } = setUp((event, context) => {
      runs.push(`${event.orderId} ${"tx" in context}`);
    }, store);
    expect(await deliverer.deliver(binding, fakeMessage(events))).toBe("acked");
    expect(await deliverer.deliver(binding, fakeMessage(events))).toBe("duplicate");
    expect(runs).toEqual(["ord-7 true"]);
    expect(events).toEqual(["beforeAck acked", "ack", "beforeAck duplicate", "ack"]);
    expect(outcomes.map((o) => o.result)).toEqual(["acked", "duplicate"]);
  });

  it("should log a replay marked for another subscription by what this one did with it", async () => {
    const marked = (events: string[]) => {
      const plain = fakeMessage(events);
      return fakeMessage(events, {
        attributes: { ...plain.attributes, [REPLAY_FOR_ATTRIBUTE]: "inventory.reserve-stock" },
      });
    };
    const store = new FakeStore();
    const withStore = setUp(() => {}, store);
    await withStore.deliverer.deliver(withStore.binding, marked(withStore.events));
    await withStore.deliverer.deliver(withStore.binding, marked(withStore.events));
    const withoutStore = setUp(() => {});
    await withoutStore.deliverer.deliver(withoutStore.binding, marked(withoutStore.events));
    const replayLines = (lines: { op?: string; level: number; msg: string }[]) =>
      lines.filter((l) => l.op === "replay").map((l) => [l.level, l.msg]);
    expect(replayLines(withStore.logs.lines())).toEqual([
      [
        40,
        "processed an event replayed for inventory.reserve-stock that deliverer.charge-order had never processed: the replay marker was forged, copied or misdirected",
      ],
      [
        30,
        "acked an event replayed for inventory.reserve-stock: this subscription had processed it",
      ],
    ]);
    expect(replayLines(withoutStore.logs.lines())).toEqual([
      [
        30,
        "handled an event replayed for inventory.reserve-stock again (at least once: no inbox here)",
      ],
    ]);
    expect(withStore.outcomes.map((o) => o.replayFor)).toEqual([
      "inventory.reserve-stock",
      "inventory.reserve-stock",
    ]);
  });

  it("should nack a message queued behind a nacked one of its key and report why", () => {
    const { deliverer, binding, events, outcomes } = setUp(() => {});
    deliverer.nackBehind(binding, fakeMessage(events), "ord-7");
    expect(events).toEqual(["nack"]);
    expect(outcomes[0]).toMatchObject({ result: "nacked", eventId: "evt-7" });
    expect(outcomes[0]?.error?.rawMessage).toBe(
      "an earlier event with ordering key ord-7 was nacked; this one waits for its redelivery",
    );
  });
});
