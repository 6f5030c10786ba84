/**
 * Dead-letter tooling: read the dead-letter subscriptions the contracts
 * provision (`<subscription>.dead-letter`), summarise them by reason, decode
 * what they hold as the events' proto types (`pii` redacted), and replay
 * selected dead letters to the one subscription that failed.
 *
 * Reading never consumes: messages are pulled, held for the duration of the
 * command, and released (ack deadline 0) so they stay in the dead-letter
 * subscription. Only a replay acks, and only after Pub/Sub confirmed the
 * republished message.
 */
import { type PubSub, type Topic, v1 } from "@google-cloud/pubsub";
import { DeadLetterAttribute, REPLAY_FOR_ATTRIBUTE } from "./consumer.js";
import type {
  ContractRegistry,
  DeadLetterContract,
  EventContract,
  SubscriptionContract,
} from "./contract.js";
import { DEAD_LETTER_SHOWN_BYTES, DEFAULT_DEAD_LETTER_LIMIT } from "./default-options.js";
import { decodeEvent, type EventJsonView, toJsonView } from "./envelope.js";
import {
  Code,
  type FieldViolation,
  isProtoeventsError,
  ProtoeventsError,
  reasonToString,
} from "./errors.js";

/** The reason of a dead letter Pub/Sub moved after max delivery attempts. */
export const EXHAUSTED_RETRIES = "exhausted-retries";

/** The reason of a message in a dead-letter topic that carries neither protoevents' nor Pub/Sub's attributes. */
export const UNKNOWN_REASON = "unknown";

/** Attributes Pub/Sub adds when it moves a message to a dead-letter topic. */
const PUBSUB_DEAD_LETTER_PREFIX = "CloudPubSubDeadLetterSource";
/** Prefix of the attributes the consumer adds when it dead-letters a message itself. */
const PROTOEVENTS_DEAD_LETTER_PREFIX = "protoevents-dead-letter-";

/** Pub/Sub returns at most 1,000 messages per pull. */
const MAX_PULL = 1000;

/**
 * How long a command holds the dead letters it read. Long enough to publish
 * the replays and ack them; short enough that a crashed command returns them
 * to the subscription within a minute.
 */
const LEASE_SECONDS = 60;

/**
 * How long one pull waits for messages. The emulator answers an empty pull
 * after about 2 s; real Pub/Sub may hold a pull open until messages arrive.
 */
const PULL_WAIT_MS = 10_000;

/** Dead-letter subscriptions read at once. */
const PULL_CONCURRENCY = 8;

const DEADLINE_EXCEEDED = 4;
const NOT_FOUND = 5;

/** One message in a dead-letter subscription. */
export interface DeadLetter {
  /** The subscription that could not process it: the one a replay goes to. */
  readonly subscription: string;
  /** The dead-letter subscription it was read from. */
  readonly deadLetterSubscription: string;
  /** The Pub/Sub message id in the dead-letter topic. */
  readonly messageId: string;
  /** When it reached the dead-letter topic. */
  readonly deadLetteredAt: Date;
  /** `decode_failed`, `validation_failed`, `unknown_event_type`, `permanent`, {@link EXHAUSTED_RETRIES} or {@link UNKNOWN_REASON}. */
  readonly reason: string;
  /** The failure's message, when protoevents dead-lettered it. */
  readonly detail: string | undefined;
  /** Deliveries before it was dead-lettered: Pub/Sub's count for exhausted retries, the failed attempt otherwise. */
  readonly deliveryCount: number | undefined;
  /** `ce-id`, when it has one. */
  readonly eventId: string | undefined;
  /** `ce-type`, when it has one. */
  readonly eventType: string | undefined;
  /** The original ordering key, when the event had one. */
  readonly orderingKey: string | undefined;
  readonly attributes: Readonly<Record<string, string>>;
  readonly data: Buffer;
}

/** Which dead-letter subscriptions to read, and how much. */
export interface DeadLetterQuery {
  /**
   * Subscriptions (or their dead-letter subscriptions) to read.
   * @default every subscription of the registry that dead-letters
   */
  readonly subscriptions?: readonly string[] | undefined;
  /** Dead letters read per subscription at most. @default DEFAULT_DEAD_LETTER_LIMIT */
  readonly limit?: number | undefined;
}

