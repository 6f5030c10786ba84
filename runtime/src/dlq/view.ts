/**
 * What the dead-letter commands show: dead letters grouped by subscription
 * and reason, and one dead letter decoded as its proto type (`pii`
 * redacted), or as its bytes when it is not an event of the contracts.
 */
import type { ContractRegistry, EventContract } from "../contract.js";
import { DEAD_LETTER_SHOWN_BYTES } from "../default-options.js";
import { decodeEvent, type EventJsonView, toJsonView } from "../envelope.js";
import { type FieldViolation, isProtoeventsError, reasonToString } from "../errors.js";
import type { DeadLetter } from "./lease.js";

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

export interface DeadLetterViewBase {
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
