/**
 * The whole checkout under load: every service its own process on the
 * emulator with SQLite stores, orders placed through the order service's
 * Connect API, outcomes observed on the OrderConfirmed and OrderCancelled
 * topics by a subscription of the benchmark's own.
 *
 *   saga-throughput  orders per second from the first PlaceOrder to the last
 *                    terminal event, with a bounded number of orders in flight
 *   saga-latency     placed → confirmed at a fixed 100 orders/s: p50 and p99
 *
 * There is no raw Pub/Sub equivalent of a saga, so their baselines are the
 * targets of the checkout issue (500 orders/s; p99 250 ms): a ratio ≥ 1
 * meets the target.
 */

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import type { Message, PubSub } from "@google-cloud/pubsub";
import {
  OrderCancelledSchema,
  OrderConfirmedSchema,
} from "../../generated/checkout/v1/order_events_pb.js";
import { type Checkout, startCheckout } from "../helpers/checkout.js";
import { type BenchResult, median, pairedRounds, summarise } from "./report.js";

/** Targets of the checkout issue, used as the baselines. */
const TARGET_ORDERS_PER_SECOND = 500;
const TARGET_P99_MS = 250;

interface Outcome {
  readonly at: number;
  readonly confirmed: boolean;
}

/** Watch the terminal topics: order id → when the outcome arrived here. */
async function watchOutcomes(
  pubsub: PubSub,
  name: string,
): Promise<{ outcomes: Map<string, Outcome>; close(): Promise<void> }> {
  const outcomes = new Map<string, Outcome>();
  const subscriptions = await Promise.all(
    (["checkout.order-confirmed", "checkout.order-cancelled"] as const).map(async (topic) => {
      const [subscription] = await pubsub.topic(topic).createSubscription(`bench.${name}.${topic}`);
      subscription.on("message", (message: Message) => {
        const at = performance.now();
        const orderId =
          topic === "checkout.order-confirmed"
            ? fromBinary(OrderConfirmedSchema, message.data).orderId
            : fromBinary(OrderCancelledSchema, message.data).orderId;
        if (!outcomes.has(orderId)) {
          outcomes.set(orderId, { at, confirmed: topic === "checkout.order-confirmed" });
        }
        message.ack();
      });
      subscription.on("error", () => {});
      return subscription;
    }),
  );
  return {
    outcomes,
    async close() {
      await Promise.all(subscriptions.map((s) => s.close()));
    },
  };
}

let sequence = 0;
/** A valid order of one or two in-stock products, paid with an approved card. */
function order(): Parameters<Checkout["orders"]["placeOrder"]>[0] {
  sequence++;
  const products = ["sku-keyboard", "sku-mouse", "sku-monitor", "sku-headset"];
  return {
    customerId: `bench-${sequence % 500}`,
    customerEmail: `bench${sequence % 500}@example.com`,
    lines: [
      { productId: products[sequence % 4] as string, quantity: 1 },
      ...(sequence % 3 === 0
        ? [{ productId: products[(sequence + 1) % 4] as string, quantity: 1 }]
        : []),
    ],
    shippingAddress: {
      recipientName: "Bench",
      line1: "1 Load Street",
      city: "Testville",
      countryCode: "GB",
    },
    paymentToken: "tok_visa_4242",
  };
}

async function waitUntil(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) {
      return false;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

/** Place `count` orders with at most `inFlight` PlaceOrder calls at once; orders/s until all are terminal. */
async function throughputRound(
  checkout: Checkout,
  round: number,
  count: number,
  inFlight: number,
): Promise<number> {
  const watch = await watchOutcomes(checkout.pubsub, `throughput-${round}`);
  const ids: string[] = [];
  const start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) {
        next++;
        const placed = await checkout.orders.placeOrder(order());
        ids.push(placed.order?.orderId ?? "");
      }
    }),
  );
  const done = await waitUntil(() => ids.every((id) => watch.outcomes.has(id)), 120_000);
  const end = Math.max(...ids.map((id) => watch.outcomes.get(id)?.at ?? performance.now()));
  await watch.close();
  if (!done) {
    throw new Error(
      `saga-throughput: only ${ids.filter((id) => watch.outcomes.has(id)).length} of ${count} orders finished within 120 s`,
    );
  }
  return (count / (end - start)) * 1000;
}

