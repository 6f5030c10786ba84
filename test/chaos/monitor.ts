/**
 * The chaos run's raw client on the event topics: one subscription of its
 * own per topic, created before the services start, that
 *
 * - records every distinct event (by `ce-id`) per order and type, and the
 *   NotificationSent events per order and notice kind, for the invariants;
 * - while the schedule runs, copies events back onto their topic with the
 *   same `ce-id` and ordering key: at once (a duplicate) or 1–5 s later (a
 *   late, out-of-order delivery), as {@link copyDecision} says.
 */
import type { Message, PubSub, Subscription, Topic } from "@google-cloud/pubsub";
import { NotificationKind } from "../../generated/checkout/v1/notification_events_pb.js";
import { decodeNotificationSent } from "../../generated/checkout/v1/notification_events_pe.js";
import type { ChaosOptions } from "./options.js";
import { type CopyDecision, copyDecision } from "./schedule.js";

/** The topic NotificationSent is published on. */
export const NOTIFICATION_SENT_TOPIC = "checkout.notification-sent";

/** `ce-id`s starting with this are poison messages, never copied or counted. */
export const POISON_ID_PREFIX = "poison-";

/** How long a copy decision waits for the order's number to be known (the order API's answer). */
const ORDER_NUMBER_WAIT_MS = 5_000;

/** The kind of a NotificationSent, as the notification service names it. */
export function noticeKindOf(kind: NotificationKind): string {
  switch (kind) {
    case NotificationKind.CONFIRMATION:
      return "confirmation";
    case NotificationKind.CANCELLATION:
      return "cancellation";
    case NotificationKind.SHIPPING:
      return "shipping";
    default:
      return `unknown-${kind}`;
  }
}

/** What the monitor injected. */
export interface InjectedCopies {
  /** Copies published at once. */
  duplicates: number;
  /** Copies published late. */
  delayed: number;
  /** Copies whose publish failed. */
  failed: number;
}

/** An event the monitor saw, kept to re-send it. */
export interface SeenEvent {
  readonly data: Buffer;
  readonly attributes: Readonly<Record<string, string>>;
  readonly orderingKey: string | undefined;
  /** When the monitor first saw it (about when it was published), Unix ms. */
  readonly firstSeenAt: number;
}

/** Events the monitor saw, for the invariants. */
export interface ObservedEvents {
  /** Order id → short event type (`PaymentProcessed`, `NotificationSent/confirmation`, …) → distinct `ce-id`s. */
  readonly byOrder: ReadonlyMap<string, ReadonlyMap<string, ReadonlySet<string>>>;
  /** Topic → its distinct events by `ce-id`. */
  readonly byTopic: ReadonlyMap<string, ReadonlyMap<string, SeenEvent>>;
}

export class ChaosMonitor implements ObservedEvents {
  readonly byOrder = new Map<string, Map<string, Set<string>>>();
  readonly byTopic = new Map<string, Map<string, SeenEvent>>();
  readonly injected: InjectedCopies = { duplicates: 0, delayed: 0, failed: 0 };
  readonly errors: string[] = [];
  /** Copy while true: set by the run for the duration of the schedule. */
  copying = false;
  private readonly subscriptions: Subscription[] = [];
  private readonly topics = new Map<string, Topic>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly publishes = new Set<Promise<unknown>>();
  private closed = false;

  private constructor(
    private readonly pubsub: PubSub,
    private readonly prefix: string,
    private readonly options: Pick<ChaosOptions, "seed" | "duplicateRate" | "delayRate">,
    private readonly orderNumber: (orderId: string) => number | undefined,
  ) {}

  /** Create a subscription per topic and start watching. */
  static async start(
    pubsub: PubSub,
    topics: readonly string[],
    options: Pick<ChaosOptions, "seed" | "duplicateRate" | "delayRate">,
    orderNumber: (orderId: string) => number | undefined,
  ): Promise<ChaosMonitor> {
    const monitor = new ChaosMonitor(pubsub, `chaos-monitor.`, options, orderNumber);
    try {
      for (const topic of topics) {
        await monitor.watch(topic);
      }
    } catch (error) {
      await monitor.close();
      throw error;
    }
    return monitor;
  }

