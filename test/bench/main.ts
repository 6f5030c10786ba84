/**
 * `npm run bench`: protoevents against the raw @google-cloud/pubsub client,
 * in one process, on a real emulator started here. Each round runs both sides
 * back to back (alternating which goes first) and the ratio is taken per
 * round, so machine noise hits both alike.
 *
 *   publish           the producer's publish path (what generated producers
 *                     call) vs raw `topic.publishMessage` of the same bytes and
 *                     CloudEvents attributes (a fresh ce-id and ce-time per
 *                     message, as any raw publisher must), same batching
 *   publish-ordered   the same with the contract's ordering keys (1,000 keys)
 *   publish-overhead  the producer's own CPU per message (validate, id, time,
 *                     attributes) on top of encoding the payload, no I/O
 *   subscribe         generated consumer (decode, validate, dispatch, ack) vs a
 *                     raw subscriber that decodes and acks, same maxStreams
 *   subscribe-inbox-sqlite / subscribe-inbox-postgres
 *                     the same consumer claiming every event in a store's
 *                     inbox in a transaction, vs the same raw subscriber
 *   outbox-relay      the relay publishing committed outbox rows vs the raw
 *                     client publishing the same messages
 *   saga-throughput / saga-latency
 *                     the whole checkout (see saga.ts)
 *   codegen-10 / codegen-100 / codegen-1000
 *                     protoc-gen-protoevents vs protoc-gen-es (see codegen.ts)
 *   validate-adversarial / pattern-linear-adversarial
 *                     what one crafted value costs a validator (see validation.ts)
 *
 * Every paired benchmark runs --rounds rounds, then more (up to
 * --max-rounds) while its ratios' interquartile spread exceeds ±10 %; a
 * figure still that noisy is flagged ⚠ in the table. Each result records
 * the machine's load average around it.
 *
 * Options: --messages N (default 20000), --rounds N (default 9),
 * --max-rounds N (default 3 × rounds), --only name.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { create, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Message, PubSub } from "@google-cloud/pubsub";
import { Bench, type Task } from "tinybench";
import { PaymentServiceSubscriptions } from "../../generated/checkout/v1/applications_pe.js";
import { OrderPlacedSchema } from "../../generated/checkout/v1/order_events_pb.js";
import { OrderPlacedEvent } from "../../generated/checkout/v1/order_events_pe.js";
import { bindHandler, startConsumer } from "../../runtime/src/consumer.js";
import { DEFAULT_BATCHING } from "../../runtime/src/default-options.js";
import { startEmulator } from "../../runtime/src/emulator.js";
import { encodeEvent } from "../../runtime/src/envelope.js";
import { createLogger } from "../../runtime/src/logger.js";
import { startOutboxRelay } from "../../runtime/src/outbox.js";
import { createEventPublisher } from "../../runtime/src/publisher.js";
import { createPubSub } from "../../runtime/src/pubsub-client.js";
import { createStore } from "../../runtime/src/store/index.js";
import type { InboxStore } from "../../runtime/src/store/store.js";
import { benchCodegen } from "./codegen.js";
import {
  type BenchResult,
  currentLoad,
  formatTable,
  median,
  pairedRounds,
  summarise,
  withLoad,
  writeResults,
} from "./report.js";
import { benchSaga } from "./saga.js";
import { benchValidation } from "./validation.js";

const { values: args } = parseArgs({
  options: {
    messages: { type: "string", default: "20000" },
    rounds: { type: "string", default: "9" },
    "max-rounds": { type: "string" },
    only: { type: "string" },
    out: { type: "string", default: "bench-results/latest.json" },
  },
});
const MESSAGES = Number.parseInt(args.messages, 10);
const ROUNDS = Number.parseInt(args.rounds, 10);
const MAX_ROUNDS = Math.max(
  ROUNDS,
  args["max-rounds"] === undefined ? ROUNDS * 3 : Number.parseInt(args["max-rounds"], 10),
);
/** Rounds of a paired benchmark: at least ROUNDS, up to MAX_ROUNDS while noisy. */
const rounds = (better: "higher" | "lower") => ({ min: ROUNDS, max: MAX_ROUNDS, better });
/** Streams per subscription on both sides of the subscribe benchmark. */
const MAX_STREAMS = 4;
/** The PostgreSQL of the development and CI machines. */
const PG_URL = process.env.PROTOEVENTS_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const quiet = createLogger({ app: "bench" });
quiet.level = "error";

