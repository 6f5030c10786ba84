/**
 * What `protoevents start` shows: counts taken from Pub/Sub itself (its own
 * monitoring subscriptions on every event topic and every dead-letter topic),
 * drawn in place on a terminal with log-update, or as plain lines elsewhere.
 */
import type { Message, PubSub, Subscription } from "@google-cloud/pubsub";
import type { ContractRegistry } from "@protoevents/runtime";
import { createLogUpdate } from "log-update";
import { NotificationKind } from "../../generated/checkout/v1/notification_events_pb.js";
import { decodeNotificationSent } from "../../generated/checkout/v1/notification_events_pe.js";
import {
  ORDER_CANCELLED_TOPIC,
  ORDER_CONFIRMED_TOPIC,
} from "../../generated/checkout/v1/order_events_pe.js";

const NOTIFICATION_SENT_TOPIC = "checkout.notification-sent";
/** Admin calls in flight at once while creating and deleting monitoring subscriptions. */
const ADMIN_CONCURRENCY = 8;
/** How long one delete of a monitoring subscription may take at exit. */
const DELETE_TIMEOUT_MS = 3_000;

/** The notices an order gets, by kind. */
export type NoticeKind = "confirmation" | "cancellation" | "shipping";

async function eachLimited<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      await fn(items[next++] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(ADMIN_CONCURRENCY, items.length) }, worker));
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** `checkout.order-placed` → `order-placed`. */
export function shortTopic(topic: string): string {
  return topic.replace(/^checkout\./, "").replace(/\.dead-letter$/, "");
}

/**
 * Counts what flows through Pub/Sub: one subscription of its own per event
 * topic and per dead-letter topic, named `monitor.<run id>.<topic>`, created
 * before the services start (so it sees every message) and deleted by
 * {@link PubSubMonitor.close}. Every message is acked; a redelivery (same
 * Pub/Sub message id) is not counted twice.
 */
export class PubSubMonitor {
  /** Event topic → messages seen, in registry order. */
  readonly events = new Map<string, number>();
  /** Dead-letter topic → messages seen. */
  readonly deadLetters = new Map<string, number>();
  /** Order ids seen on the OrderConfirmed topic. */
  readonly confirmed = new Set<string>();
  /** Order ids seen on the OrderCancelled topic. */
  readonly cancelled = new Set<string>();
  /** Order id → the notices NotificationSent reported for it. */
  readonly notices = new Map<string, Set<NoticeKind>>();
  /** Errors the subscribers reported (the last few). */
  readonly errors: string[] = [];

  private readonly seen = new Map<string, Set<string>>();
  private readonly subscriptions: Subscription[] = [];
  private closed = false;

  private constructor(
    private readonly pubsub: PubSub,
    private readonly prefix: string,
  ) {}

  /** The subscription names a run uses, for topics in the registry. */
  static topicsOf(registry: ContractRegistry): { events: string[]; deadLetters: string[] } {
    const events = [...new Set(registry.events.map((e) => e.topic))];
    const deadLetters = [
      ...new Set(
        registry.applications.flatMap((a) =>
          a.subscriptions.flatMap((s) => (s.deadLetter === undefined ? [] : [s.deadLetter.topic])),
        ),
      ),
    ];
    return { events, deadLetters };
  }

  /** Create the monitoring subscriptions and start counting. */
  static async start(
    pubsub: PubSub,
    registry: ContractRegistry,
    runId: string,
  ): Promise<PubSubMonitor> {
    const monitor = new PubSubMonitor(pubsub, `monitor.${runId}.`);
    const { events, deadLetters } = PubSubMonitor.topicsOf(registry);
    for (const topic of events) {
      monitor.events.set(topic, 0);
    }
    for (const topic of deadLetters) {
      monitor.deadLetters.set(topic, 0);
    }
    try {
      await eachLimited([...events, ...deadLetters], (topic) => monitor.watch(topic));
    } catch (error) {
      await monitor.close();
      throw error;
    }
    return monitor;
  }

  private async watch(topic: string): Promise<void> {
    const name = `${this.prefix}${topic}`;
    try {
      await this.pubsub.topic(topic).createSubscription(name, { ackDeadlineSeconds: 60 });
    } catch (error) {
      // ALREADY_EXISTS: a run with the same id; take it over.
      if ((error as { code?: unknown }).code !== 6) {
        throw new Error(
          `could not create the monitoring subscription ${name}: ${(error as Error).message}`,
        );
      }
    }
    const seen = new Set<string>();
    this.seen.set(topic, seen);
    const subscription = this.pubsub.subscription(name, {
      flowControl: { maxMessages: 1_000, allowExcessMessages: true },
      streamingOptions: { maxStreams: 1 },
    });
    subscription.on("message", (message: Message) => {
      message.ack();
      if (seen.has(message.id)) {
        return;
      }
      seen.add(message.id);
      this.count(topic, message);
    });
    subscription.on("error", (error: Error) => {
      if (!this.closed) {
        this.errors.push(`${name}: ${error.message}`);
        if (this.errors.length > 5) {
          this.errors.shift();
        }
      }
    });
    this.subscriptions.push(subscription);
  }