  private async watch(topic: string): Promise<void> {
    const name = `${this.prefix}${topic}`;
    await this.pubsub.topic(topic).createSubscription(name, { ackDeadlineSeconds: 60 });
    const seen = new Map<string, SeenEvent>();
    this.byTopic.set(topic, seen);
    const subscription = this.pubsub.subscription(name, {
      flowControl: { maxMessages: 2_000, allowExcessMessages: true },
      streamingOptions: { maxStreams: 1 },
    });
    subscription.on("message", (message: Message) => {
      message.ack();
      const id = message.attributes["ce-id"];
      if (id === undefined || id.startsWith(POISON_ID_PREFIX) || seen.has(id)) {
        return;
      }
      seen.set(id, {
        data: message.data,
        attributes: { ...message.attributes },
        orderingKey:
          message.orderingKey === undefined || message.orderingKey === ""
            ? undefined
            : message.orderingKey,
        firstSeenAt: Date.now(),
      });
      this.record(topic, id, message);
      if (this.copying) {
        this.considerCopy(topic, message, Date.now() + ORDER_NUMBER_WAIT_MS);
      }
    });
    subscription.on("error", (error: Error) => {
      if (!this.closed) {
        this.errors.push(`${name}: ${error.message}`);
      }
    });
    this.subscriptions.push(subscription);
  }

  private record(topic: string, id: string, message: Message): void {
    const orderId = message.attributes["ce-subject"];
    const type = message.attributes["ce-type"]?.replace(/^checkout\.v1\./, "");
    if (orderId === undefined || type === undefined) {
      return;
    }
    let key = type;
    if (topic === NOTIFICATION_SENT_TOPIC) {
      try {
        const { event } = decodeNotificationSent({
          data: message.data,
          attributes: message.attributes,
        });
        key = `${type}/${noticeKindOf(event.kind)}`;
      } catch (error) {
        this.errors.push(`NotificationSent ${id} does not decode: ${(error as Error).message}`);
      }
    }
    let types = this.byOrder.get(orderId);
    if (types === undefined) {
      types = new Map();
      this.byOrder.set(orderId, types);
    }
    let ids = types.get(key);
    if (ids === undefined) {
      ids = new Set();
      types.set(key, ids);
    }
    ids.add(id);
  }

  /** Decide by the order's number in the run (deterministic per seed); wait a moment for it. */
  private considerCopy(topic: string, message: Message, waitUntil: number): void {
    const subject = message.attributes["ce-subject"] ?? message.id;
    const number = this.orderNumber(subject);
    if (number === undefined && subject.startsWith("ord_") && Date.now() < waitUntil) {
      this.later(100, () => this.considerCopy(topic, message, waitUntil));
      return;
    }
    const decision: CopyDecision = copyDecision(
      this.options.seed,
      this.options,
      topic,
      number === undefined ? subject : `order-${number}`,
    );
    switch (decision.kind) {
      case "none":
        return;
      case "duplicate":
        this.injected.duplicates++;
        this.publish(topic, message.data, message.attributes, message.orderingKey);
        return;
      case "delayed":
        this.injected.delayed++;
        this.later(decision.delayMs, () =>
          this.publish(topic, message.data, message.attributes, message.orderingKey),
        );
        return;
    }
  }

  private later(ms: number, work: () => void): void {
    if (this.closed) {
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      work();
    }, ms);
    this.timers.add(timer);
  }

  /**
   * Publish a message onto `topic` as given (same `ce-id`, same ordering
   * key): a copy, or a re-sent delivery with extra attributes.
   */
  publish(
    topic: string,
    data: Buffer,
    attributes: Readonly<Record<string, string>>,
    orderingKey: string | undefined,
  ): void {
    if (this.closed) {
      return;
    }
    let publisher = this.topics.get(topic);
    if (publisher === undefined) {
      publisher = this.pubsub.topic(topic, { messageOrdering: true });
      this.topics.set(topic, publisher);
    }
    const target = publisher;
    const key = orderingKey === undefined || orderingKey === "" ? undefined : orderingKey;
    const publish = target
      .publishMessage(
        key === undefined
          ? { data, attributes: { ...attributes } }
          : { data, attributes: { ...attributes }, orderingKey: key },
      )
      .catch((error: unknown) => {
        this.injected.failed++;
        this.errors.push(`publishing to ${topic} failed: ${(error as Error).message}`);
        if (key !== undefined) {
          target.resumePublishing(key);
        }
      });
    this.publishes.add(publish);
    void publish.finally(() => this.publishes.delete(publish));
  }

  /** Copies scheduled but not yet published. */
  get pendingCopies(): number {
    return this.timers.size + this.publishes.size;
  }

  /** Stop, publish nothing more, delete the subscriptions. Idempotent; never throws. */
  async close(): Promise<void> {
    if (this.closed) {
      return;
    }
    this.closed = true;
    for (const timer of this.timers) {
      clearTimeout(timer);
    }
    this.timers.clear();
    await Promise.allSettled([...this.publishes]);
    for (const subscription of this.subscriptions) {
      await subscription.close().catch(() => undefined);
      await subscription.delete().catch(() => undefined);
    }
  }
}