/** Which dead letters a command acts on. Both given: both must match. */
export interface DeadLetterSelection {
  /** Only dead letters with this reason. */
  readonly reason?: string | undefined;
  /** Only dead letters with one of these event ids (`ce-id`). */
  readonly eventIds?: readonly string[] | undefined;
}

/** Dead letters of one reason in one subscription. */
export interface DeadLetterGroup {
  readonly reason: string;
  readonly count: number;
  /** When the oldest of them was dead-lettered, RFC 3339. */
  readonly oldest: string;
  /** The distinct delivery counts, e.g. `[10]` for exhausted retries of a 10-attempt subscription. */
  readonly deliveryCounts: readonly number[];
  /** The distinct `ce-type`s. */
  readonly eventTypes: readonly string[];
}

/** The dead letters of one subscription, by reason. */
export interface DeadLetterSummary {
  readonly subscription: string;
  readonly deadLetterSubscription: string;
  readonly count: number;
  /** When the oldest was dead-lettered, RFC 3339; undefined when there is none. */
  readonly oldest: string | undefined;
  /** The read stopped at the limit: there may be more. */
  readonly truncated: boolean;
  /** Largest group first. */
  readonly groups: readonly DeadLetterGroup[];
}

interface DeadLetterViewBase {
  readonly subscription: string;
  readonly deadLetterSubscription: string;
  readonly messageId: string;
  /** RFC 3339. */
  readonly deadLetteredAt: string;
  readonly reason: string;
  readonly detail?: string;
  readonly deliveryCount?: number;
  readonly orderingKey?: string;
  /** Every attribute, envelope and dead-letter bookkeeping included. */
  readonly attributes: Readonly<Record<string, string>>;
}

/** A dead letter decoded as its proto type, `pii` fields redacted. */
export interface DecodedDeadLetterView extends DeadLetterViewBase {
  readonly kind: "decoded";
  /** The seed-style view: eventId, eventType, timestamp, source, subject, payload (redacted). */
  readonly event: EventJsonView;
  /** Field rules the payload breaks (paths and rules, never values). */
  readonly violations: readonly FieldViolation[];
}

/** A dead letter that is not a decodable event of these contracts: its bytes. */
export interface UndecodableDeadLetterView extends DeadLetterViewBase {
  readonly kind: "undecodable";
  /** Why it cannot be decoded. */
  readonly error: string;
  /**
   * Its first {@link DEAD_LETTER_SHOWN_BYTES} bytes (`truncated` when there are more): a
   * dead-lettered message may be up to 10 MB.
   */
  readonly data: {
    readonly size: number;
    readonly hex: string;
    readonly base64: string;
    readonly truncated: boolean;
  };
}

/** What `dlq show` prints for one dead letter. */
export type DeadLetterView = DecodedDeadLetterView | UndecodableDeadLetterView;

/** What happened to one selected dead letter in a replay. */
export interface ReplayOutcome {
  readonly subscription: string;
  /** The dead letter's message id. */
  readonly messageId: string;
  readonly eventId: string | undefined;
  readonly eventType: string | undefined;
  readonly reason: string;
  /** The topic it was (or would be) republished to. */
  readonly topic: string;
  /**
   * `replayed`: republished, confirmed, and acked in the dead-letter
   * subscription; `would-replay`: a dry run; `skipped`: not replayable (see
   * `error`); `failed`: the republish or the ack failed (see `error`).
   */
  readonly result: "replayed" | "would-replay" | "skipped" | "failed";
  /** The republished message's id. */
  readonly replayMessageId?: string;
  readonly error?: string;
}

/** Options of {@link replayDeadLetters}. */
export interface ReplayOptions extends DeadLetterQuery, DeadLetterSelection {
  /** Replay every dead letter read; required when neither reason nor event ids select. */
  readonly all?: boolean | undefined;
  /** Only report what would be replayed; publish and ack nothing. */
  readonly dryRun?: boolean | undefined;
}

/** What {@link replayDeadLetters} did. */
export interface ReplayReport {
  /** One per selected dead letter, oldest first. */
  readonly outcomes: readonly ReplayOutcome[];
  /** Subscriptions whose read stopped at the limit. */
  readonly truncated: readonly string[];
}

