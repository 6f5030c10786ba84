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
 *
 * The commands are here; reading and holding dead letters is `dlq/lease.ts`,
 * summaries and decoded views are `dlq/view.ts`, and the attributes a dead
 * letter carries (written by the consumer, read back here) are
 * `delivery/dead-letter-protocol.ts`.
 */
import type { PubSub } from "@google-cloud/pubsub";
import type { ContractRegistry } from "./contract.js";
import { DEFAULT_DEAD_LETTER_LIMIT } from "./default-options.js";
import { replayAttributes } from "./delivery/dead-letter-protocol.js";
import { type DeadLetter, lease, targetsOf } from "./dlq/lease.js";
import {
  type DeadLetterSelection,
  type DeadLetterSummary,
  type DeadLetterView,
  selectsDeadLetter,
  summarizeDeadLetters,
  viewDeadLetter,
} from "./dlq/view.js";
import { Code, ProtoeventsError, reasonToString } from "./errors.js";
import { createTopicCache } from "./topic-cache.js";

export {
  deadLetterReason,
  EXHAUSTED_RETRIES,
  replayAttributes,
  UNKNOWN_REASON,
} from "./delivery/dead-letter-protocol.js";
export type { DeadLetter } from "./dlq/lease.js";
export {
  type DeadLetterGroup,
  type DeadLetterSelection,
  type DeadLetterSummary,
  type DeadLetterView,
  type DecodedDeadLetterView,
  selectsDeadLetter,
  summarizeDeadLetters,
  type UndecodableDeadLetterView,
  viewDeadLetter,
} from "./dlq/view.js";

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
  const topics = createTopicCache(pubsub);
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
        const topic = topics.topic(topicOf.get(letter.subscription) as string, {
          messageOrdering: key !== undefined,
        });
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
    await topics.flush().catch(() => {});
    await held.release();
  }
}
