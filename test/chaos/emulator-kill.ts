/**
 * A reproducer of the emulator defect the chaos run works around (docs/proof.md,
 * "Proof under faults"): after a subscriber is SIGKILLed, the emulator keeps
 * handing deliveries of a subscription with a retry policy or message
 * ordering to the dead streams, and they never reach the subscriber that
 * replaces it — not after the ack deadline, not minutes later. A plain
 * subscription, or a subscriber closed gracefully, loses nothing.
 *
 *   node --import tsx test/chaos/emulator-kill.ts [--wait <s>]
 *
 * Raw `@google-cloud/pubsub` only, no protoevents code on the delivery path:
 * for each case it starts a subscriber process that holds (never acks) what
 * it gets, publishes 100 events on distinct ordering keys, stops the
 * subscriber (SIGKILL, or SIGTERM with a graceful close), starts another that
 * acks, publishes 200 more on new keys and counts what the second one
 * receives of each batch. Exits 0 and prints a table; the numbers are the
 * finding.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { PubSub } from "@google-cloud/pubsub";
import { startEmulator } from "../../runtime/src/emulator.js";
import { TS_NODE_ARGS } from "../../services/lib/node-args.js";

const SELF = fileURLToPath(import.meta.url);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The subscriber process: acks everything, prints each payload on a line. */
function subscriberMain(endpoint: string, subscription: string, hold: boolean): void {
  process.env.PUBSUB_EMULATOR_HOST = endpoint;
  const pubsub = new PubSub({ projectId: "ordered-kill" });
  const sub = pubsub.subscription(subscription, { streamingOptions: { maxStreams: 2 } });
  sub.on("message", (message) => {
    if (!hold) {
      message.ack();
    }
    process.stdout.write(`${message.data.toString()}\n`);
  });
  sub.on("error", (error) => process.stderr.write(`subscriber: ${error.message}\n`));
  process.on("SIGTERM", () => {
    void sub.close().then(() => process.exit(0));
  });
  setInterval(() => {}, 60_000);
}

interface Case {
  readonly ordered: boolean;
  readonly retryPolicy: boolean;
  readonly deadLetter: boolean;
  readonly stop: "SIGKILL" | "SIGTERM";
}

async function runCase(
  endpoint: string,
  index: number,
  { ordered, retryPolicy, deadLetter, stop }: Case,
  waitMs: number,
): Promise<{ heldByFirst: number; first: number; second: number }> {
  const pubsub = new PubSub({ projectId: "ordered-kill" });
  const topicName = `case-${index}`;
  const [topic] = await pubsub.createTopic(topicName);
  if (deadLetter) {
    await pubsub.createTopic(`${topicName}-dead-letter`);
  }
  await topic.createSubscription(`${topicName}-sub`, {
    ackDeadlineSeconds: 30,
    enableMessageOrdering: ordered,
    ...(retryPolicy
      ? { retryPolicy: { minimumBackoff: { seconds: 1 }, maximumBackoff: { seconds: 10 } } }
      : {}),
    ...(deadLetter
      ? {
          deadLetterPolicy: {
            deadLetterTopic: `projects/ordered-kill/topics/${topicName}-dead-letter`,
            maxDeliveryAttempts: 10,
          },
        }
      : {}),
  });
  const publisher = pubsub.topic(topicName, { messageOrdering: true });
  const received = new Set<string>();
  const subscriber = (hold: boolean): ChildProcess => {
    const child = spawn(
      process.execPath,
      [...TS_NODE_ARGS, SELF, "--subscriber", endpoint, `${topicName}-sub`, hold ? "hold" : "ack"],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let rest = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      const lines = (rest + chunk.toString()).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) {
        received.add(line);
      }
    });
    return child;
  };
  const publish = (prefix: string, n: number) =>
    Promise.all(
      Array.from({ length: n }, (_, i) =>
        publisher.publishMessage({
          data: Buffer.from(`${prefix}-${i}`),
          orderingKey: `${prefix}-key-${i}`,
        }),
      ),
    );
  const count = (prefix: string) => [...received].filter((r) => r.startsWith(prefix)).length;

  const first = subscriber(true);
  await sleep(3_000);
  await publish("first", 100);
  await sleep(3_000);
  first.kill(stop);
  await sleep(1_000);
  const heldByFirst = count("first");
  received.clear();
  const second = subscriber(false);
  await sleep(3_000);
  await publish("second", 200);
  await sleep(waitMs);
  second.kill("SIGKILL");
  await pubsub.close();
  return { heldByFirst, first: count("first"), second: count("second") };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { wait: { type: "string" } } });
  const waitMs = Number(values.wait ?? 60) * 1000;
  const emulator = await startEmulator();
  process.env.PUBSUB_EMULATOR_HOST = emulator.endpoint;
  try {
    const cases: Case[] = [
      { ordered: false, retryPolicy: false, deadLetter: false, stop: "SIGKILL" },
      { ordered: false, retryPolicy: true, deadLetter: false, stop: "SIGKILL" },
      { ordered: false, retryPolicy: true, deadLetter: true, stop: "SIGKILL" },
      { ordered: true, retryPolicy: false, deadLetter: false, stop: "SIGKILL" },
      { ordered: true, retryPolicy: true, deadLetter: true, stop: "SIGKILL" },
      { ordered: true, retryPolicy: true, deadLetter: true, stop: "SIGTERM" },
    ];
    const rows: string[] = [];
    for (const [i, c] of cases.entries()) {
      const { heldByFirst, first, second } = await runCase(emulator.endpoint, i, c, waitMs);
      rows.push(
        `| ${c.ordered ? "yes" : "no"} | ${c.retryPolicy ? "yes" : "no"} | ${c.deadLetter ? "yes" : "no"} | ${c.stop} | ${heldByFirst}/100 | ${first}/100 | ${second}/200 |`,
      );
      process.stdout.write(`${rows.at(-1)}\n`);
    }
    process.stdout.write(
      [
        "",
        `The first subscriber held what it got and was stopped; the second acked for ${waitMs / 1000} s (ack deadline 30 s).`,
        "| ordered | retry policy | dead-letter policy | first stopped by | first batch held by the first | first batch redelivered to the second | second batch received by the second |",
        "|---|---|---|---|---|---|---|",
        ...rows,
        "",
      ].join("\n"),
    );
  } finally {
    await emulator.stop();
  }
}

if (process.argv[2] === "--subscriber") {
  subscriberMain(process.argv[3] as string, process.argv[4] as string, process.argv[5] === "hold");
} else {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
      process.exit(1);
    },
  );
}