/** The reason, detail and delivery count of a dead letter, from its attributes. */
export function deadLetterReason(attributes: Readonly<Record<string, string>>): {
  readonly reason: string;
  readonly detail: string | undefined;
  readonly deliveryCount: number | undefined;
} {
  const count = (value: string | undefined): number | undefined => {
    const n = value === undefined ? Number.NaN : Number(value);
    return Number.isSafeInteger(n) ? n : undefined;
  };
  const reason = attributes[DeadLetterAttribute.reason];
  if (reason !== undefined && reason !== "") {
    return {
      reason,
      detail: attributes[DeadLetterAttribute.detail],
      deliveryCount: count(attributes[DeadLetterAttribute.deliveryAttempt]),
    };
  }
  const deliveries = count(attributes[`${PUBSUB_DEAD_LETTER_PREFIX}DeliveryCount`]);
  if (deliveries !== undefined) {
    return {
      reason: EXHAUSTED_RETRIES,
      detail: `Pub/Sub moved it after ${deliveries} delivery attempts`,
      deliveryCount: deliveries,
    };
  }
  return { reason: UNKNOWN_REASON, detail: undefined, deliveryCount: undefined };
}

/**
 * The attributes a replay publishes: every original attribute (so `ce-id`
 * is kept and the inbox deduplicates), minus the dead-letter bookkeeping
 * (`protoevents-dead-letter-*`, `protoevents-ordering-key`,
 * `CloudPubSubDeadLetterSource*`, an earlier replay's target), plus
 * {@link REPLAY_FOR_ATTRIBUTE} naming the subscription that failed.
 */
export function replayAttributes(letter: DeadLetter): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const [key, value] of Object.entries(letter.attributes)) {
    if (
      key.startsWith(PROTOEVENTS_DEAD_LETTER_PREFIX) ||
      key.startsWith(PUBSUB_DEAD_LETTER_PREFIX) ||
      key === DeadLetterAttribute.orderingKey ||
      key === REPLAY_FOR_ATTRIBUTE
    ) {
      continue;
    }
    attributes[key] = value;
  }
  attributes[REPLAY_FOR_ATTRIBUTE] = letter.subscription;
  return attributes;
}

/** Whether a dead letter matches a selection. */
export function selectsDeadLetter(selection: DeadLetterSelection, letter: DeadLetter): boolean {
  if (selection.reason !== undefined && letter.reason !== selection.reason) {
    return false;
  }
  if (selection.eventIds !== undefined && selection.eventIds.length > 0) {
    return letter.eventId !== undefined && selection.eventIds.includes(letter.eventId);
  }
  return true;
}

/** Group dead letters by subscription and reason. Every target gets a summary, empty ones too. */
export function summarizeDeadLetters(
  targets: readonly { readonly subscription: string; readonly deadLetterSubscription: string }[],
  letters: readonly DeadLetter[],
  truncated: readonly string[] = [],
): DeadLetterSummary[] {
  return targets.map(({ subscription, deadLetterSubscription }) => {
    const mine = letters.filter((l) => l.subscription === subscription);
    const byReason = new Map<string, DeadLetter[]>();
    for (const letter of mine) {
      const list = byReason.get(letter.reason) ?? [];
      list.push(letter);
      byReason.set(letter.reason, list);
    }
    const groups = [...byReason.entries()]
      .map(([reason, list]): DeadLetterGroup => {
        const counts = new Set<number>();
        const types = new Set<string>();
        for (const l of list) {
          if (l.deliveryCount !== undefined) {
            counts.add(l.deliveryCount);
          }
          if (l.eventType !== undefined) {
            types.add(l.eventType);
          }
        }
        return {
          reason,
          count: list.length,
          oldest: oldestOf(list) as string,
          deliveryCounts: [...counts].sort((a, b) => a - b),
          eventTypes: [...types].sort(),
        };
      })
      .sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason));
    return {
      subscription,
      deadLetterSubscription,
      count: mine.length,
      oldest: oldestOf(mine),
      truncated: truncated.includes(subscription),
      groups,
    };
  });
}

function oldestOf(letters: readonly DeadLetter[]): string | undefined {
  let oldest: Date | undefined;
  for (const letter of letters) {
    if (oldest === undefined || letter.deadLetteredAt < oldest) {
      oldest = letter.deadLetteredAt;
    }
  }
  return oldest?.toISOString();
}

/**
 * Decode a dead letter as the event its `ce-type` names in the registry,
 * with the `pii` fields redacted and the broken field rules listed; a
 * message that is not a decodable event of these contracts comes back as
 * its bytes (hex and base64) with the reason. Never throws.
 */
