/**
 * Reading dead-letter subscriptions without consuming them: pull every dead
 * letter (up to a limit) of the subscriptions asked for, hold them (an ack
 * deadline long enough for a command to act), ack those a replay
 * republished, and give back the rest (ack deadline 0), so they stay in the
 * dead-letter subscription.
 */
import { type PubSub, v1 } from "@google-cloud/pubsub";
import type { ContractRegistry, DeadLetterContract, SubscriptionContract } from "../contract.js";
import { deadLetterOrderingKey, deadLetterReason } from "../delivery/dead-letter-protocol.js";
import { Code, ProtoeventsError, reasonToString } from "../errors.js";
import { GrpcStatus, grpcCode } from "../grpc.js";

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

/** A subscription that dead-letters, and where. */
export interface Target {
  readonly contract: SubscriptionContract;
  readonly deadLetter: DeadLetterContract;
}

/**
 * The subscriptions to read: all that dead-letter, or those named (by
 * subscription or dead-letter subscription id).
 *
 * @throws ProtoeventsError `invalid_argument` naming an unknown subscription.
 */
export function targetsOf(
  registry: ContractRegistry,
  names: readonly string[] | undefined,
): Target[] {
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
export interface Lease {
  readonly letters: readonly DeadLetter[];
  readonly truncated: readonly string[];
  /** Ack these (they leave the dead-letter subscription). */
  ack(letters: readonly DeadLetter[]): Promise<void>;
  /** Give back every letter not acked, and close the connection. Idempotent. */
  release(): Promise<void>;
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
  return {
    subscription: target.contract.name,
    deadLetterSubscription: target.deadLetter.subscription,
    messageId: m.messageId ?? "",
    deadLetteredAt: toDate(m.publishTime),
    ...deadLetterReason(attributes),
    eventId: attributes["ce-id"],
    eventType: attributes["ce-type"],
    orderingKey: deadLetterOrderingKey(attributes, m.orderingKey),
    attributes,
    data,
  };
}

/**
 * Pull every dead letter (up to the limit per subscription) of the targets
 * and hold them. A subscription is done when a pull comes back empty (on
 * real Pub/Sub each pull waits up to {@link PULL_WAIT_MS} for messages).
 */
export async function lease(
  pubsub: PubSub,
  targets: readonly Target[],
  limit: number,
): Promise<Lease> {
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
        if (grpcCode(cause) === GrpcStatus.DEADLINE_EXCEEDED) {
          break;
        }
        if (grpcCode(cause) === GrpcStatus.NOT_FOUND) {
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