function orders(count: number): Array<MessageShape<typeof OrderPlacedSchema>> {
  return Array.from({ length: count }, (_, i) =>
    create(OrderPlacedSchema, {
      orderId: `ord-${i}`,
      customerId: `cust-${i % 97}`,
      customerEmail: `c${i % 97}@example.com`,
      items: [
        {
          productId: "sku-keyboard",
          quantity: 1,
          unitPrice: { currencyCode: "EUR", amountMinor: 7990n },
        },
        {
          productId: "sku-mouse",
          quantity: 2,
          unitPrice: { currencyCode: "EUR", amountMinor: 2495n },
        },
      ],
      total: { currencyCode: "EUR", amountMinor: 12980n },
      shippingAddress: {
        recipientName: "Ada Lovelace",
        line1: "12 St James's Square",
        city: "London",
        countryCode: "GB",
      },
      paymentToken: "tok_visa_4242",
      placedAt: timestampFromDate(new Date()),
    }),
  );
}

/**
 * Attributes of the raw side: the same CloudEvents envelope, written by hand
 * the way a raw-client user would: constant attributes built once, a fresh
 * `ce-id` (crypto.randomUUID) and `ce-time` per message. The producer's own
 * cost is everything beyond that.
 */
function rawAttributesFactory(): () => Record<string, string> {
  const constant = encodeEvent(
    OrderPlacedEvent,
    orders(1)[0] as MessageShape<typeof OrderPlacedSchema>,
    {
      source: "order",
    },
  ).attributes;
  return () => ({
    ...constant,
    "ce-id": randomUUID(),
    "ce-time": new Date().toISOString(),
  });
}