export function viewDeadLetter(letter: DeadLetter, registry: ContractRegistry): DeadLetterView {
  const base: DeadLetterViewBase = {
    subscription: letter.subscription,
    deadLetterSubscription: letter.deadLetterSubscription,
    messageId: letter.messageId,
    deadLetteredAt: letter.deadLetteredAt.toISOString(),
    reason: letter.reason,
    ...(letter.detail === undefined ? {} : { detail: letter.detail }),
    ...(letter.deliveryCount === undefined ? {} : { deliveryCount: letter.deliveryCount }),
    ...(letter.orderingKey === undefined ? {} : { orderingKey: letter.orderingKey }),
    attributes: letter.attributes,
  };
  let error: string;
  try {
    const contract = eventOf(registry, letter.eventType);
    if (contract === undefined) {
      error =
        letter.eventType === undefined
          ? "no ce-type attribute: not a CloudEvent"
          : `ce-type "${letter.eventType}" is not an event of these contracts`;
    } else {
      const decoded = decodeEvent(contract, letter);
      return {
        ...base,
        kind: "decoded",
        event: toJsonView(contract, decoded),
        violations: contract.validate(decoded.event),
      };
    }
  } catch (thrown) {
    error = isProtoeventsError(thrown) ? thrown.rawMessage : reasonToString(thrown);
  }
  return {
    ...base,
    kind: "undecodable",
    error,
    data: {
      size: letter.data.byteLength,
      hex: letter.data.subarray(0, DEAD_LETTER_SHOWN_BYTES).toString("hex"),
      base64: letter.data.subarray(0, DEAD_LETTER_SHOWN_BYTES).toString("base64"),
      truncated: letter.data.byteLength > DEAD_LETTER_SHOWN_BYTES,
    },
  };
}

function eventOf(registry: ContractRegistry, type: string | undefined): EventContract | undefined {
  if (type === undefined) {
    return undefined;
  }
  return (
    registry.events.find((e) => e.type === type) ??
    registry.applications
      .flatMap((a) => [...a.publishes, ...a.subscriptions.map((s) => s.event)])
      .find((e) => e.type === type)
  );
}

/** A subscription that dead-letters, and where. */
interface Target {
  readonly contract: SubscriptionContract;
  readonly deadLetter: DeadLetterContract;
}

/**
 * The subscriptions to read: all that dead-letter, or those named (by
 * subscription or dead-letter subscription id).
 *
 * @throws ProtoeventsError `invalid_argument` naming an unknown subscription.
 */
function targetsOf(registry: ContractRegistry, names: readonly string[] | undefined): Target[] {
  const all: Target[] = [];
  for (const contract of registry.applications.flatMap((a) => a.subscriptions)) {
    if (contract.deadLetter !== undefined && !all.some((t) => t.contract.name === contract.name)) {
      all.push({ contract, deadLetter: contract.deadLetter });
    }
  }
  if (names === undefined || names.length === 0) {
    return all;
  }
  return names.map((name) => {
    const target = all.find((t) => t.contract.name === name || t.deadLetter.subscription === name);
    if (target === undefined) {
      throw new ProtoeventsError(
        Code.InvalidArgument,
        `no subscription "${name}" with a dead-letter topic in the contracts; known: ${all.map((t) => t.contract.name).join(", ")}`,
      );
    }
    return target;
  });
}

/** Dead letters read and held (leased) until released. */
interface Lease {
  readonly letters: readonly DeadLetter[];
  readonly truncated: readonly string[];
  /** Ack these (they leave the dead-letter subscription). */
  ack(letters: readonly DeadLetter[]): Promise<void>;
  /** Give back every letter not acked, and close the connection. Idempotent. */
  release(): Promise<void>;
}

function grpcCode(error: unknown): unknown {
  return typeof error === "object" && error !== null
    ? (error as { code?: unknown }).code
    : undefined;
}

/** The parts of a pulled message we read (the v1 API's ReceivedMessage). */
interface ReceivedMessage {
  readonly ackId?: string | null;
  readonly message?: {
    readonly data?: Uint8Array | string | null;
    readonly attributes?: Readonly<Record<string, string>> | null;
    readonly messageId?: string | null;
    readonly publishTime?: { readonly seconds?: unknown; readonly nanos?: number | null } | null;
    readonly orderingKey?: string | null;
  } | null;
}