  private count(topic: string, message: Message): void {
    const deadLetter = this.deadLetters.get(topic);
    if (deadLetter !== undefined) {
      this.deadLetters.set(topic, deadLetter + 1);
      return;
    }
    this.events.set(topic, (this.events.get(topic) ?? 0) + 1);
    const orderId = message.attributes["ce-subject"];
    if (orderId === undefined || orderId === "") {
      return;
    }
    if (topic === ORDER_CONFIRMED_TOPIC) {
      this.confirmed.add(orderId);
    } else if (topic === ORDER_CANCELLED_TOPIC) {
      this.cancelled.add(orderId);
    } else if (topic === NOTIFICATION_SENT_TOPIC) {
      try {
        const { event } = decodeNotificationSent({
          data: message.data,
          attributes: message.attributes,
        });
        const kind: NoticeKind | undefined =
          event.kind === NotificationKind.CONFIRMATION
            ? "confirmation"
            : event.kind === NotificationKind.CANCELLATION
              ? "cancellation"
              : event.kind === NotificationKind.SHIPPING
                ? "shipping"
                : undefined;
        if (kind !== undefined) {
          let kinds = this.notices.get(event.orderId);
          if (kinds === undefined) {
            kinds = new Set();
            this.notices.set(event.orderId, kinds);
          }
          kinds.add(kind);
        }
      } catch {
        // Not ours to judge: the notification's consumers dead-letter what does not decode.
      }
    }
  }

  /** Stop counting and delete the monitoring subscriptions. Idempotent; never throws. */
  async close(): Promise<void> {
    if (this.closed) {
      return;
    }
    this.closed = true;
    // All at once: each step is bounded, so an emulator that went away costs seconds, not minutes.
    const subscriptions = this.subscriptions.splice(0);
    await Promise.all(
      subscriptions.map(async (subscription) => {
        await withTimeout(
          subscription.close().catch(() => undefined),
          DELETE_TIMEOUT_MS,
        );
        await withTimeout(
          subscription.delete().catch(() => undefined),
          DELETE_TIMEOUT_MS,
        );
      }),
    );
  }
}

/** What the progress view draws. */
export interface ProgressSnapshot {
  readonly elapsedMs: number;
  /** Orders to place; 0 means until stopped. */
  readonly target: number;
  readonly placed: number;
  /** PlaceOrder calls the order service refused. */
  readonly rejected: number;
  readonly confirmed: number;
  readonly cancelled: number;
  readonly events: ReadonlyMap<string, number>;
  readonly deadLetters: ReadonlyMap<string, number>;
  /** One line on what happens now. */
  readonly status: string;
  /** Extra lines under the counts (where the logs are, how to stop). */
  readonly footer: readonly string[];
}