/** Place orders at a fixed rate for `seconds`; placed → confirmed latencies in ms. */
async function latencyRound(
  checkout: Checkout,
  round: number,
  rate: number,
  seconds: number,
): Promise<number[]> {
  const watch = await watchOutcomes(checkout.pubsub, `latency-${round}`);
  const sent = new Map<string, number>();
  const pending: Array<Promise<void>> = [];
  const interval = 1000 / rate;
  const start = performance.now();
  for (let i = 0; i < rate * seconds; i++) {
    const due = start + i * interval;
    const wait = due - performance.now();
    if (wait > 0) {
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
    const at = performance.now();
    pending.push(
      checkout.orders.placeOrder(order()).then((placed) => {
        sent.set(placed.order?.orderId ?? "", at);
      }),
    );
  }
  await Promise.all(pending);
  await waitUntil(() => [...sent.keys()].every((id) => watch.outcomes.has(id)), 120_000);
  await watch.close();
  const latencies: number[] = [];
  for (const [id, at] of sent) {
    const outcome = watch.outcomes.get(id);
    if (outcome?.confirmed) {
      latencies.push(outcome.at - at);
    }
  }
  if (latencies.length < sent.size * 0.9) {
    throw new Error(`saga-latency: only ${latencies.length} of ${sent.size} orders were confirmed`);
  }
  return latencies;
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

/** Run both saga benchmarks on a fresh checkout. */
export async function benchSaga(emulatorHost: string, rounds: number): Promise<BenchResult[]> {
  // Enough stock that no benchmark order is cancelled for want of it.
  const dir = await mkdtemp(join(tmpdir(), "protoevents-saga-"));
  const stockFile = join(dir, "stock.json");
  await writeFile(
    stockFile,
    JSON.stringify(
      Object.fromEntries(
        ["sku-keyboard", "sku-mouse", "sku-monitor", "sku-headset"].map((p) => [p, 10_000_000]),
      ),
    ),
  );
  // SAGA_PROFILE_DIR=<dir> writes a CPU profile of every service there.
  const profileDir = process.env.SAGA_PROFILE_DIR;
  const checkout = await startCheckout(
    emulatorHost,
    { PROTOEVENTS_LOG_LEVEL: "warn", INVENTORY_STOCK_FILE: stockFile },
    profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`],
  );
  try {
    // Warm-up: JIT, connections, the catalog view.
    await throughputRound(checkout, -1, 100, 16);
    const throughput: number[] = [];
    const targets: number[] = [];
    // Against a fixed target, the ratios spread as the rounds do: more rounds while they disagree.
    await pairedRounds(
      { min: rounds, max: rounds * 2, better: "higher" },
      throughput,
      targets,
      async (round) => {
        throughput.push(await throughputRound(checkout, round, 1000, 64));
        targets.push(TARGET_ORDERS_PER_SECOND);
        process.stderr.write(
          `saga-throughput round ${round}: ${throughput.at(-1)?.toFixed(1)} orders/s\n`,
        );
      },
    );
    const p50: number[] = [];
    const p99: number[] = [];
    const latencyRounds = Math.max(1, Math.min(3, rounds));
    for (let round = 0; round < latencyRounds; round++) {
      const latencies = await latencyRound(checkout, round, 100, 10);
      p50.push(percentile(latencies, 50));
      p99.push(percentile(latencies, 99));
      process.stderr.write(
        `saga-latency round ${round}: p50 ${p50.at(-1)?.toFixed(1)} ms, p99 ${p99.at(-1)?.toFixed(1)} ms\n`,
      );
    }
    const round2 = (v: number) => Math.round(v * 100) / 100;
    return [
      summarise(
        "saga-throughput",
        "orders/s",
        "higher",
        throughput,
        targets,
        "1,000 valid orders per round, 64 PlaceOrder calls in flight, six service processes + emulator, SQLite; baseline = the target",
      ),
      summarise(
        "saga-latency",
        "ms (p99)",
        "lower",
        p99,
        p99.map(() => TARGET_P99_MS),
        `placed → confirmed at 100 orders/s for 10 s per round: p50 ${round2(median(p50))} ms, p99 ${round2(median(p99))} ms; baseline = the target p99`,
      ),
    ];
  } finally {
    await checkout.close();
    await rm(dir, { recursive: true, force: true });
  }
}