function toDate(timestamp: { seconds?: unknown; nanos?: number | null } | null | undefined): Date {
  if (timestamp === null || timestamp === undefined) {
    return new Date(0);
  }
  const seconds = Number(String(timestamp.seconds ?? 0));
  return new Date(seconds * 1000 + Math.floor((timestamp.nanos ?? 0) / 1e6));
}

/** A pulled message as a {@link DeadLetter} of its target. */
function deadLetterOf(target: Target, m: NonNullable<ReceivedMessage["message"]>): DeadLetter {
  const attributes: Record<string, string> = { ...(m.attributes ?? {}) };
  const data =
    m.data === null || m.data === undefined
      ? Buffer.alloc(0)
      : typeof m.data === "string"
        ? Buffer.from(m.data, "base64")
        : Buffer.from(m.data);
  const kept = attributes[DeadLetterAttribute.orderingKey];
  const orderingKey =
    m.orderingKey !== null && m.orderingKey !== undefined && m.orderingKey !== ""
      ? m.orderingKey
      : kept === undefined || kept === ""
        ? undefined
        : kept;
  return {
    subscription: target.contract.name,
    deadLetterSubscription: target.deadLetter.subscription,
    messageId: m.messageId ?? "",
    deadLetteredAt: toDate(m.publishTime),
    ...deadLetterReason(attributes),
    eventId: attributes["ce-id"],
    eventType: attributes["ce-type"],
    orderingKey,
    attributes,
    data,
  };
}

/**
 * Pull every dead letter (up to the limit per subscription) of the targets
 * and hold them. A subscription is done when a pull comes back empty (on
 * real Pub/Sub each pull waits up to {@link PULL_WAIT_MS} for messages).
 */
async function lease(pubsub: PubSub, targets: readonly Target[], limit: number): Promise<Lease> {
  let client: InstanceType<typeof v1.SubscriberClient>;
  try {
    // The documented way to reach the v1 API with the client's own settings
    // (emulator endpoint or credentials); the config's types are looser.
    const config = (await pubsub.getClientConfig()) as ConstructorParameters<
      typeof v1.SubscriberClient
    >[0];
    client = new v1.SubscriberClient(config);
  } catch (cause) {
    throw new ProtoeventsError(
      Code.PubSubUnavailable,
      `cannot connect to Pub/Sub: ${reasonToString(cause)}`,
      { cause },
    );
  }
  const ackIds = new Map<DeadLetter, { path: string; ackId: string }>();
  const letters: DeadLetter[] = [];
  const truncated: string[] = [];
  const call = async <T>(what: string, work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (cause) {
      throw new ProtoeventsError(
        Code.PubSubUnavailable,
        `could not ${what}: ${reasonToString(cause)}`,
        { cause },
      );
    }
  };
  const releaseAll = async (): Promise<void> => {
    const bySubscription = new Map<string, string[]>();
    for (const { path, ackId } of ackIds.values()) {
      bySubscription.set(path, [...(bySubscription.get(path) ?? []), ackId]);
    }
    ackIds.clear();
    for (const [path, ids] of bySubscription) {
      for (let i = 0; i < ids.length; i += MAX_PULL) {
        await client
          .modifyAckDeadline({
            subscription: path,
            ackIds: ids.slice(i, i + MAX_PULL),
            ackDeadlineSeconds: 0,
          })
          .catch(() => {
            // Not given back now, they return by themselves when the lease expires.
          });
      }
    }
  };
  let released: Promise<void> | undefined;
  const release = (): Promise<void> => {
    released ??= releaseAll().finally(() => client.close());
    return released;
  };

  const pullTarget = async (target: Target): Promise<void> => {
    const path = `projects/${pubsub.projectId}/subscriptions/${target.deadLetter.subscription}`;
    const seen = new Map<string, DeadLetter>();
    while (seen.size < limit) {
      let received: readonly ReceivedMessage[] | null | undefined;
      try {
        const [response] = await client.pull(
          {
            subscription: path,
            maxMessages: Math.min(MAX_PULL, limit - seen.size),
            // Exact and fast on the emulator; real Pub/Sub may answer an
            // immediate pull empty while messages wait, so there we wait.
            returnImmediately: pubsub.isEmulator,
          },
          { timeout: PULL_WAIT_MS },
        );
        received = response.receivedMessages;
      } catch (cause) {
        if (grpcCode(cause) === DEADLINE_EXCEEDED) {
          break;
        }
        if (grpcCode(cause) === NOT_FOUND) {
          throw new ProtoeventsError(
            Code.InvalidArgument,
            `dead-letter subscription ${target.deadLetter.subscription} does not exist in project ${pubsub.projectId}; create it with \`protoevents provision\``,
            { cause },
          );
        }
        throw new ProtoeventsError(
          Code.PubSubUnavailable,
          `could not pull from ${target.deadLetter.subscription}: ${reasonToString(cause)}`,
          { cause },
        );
      }
      if (received === null || received === undefined || received.length === 0) {
        break;
      }
      const fresh = received.filter((r) => typeof r.ackId === "string" && r.ackId !== "");
      await call(`hold the dead letters of ${target.deadLetter.subscription}`, () =>
        client.modifyAckDeadline({
          subscription: path,
          ackIds: fresh.map((r) => r.ackId as string),
          ackDeadlineSeconds: LEASE_SECONDS,
        }),
      );
      for (const r of fresh) {
        const m = r.message ?? {};
        const messageId = m.messageId ?? "";
        const previous = seen.get(messageId);
        if (previous !== undefined) {
          // Delivered again (an expired lease): keep the newest ack id.
          ackIds.set(previous, { path, ackId: r.ackId as string });
          continue;
        }
        const letter = deadLetterOf(target, m);
        seen.set(messageId, letter);
        ackIds.set(letter, { path, ackId: r.ackId as string });
      }
    }
    if (seen.size >= limit) {
      truncated.push(target.contract.name);
    }
    letters.push(...seen.values());
  };

  try {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < targets.length) {
        await pullTarget(targets[next++] as Target);
      }
    };
    await Promise.all(Array.from({ length: Math.min(PULL_CONCURRENCY, targets.length) }, worker));
  } catch (error) {
    await release();
    throw error;
  }
  letters.sort((a, b) => a.deadLetteredAt.getTime() - b.deadLetteredAt.getTime());
  return {
    letters,
    truncated,
    async ack(done: readonly DeadLetter[]): Promise<void> {
      const bySubscription = new Map<string, DeadLetter[]>();
      for (const letter of done) {
        const held = ackIds.get(letter);
        if (held !== undefined) {
          bySubscription.set(held.path, [...(bySubscription.get(held.path) ?? []), letter]);
        }
      }
      for (const [path, list] of bySubscription) {
        for (let i = 0; i < list.length; i += MAX_PULL) {
          const slice = list.slice(i, i + MAX_PULL);
          await call(`ack ${slice.length} dead letter(s) in ${path}`, () =>
            client.acknowledge({
              subscription: path,
              ackIds: slice.map((l) => ackIds.get(l)?.ackId as string),
            }),
          );
          for (const letter of slice) {
            ackIds.delete(letter);
          }
        }
      }
    },
    release,
  };
}