/** `mm:ss`, or `h:mm:ss` past an hour. */
export function formatElapsed(ms: number): string {
  const total = Math.floor(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const two = (n: number) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${two(m)}:${two(s)}` : `${two(m)}:${two(s)}`;
}

function sum(values: Iterable<number>): number {
  let total = 0;
  for (const value of values) {
    total += value;
  }
  return total;
}

/** Name–count pairs laid out in as many columns as fit `width`. */
function columns(entries: readonly [string, number][], width: number, indent: number): string[] {
  if (entries.length === 0) {
    return [];
  }
  const nameWidth = Math.max(...entries.map(([name]) => name.length));
  const numberWidth = Math.max(...entries.map(([, n]) => String(n).length));
  const cell = nameWidth + 1 + numberWidth;
  const gap = 4;
  const perRow = Math.max(1, Math.floor((width - indent + gap) / (cell + gap)));
  const rows = Math.ceil(entries.length / perRow);
  const lines: string[] = [];
  for (let r = 0; r < rows; r++) {
    const cells: string[] = [];
    for (let c = 0; c < perRow; c++) {
      // Column-major: read down, then across.
      const entry = entries[c * rows + r];
      if (entry !== undefined) {
        cells.push(`${entry[0].padEnd(nameWidth)} ${String(entry[1]).padStart(numberWidth)}`);
      }
    }
    lines.push(cells.join(" ".repeat(gap)).trimEnd());
  }
  return lines;
}

/** The counts of orders, one line. */
function orderCounts(s: ProgressSnapshot): string {
  const pending = Math.max(0, s.placed - s.confirmed - s.cancelled);
  const placed = s.target > 0 ? `${s.placed}/${s.target}` : `${s.placed}`;
  return `placed ${placed}, confirmed ${s.confirmed}, cancelled ${s.cancelled}, pending ${pending}, rejected ${s.rejected}`;
}

/** The multi-line view for a terminal. */
export function renderProgress(s: ProgressSnapshot, width = 80): string {
  const label = (text: string) => text.padEnd(14);
  const indent = 14;
  const pad = " ".repeat(indent);
  const events = columns(
    [...s.events].map(([topic, n]) => [shortTopic(topic), n]),
    width,
    indent,
  );
  const deadTotal = sum(s.deadLetters.values());
  // Only the dead-letter topics that hold something: 15 zeros would push the rest off the screen.
  const dead = columns(
    [...s.deadLetters].filter(([, n]) => n > 0).map(([topic, n]) => [shortTopic(topic), n]),
    width,
    indent,
  );
  const lines = [
    `${label("Orders")}${orderCounts(s)}`,
    `${label("Events")}${events[0] ?? "none yet"}`,
    ...events.slice(1).map((line) => `${pad}${line}`),
    `${label("Dead letters")}${deadTotal} (${s.deadLetters.size} dead-letter topics watched)${deadTotal > 0 ? ":" : ""}`,
    ...(deadTotal > 0 ? dead.map((line) => `${pad}${line}`) : []),
    `${label("Elapsed")}${formatElapsed(s.elapsedMs)} · ${s.status}`,
    ...s.footer,
  ];
  return lines.join("\n");
}

/** One line per second when stdout is not a terminal. */
export function renderProgressLine(s: ProgressSnapshot): string {
  return `progress ${formatElapsed(s.elapsedMs)}: ${orderCounts(s)}; events ${sum(s.events.values())}, dead letters ${sum(s.deadLetters.values())}`;
}

/** The last lines of a run. */
export function renderSummary(s: ProgressSnapshot): string[] {
  const pending = Math.max(0, s.placed - s.confirmed - s.cancelled);
  const nonZero = (map: ReadonlyMap<string, number>) =>
    [...map]
      .filter(([, n]) => n > 0)
      .map(([topic, n]) => `${shortTopic(topic)} ${n}`)
      .join(", ");
  const deadTotal = sum(s.deadLetters.values());
  return [
    `summary: ${s.placed} placed, ${s.confirmed} confirmed, ${s.cancelled} cancelled, ${pending} pending, ${s.rejected} rejected; ${sum(s.events.values())} events, ${deadTotal} dead letters; ${(s.elapsedMs / 1000).toFixed(1)} s`,
    `events: ${nonZero(s.events) || "none"}`,
    ...(deadTotal > 0 ? [`dead letters: ${nonZero(s.deadLetters)}`] : []),
  ];
}

/** Where progress and messages go: redrawn in place on a terminal, appended lines elsewhere. */
export interface ProgressView {
  /** A line that stays (above the live view on a terminal). */
  print(line: string): void;
  /** Redraw (terminal) or print a progress line (elsewhere, at most once a second). */
  update(snapshot: ProgressSnapshot): void;
  /** Leave the last view on screen and stop redrawing. */
  done(): void;
}

/** The view for `stream`: log-update on a TTY, plain lines otherwise. */
export function createProgressView(stream: NodeJS.WriteStream = process.stdout): ProgressView {
  if (stream.isTTY === true) {
    const live = createLogUpdate(stream);
    let last: ProgressSnapshot | undefined;
    let active = false;
    return {
      print(line) {
        if (active) {
          live.persist(line);
        } else {
          stream.write(`${line}\n`);
        }
      },
      update(snapshot) {
        last = snapshot;
        active = true;
        live(renderProgress(snapshot, stream.columns ?? 80));
      },
      done() {
        if (active && last !== undefined) {
          live(renderProgress(last, stream.columns ?? 80));
          live.done();
        }
        active = false;
      },
    };
  }
  let lastLine = 0;
  return {
    print(line) {
      stream.write(`${line}\n`);
    },
    update(snapshot) {
      const now = Date.now();
      if (now - lastLine >= 1_000) {
        lastLine = now;
        stream.write(`${renderProgressLine(snapshot)}\n`);
      }
    },
    done() {},
  };
}