async function timed(work: () => Promise<void>): Promise<number> {
  const start = process.hrtime.bigint();
  await work();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/**
 * Publish throughput. `unordered` uses a copy of the OrderPlaced contract
 * without an ordering key, so both sides batch freely (the raw figures in
 * DESIGN.md are of this kind). `ordered` publishes the contract as generated,
 * with ordering keys spread over 1,000 orders: the client batches per key, so
 * this is the cost of ordering, paid alike by both sides.
 */
async function benchPublish(
  pubsub: PubSub,
  variant: "unordered" | "ordered",
): Promise<BenchResult> {
  const ordered = variant === "ordered";
  const events = orders(MESSAGES).map((event, i) => {
    event.orderId = `ord-${i % 1000}`;
    return event;
  });
  const attributes = rawAttributesFactory();
  const contract = ordered
    ? OrderPlacedEvent
    : { ...OrderPlacedEvent, orderingKeyField: undefined, orderingKey: undefined };
  const topicName = `bench.publish-${variant}`;
  const measured: number[] = [];
  const baseline: number[] = [];
  // Nobody subscribes: the benchmark measures the publish path only.
  await pubsub.createTopic(topicName);
  const target = { ...contract, topic: topicName };
  const protoevents = async () => {
    const publisher = createEventPublisher(pubsub, { source: "order", logger: quiet });
    const seconds = await timed(async () => {
      await Promise.all(events.map((event) => publisher.publish(target, event)));
    });
    measured.push(MESSAGES / seconds);
  };
  const raw = async () => {
    const topic = pubsub.topic(topicName, { batching: DEFAULT_BATCHING, messageOrdering: ordered });
    const seconds = await timed(async () => {
      await Promise.all(
        events.map((event) => {
          const bytes = toBinary(OrderPlacedSchema, event);
          const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
          return topic.publishMessage(
            ordered
              ? { data, attributes: attributes(), orderingKey: event.orderId }
              : { data, attributes: attributes() },
          );
        }),
      );
    });
    baseline.push(MESSAGES / seconds);
  };
  // Warm-up of the client, the channel and the JIT; not counted.
  await raw();
  await protoevents();
  baseline.length = 0;
  measured.length = 0;
  await pairedRounds(rounds("higher"), measured, baseline, async (round) => {
    if (round % 2 === 0) {
      await protoevents();
      await raw();
    } else {
      await raw();
      await protoevents();
    }
  });
  return summarise(
    variant === "ordered" ? "publish-ordered" : "publish",
    "msg/s",
    "higher",
    measured,
    baseline,
    `${MESSAGES} OrderPlaced per round${ordered ? " over 1,000 ordering keys" : ", no ordering key"}, batching ${JSON.stringify(DEFAULT_BATCHING)}`,
  );
}

/**
 * CPU per message of preparing a publish, without I/O, measured with
 * tinybench: each round runs both sides as tasks for a fixed time (warm-up
 * first), in alternating order, and takes the median of each task's samples,
 * so a GC pause moves a few samples, not the figure.
 */
async function benchPublishOverhead(): Promise<BenchResult> {
  const CHUNK = 100;
  const events = orders(CHUNK);
  // The strictest baseline: encoding only, one attributes object for all.
  const attributes = encodeEvent(
    OrderPlacedEvent,
    events[0] as MessageShape<typeof OrderPlacedSchema>,
    {
      source: "order",
    },
  ).attributes;
  let sink = 0;
  const protoevents = () => {
    for (const event of events) {
      // What EventPublisher.publish does before handing the message to the client.
      if (OrderPlacedEvent.validate(event).length > 0) {
        throw new Error("invalid sample");
      }
      sink += encodeEvent(OrderPlacedEvent, event, { source: "order" }).data.length;
    }
  };
  const raw = () => {
    for (const event of events) {
      const bytes = toBinary(OrderPlacedSchema, event);
      const message = {
        data: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
        attributes,
        orderingKey: event.orderId,
      };
      sink += message.data.length;
    }
  };
  const measured: number[] = [];
  const baseline: number[] = [];
  /** µs per message: the median sample of a task, over the messages of one call. */
  const perMessage = (task: Task | undefined) => {
    const samples = task?.result?.samples ?? [];
    if (samples.length === 0) {
      throw new Error(`tinybench took no sample of ${task?.name}: ${task?.result?.error}`);
    }
    return (median(samples) * 1000) / CHUNK;
  };
  const rounds_ = await pairedRounds(rounds("lower"), measured, baseline, async (round) => {
    const bench = new Bench({ time: 200, warmupTime: 50 });
    const order = round % 2 === 0 ? ["protoevents", "raw"] : ["raw", "protoevents"];
    for (const name of order) {
      bench.add(name, name === "protoevents" ? protoevents : raw);
    }
    await bench.run();
    measured.push(perMessage(bench.getTask("protoevents")));
    baseline.push(perMessage(bench.getTask("raw")));
  });
  if (sink === 0) {
    throw new Error("unreachable");
  }
  const result = summarise("publish-overhead", "µs/msg", "lower", measured, baseline);
  const own = result.value - result.baseline;
  return {
    ...result,
    note: `the producer's own cost: ${own.toFixed(3)} µs per message (validate, UUIDv7, ce-time, attributes) on top of encoding; tinybench, 200 ms per side and round, ${rounds_} rounds, ${CHUNK} messages per call`,
  };
}

/**
 * Consume throughput. `plain`: the generated consumer's path without a store
 * (decode, validate, dispatch, ack). With a store, every delivery also runs a
 * transaction that claims the event in the inbox (the handler itself writes
 * nothing), so the ratio is the inbox's cost.
 */
async function benchSubscribe(
  pubsub: PubSub,
  name: string,
  store: InboxStore | undefined,
): Promise<BenchResult> {
  const events = orders(MESSAGES);
  const measured: number[] = [];
  const baseline: number[] = [];
  const flowControl = { maxMessages: 1000, allowExcessMessages: false };
  const template = PaymentServiceSubscriptions.chargeOrder;
  await pairedRounds(rounds("higher"), measured, baseline, async (round) => {
    const topicName = `bench.${name}-${round}`;
    const [topic] = await pubsub.createTopic(topicName);
    const ours = `bench.${name}-protoevents-${round}`;
    const theirs = `bench.${name}-raw-${round}`;
    await topic.createSubscription(ours, { ackDeadlineSeconds: 60 });
    await topic.createSubscription(theirs, { ackDeadlineSeconds: 60 });
    const publisher = pubsub.topic(topicName, { batching: DEFAULT_BATCHING });
    await Promise.all(
      events.map((event) =>
        publisher.publishMessage(encodeEvent(OrderPlacedEvent, event, { source: "order" })),
      ),
    );
    const protoevents = async () => {
      let received = 0;
      let done: () => void = () => {};
      const all = new Promise<void>((resolve) => {
        done = resolve;
      });
      const subscription = {
        ...template,
        event: OrderPlacedEvent,
        name: ours,
        deadLetter: undefined,
      };
      const seconds = await timed(async () => {
        const consumer = startConsumer(pubsub, [bindHandler(subscription, () => {})], {
          maxStreams: MAX_STREAMS,
          maxMessagesInFlight: flowControl.maxMessages,
          logger: quiet,
          ...(store === undefined ? {} : { store }),
          onDelivery: (outcome) => {
            if (outcome.result !== "acked") {
              throw new Error(`unexpected ${outcome.result} in the benchmark`);
            }
            received++;
            if (received === MESSAGES) {
              done();
            }
          },
        });
        await all;
        await consumer.close();
      });
      measured.push(MESSAGES / seconds);
    };
    const raw = async () => {
      let received = 0;
      const seconds = await timed(async () => {
        const subscription = pubsub.subscription(theirs, {
          flowControl,
          streamingOptions: { maxStreams: MAX_STREAMS },
        });
        await new Promise<void>((resolve) => {
          subscription.on("message", (message: Message) => {
            // The same codec as the consumer: decode the payload, then ack.
            decodedBytes += fromBinary(OrderPlacedSchema, message.data).orderId.length;
            message.ack();
            received++;
            if (received === MESSAGES) {
              resolve();
            }
          });
          subscription.on("error", () => {});
        });
        await subscription.close();
      });
      baseline.push(MESSAGES / seconds);
    };
    if (round % 2 === 0) {
      await protoevents();
      await raw();
    } else {
      await raw();
      await protoevents();
    }
    await pubsub.subscription(ours).delete();
    await pubsub.subscription(theirs).delete();
    await topic.delete();
  });
  return summarise(
    name,
    "msg/s",
    "higher",
    measured,
    baseline,
    `${MESSAGES} OrderPlaced per round, maxStreams ${MAX_STREAMS}; the emulator paces each stream`,
  );
}

/**
 * Outbox relay throughput: rows already committed to a SQLite outbox (over
 * 1,000 ordering keys), relayed to Pub/Sub, against the raw client publishing
 * the same messages with the same keys.
 */
async function benchOutboxRelay(pubsub: PubSub): Promise<BenchResult> {
  const events = orders(MESSAGES).map((event, i) => {
    event.orderId = `ord-${i % 1000}`;
    return event;
  });
  const measured: number[] = [];
  const baseline: number[] = [];
  const dir = await mkdtemp(join(tmpdir(), "protoevents-bench-"));
  try {
    await pairedRounds(rounds("higher"), measured, baseline, async (round) => {
      const topicName = `bench.relay-${round}`;
      await pubsub.createTopic(topicName);
      const contract = { ...OrderPlacedEvent, topic: topicName };
      const messages = events.map((event) => encodeEvent(contract, event, { source: "order" }));
      const store = await createStore({ kind: "sqlite", file: join(dir, `relay-${round}.sqlite`) });
      for (let i = 0; i < messages.length; i += 500) {
        await store.transaction((tx) =>
          tx.enqueue(
            messages.slice(i, i + 500).map((m) => ({
              eventId: m.attributes["ce-id"] as string,
              eventType: contract.type,
              topic: topicName,
              orderingKey: m.orderingKey,
              data: m.data,
              attributes: m.attributes,
            })),
          ),
        );
      }
      const relay = async () => {
        const seconds = await timed(async () => {
          const running = startOutboxRelay(pubsub, store, { logger: quiet, pollIntervalMs: 10 });
          while ((await store.pendingOutbox(1)).length > 0) {
            await running.drain();
          }
          await running.stop();
        });
        measured.push(MESSAGES / seconds);
      };
      const raw = async () => {
        const topic = pubsub.topic(topicName, {
          batching: DEFAULT_BATCHING,
          messageOrdering: true,
        });
        const seconds = await timed(async () => {
          await Promise.all(messages.map((m) => topic.publishMessage(m)));
        });
        baseline.push(MESSAGES / seconds);
      };
      if (round % 2 === 0) {
        await relay();
        await raw();
      } else {
        await raw();
        await relay();
      }
      await store.close();
      await pubsub.topic(topicName).delete();
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return summarise(
    "outbox-relay",
    "msg/s",
    "higher",
    measured,
    baseline,
    `${MESSAGES} committed OrderPlaced rows over 1,000 ordering keys, SQLite, the relay's default batch size`,
  );
}

let decodedBytes = 0;

async function main(): Promise<void> {
  const wanted = (name: string) => args.only === undefined || args.only === name;
  const results: BenchResult[] = [];
  /** Run benchmarks and keep their results, with the machine's load while they ran. */
  const add = async (work: () => Promise<BenchResult | BenchResult[]> | BenchResult[]) => {
    const before = currentLoad();
    const done = await work();
    results.push(...(Array.isArray(done) ? done : [done]).map((r) => withLoad(r, before)));
  };
  if (wanted("publish-overhead")) {
    await add(() => benchPublishOverhead());
  }
  if (
    wanted("validation") ||
    wanted("validate-adversarial") ||
    wanted("pattern-linear-adversarial")
  ) {
    await add(async () =>
      (await benchValidation(ROUNDS, MAX_ROUNDS)).filter(
        (r) => wanted("validation") || wanted(r.name),
      ),
    );
  }
  if (
    wanted("codegen-10") ||
    wanted("codegen-100") ||
    wanted("codegen-1000") ||
    wanted("codegen")
  ) {
    await add(() => benchCodegen(Math.min(ROUNDS, 5)));
  }
  const needsEmulator = [
    "publish",
    "publish-ordered",
    "subscribe",
    "subscribe-inbox-sqlite",
    "subscribe-inbox-postgres",
    "outbox-relay",
    "saga-throughput",
    "saga-latency",
  ].some(wanted);
  if (needsEmulator) {
    // The benchmarks push hundreds of thousands of messages through it: more
    // heap than the 256 MiB that tests and demos need.
    const emulator = await startEmulator({ javaHeap: "1g" });
    try {
      for (const variant of ["unordered", "ordered"] as const) {
        if (wanted(variant === "ordered" ? "publish-ordered" : "publish")) {
          const pubsub = createPubSub({
            projectId: `bench-publish-${variant}`,
            emulatorHost: emulator.endpoint,
          });
          await add(() => benchPublish(pubsub, variant));
          await pubsub.close();
        }
      }
      if (wanted("subscribe")) {
        const pubsub = createPubSub({
          projectId: "bench-subscribe",
          emulatorHost: emulator.endpoint,
        });
        await add(() => benchSubscribe(pubsub, "subscribe", undefined));
        await pubsub.close();
      }
      if (wanted("subscribe-inbox-sqlite")) {
        const dir = await mkdtemp(join(tmpdir(), "protoevents-bench-"));
        const store = await createStore({ kind: "sqlite", file: join(dir, "inbox.sqlite") });
        const pubsub = createPubSub({
          projectId: "bench-inbox-sqlite",
          emulatorHost: emulator.endpoint,
        });
        await add(() => benchSubscribe(pubsub, "subscribe-inbox-sqlite", store));
        await pubsub.close();
        await store.close();
        await rm(dir, { recursive: true, force: true });
      }
      if (wanted("subscribe-inbox-postgres")) {
        const schema = `bench_${process.pid}`;
        const store = await createStore({
          kind: "postgres",
          connectionString: PG_URL,
          schema,
          poolSize: 16,
        });
        const pubsub = createPubSub({
          projectId: "bench-inbox-postgres",
          emulatorHost: emulator.endpoint,
        });
        try {
          await add(() => benchSubscribe(pubsub, "subscribe-inbox-postgres", store));
        } finally {
          await pubsub.close();
          await store.db.schema.dropSchema(schema).ifExists().cascade().execute();
          await store.close();
        }
      }
      if (wanted("saga-throughput") || wanted("saga-latency")) {
        await add(async () =>
          (await benchSaga(emulator.endpoint, Math.min(ROUNDS, 5))).filter((r) => wanted(r.name)),
        );
      }
      if (wanted("outbox-relay")) {
        const pubsub = createPubSub({ projectId: "bench-relay", emulatorHost: emulator.endpoint });
        await add(() => benchOutboxRelay(pubsub));
        await pubsub.close();
      }
    } finally {
      await emulator.stop();
    }
  }
  process.stdout.write(`${formatTable(results)}\n`);
  for (const r of results) {
    if (r.note !== undefined) {
      process.stdout.write(`- ${r.name}: ${r.note}\n`);
    }
  }
  await writeResults(args.out, results);
  process.stdout.write(`written to ${args.out} (decoded ${decodedBytes > 0 ? "ok" : "nothing"})\n`);
}

await main();