/**
 * Read the dead-letter subscriptions and summarise them: per subscription the
 * count and the oldest, grouped by reason. Nothing is consumed.
 *
 * @throws ProtoeventsError `invalid_argument` for an unknown subscription or
 *   a dead-letter subscription that does not exist; `pubsub_unavailable`.
 */
export async function listDeadLetters(
  pubsub: PubSub,
  registry: ContractRegistry,
  query: DeadLetterQuery = {},
): Promise<DeadLetterSummary[]> {
  const targets = targetsOf(registry, query.subscriptions);
  const held = await lease(pubsub, targets, query.limit ?? DEFAULT_DEAD_LETTER_LIMIT);
  try {
    return summarizeDeadLetters(
      targets.map((t) => ({
        subscription: t.contract.name,
        deadLetterSubscription: t.deadLetter.subscription,
      })),
      held.letters,
      held.truncated,
    );
  } finally {
    await held.release();
  }
}

/**
 * Read the selected dead letters and decode them ({@link viewDeadLetter}),
 * oldest first. Nothing is consumed.
 *
 * @throws ProtoeventsError as {@link listDeadLetters}.
 */
export async function showDeadLetters(
  pubsub: PubSub,
  registry: ContractRegistry,
  options: DeadLetterQuery & DeadLetterSelection = {},
): Promise<DeadLetterView[]> {
  const targets = targetsOf(registry, options.subscriptions);
  const held = await lease(pubsub, targets, options.limit ?? DEFAULT_DEAD_LETTER_LIMIT);
  try {
    return held.letters
      .filter((letter) => selectsDeadLetter(options, letter))
      .map((letter) => viewDeadLetter(letter, registry));
  } finally {
    await held.release();
  }
}

/**
 * Republish selected dead letters to their subscription's topic for the one
 * subscription that failed: same data, every original attribute (`ce-id`
 * kept), the ordering key restored, {@link REPLAY_FOR_ATTRIBUTE} set, the
 * dead-letter bookkeeping dropped ({@link replayAttributes}). Each dead
 * letter is acked only after Pub/Sub confirmed its republish; one whose
 * republish or ack failed stays in the dead-letter subscription (replaying
 * it again is safe: the inbox recognises the `ce-id`). Dead letters without
 * a `ce-id` are skipped: no inbox could recognise them. Everything not
 * replayed is given back.
 *
 * @throws ProtoeventsError `invalid_argument` when nothing selects (pass
 *   `all`, a reason or event ids), and as {@link listDeadLetters}.
 */
export async function replayDeadLetters(
  pubsub: PubSub,
  registry: ContractRegistry,
  options: ReplayOptions,
): Promise<ReplayReport> {
  const hasSelection =
    options.reason !== undefined || (options.eventIds !== undefined && options.eventIds.length > 0);
  if (options.all !== true && !hasSelection) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      "say which dead letters to replay: all of them, a reason, or event ids",
    );
  }
  const targets = targetsOf(registry, options.subscriptions);
  const topicOf = new Map(targets.map((t) => [t.contract.name, t.contract.event.topic]));
  const held = await lease(pubsub, targets, options.limit ?? DEFAULT_DEAD_LETTER_LIMIT);
  const topics = new Map<string, Topic>();
  const topicFor = (name: string, ordered: boolean): Topic => {
    const key = `${name}\u0000${ordered}`;
    let topic = topics.get(key);
    if (topic === undefined) {
      topic = pubsub.topic(name, { messageOrdering: ordered });
      topics.set(key, topic);
    }
    return topic;
  };
  try {
    const selected = held.letters.filter((letter) => selectsDeadLetter(options, letter));
    const outcome = (
      letter: DeadLetter,
      result: ReplayOutcome["result"],
      extra: { replayMessageId?: string; error?: string } = {},
    ): ReplayOutcome => ({
      subscription: letter.subscription,
      messageId: letter.messageId,
      eventId: letter.eventId,
      eventType: letter.eventType,
      reason: letter.reason,
      topic: topicOf.get(letter.subscription) as string,
      result,
      ...extra,
    });
    const skip = (letter: DeadLetter): string | undefined =>
      letter.eventId === undefined || letter.eventId === ""
        ? "no ce-id: not a CloudEvent, so no inbox could recognise a replay; inspect it with `dlq show`"
        : undefined;
    if (options.dryRun === true) {
      return {
        outcomes: selected.map((letter) => {
          const why = skip(letter);
          return why === undefined
            ? outcome(letter, "would-replay")
            : outcome(letter, "skipped", { error: why });
        }),
        truncated: held.truncated,
      };
    }
    // Oldest first; the client keeps the publish order per ordering key.
    const outcomes = await Promise.all(
      selected.map(async (letter): Promise<ReplayOutcome> => {
        const why = skip(letter);
        if (why !== undefined) {
          return outcome(letter, "skipped", { error: why });
        }
        const key = letter.orderingKey;
        const topic = topicFor(topicOf.get(letter.subscription) as string, key !== undefined);
        let replayMessageId: string;
        try {
          replayMessageId = await topic.publishMessage(
            key === undefined
              ? { data: letter.data, attributes: replayAttributes(letter) }
              : { data: letter.data, attributes: replayAttributes(letter), orderingKey: key },
          );
        } catch (cause) {
          if (key !== undefined) {
            topic.resumePublishing(key);
          }
          return outcome(letter, "failed", {
            error: `not republished, left in the dead-letter subscription: ${reasonToString(cause)}`,
          });
        }
        try {
          await held.ack([letter]);
        } catch (cause) {
          return outcome(letter, "failed", {
            replayMessageId,
            error: `republished, but the ack failed, so it stays in the dead-letter subscription (replaying it again is safe: same ce-id): ${reasonToString(cause)}`,
          });
        }
        return outcome(letter, "replayed", { replayMessageId });
      }),
    );
    return { outcomes, truncated: held.truncated };
  } finally {
    await Promise.all([...topics.values()].map((topic) => topic.flush().catch(() => {})));
    await held.release();
  }
}
