/**
 * The event-level compatibility rules: what buf's wire and JSON rules do not
 * know about an event contract, and what would break events already in
 * flight (in topics, subscriptions, dead-letter queues and retention) if it
 * changed. One pure function, {@link compareContracts}, compares a release
 * with today's contracts.
 */
import type { DescField, DescMessage } from "@bufbuild/protobuf";
import {
  EventOptionsSchema,
  FieldRulesSchema,
  SubscriptionOptionsSchema,
} from "../gen/protoevents/v1/options_pb.js";
import { locate, METHOD_INPUT_TYPE, optionPath, type SourceLocation } from "../location.js";
import type { Finding } from "../model.js";
import { type FieldRules, getFieldRules } from "../options.js";
import {
  type ConsumerSnapshot,
  type ContractSnapshot,
  closureOf,
  consumersOf,
  type EventSnapshot,
  producersAcross,
} from "./contract-snapshot.js";

/** Rule ids of the event-level rules. */
export const CompatRule = {
  /** An event is published on another topic. */
  eventTopicChanged: "event-topic-changed",
  /** An event's `ce-type` changed. */
  eventTypeChanged: "event-type-changed",
  /** An event's ordering-key field changed or was removed. */
  orderingKeyChanged: "ordering-key-changed",
  /** An event's subject field changed or was removed. */
  subjectChanged: "subject-changed",
  /** An event was removed (or is no longer an event) while a consumer rpc consumes it. */
  eventRemovedWhileConsumed: "event-removed-while-consumed",
  /** A field of an existing event got `required` or a narrower length, pattern, range or item-count rule. */
  fieldRuleNarrowed: "field-rule-narrowed",
  /** A field of an existing event lost `required` or got a wider length, pattern, range or item-count rule. */
  fieldRuleLoosened: "field-rule-loosened",
  /** A field the release's rules refuse to miss (required, a minimum above zero) was removed. */
  requiredFieldRemoved: "required-field-removed",
  /** An event's max_bytes was lowered: today's consumers refuse larger events in flight. */
  maxBytesLowered: "max-bytes-lowered",
  /** An event's max_bytes was raised: the release's consumers refuse today's larger events. */
  maxBytesRaised: "max-bytes-raised",
  /** A field added to an existing event's payload is `required`. */
  newFieldRequired: "new-field-required",
  /** A subscription turned dead-lettering off. */
  deadLetterDisabled: "dead-letter-disabled",
  /** A consumer rpc (its subscription) consumes another event. */
  consumerEventChanged: "consumer-event-changed",
  /** A consumer rpc was renamed and its derived subscription id with it. */
  subscriptionRenamed: "subscription-renamed",
  /** A consumer rpc (its subscription) was removed without being retired. */
  consumerRemoved: "consumer-removed",
  /** A subscription's filter changed: Pub/Sub cannot change it in place. */
  subscriptionFilterChanged: "subscription-filter-changed",
  /** A subscription's message ordering was turned on or off: Pub/Sub cannot change it in place. */
  subscriptionOrderingChanged: "subscription-ordering-changed",
} as const;

/** How to move a subscription to settings Pub/Sub cannot change in place. */
const MIGRATE =
  "add a new rpc (a new subscription) with the new setting, let both run, drain the old subscription and handle its dead letters, then remove the old rpc and list its subscription in retired_subscriptions";

/** A rule id of {@link CompatRule}. */
export type CompatRuleId = (typeof CompatRule)[keyof typeof CompatRule];

/** A subscription whose consumer a finding affects. */
export interface AffectedConsumer {
  /** The application, e.g. `payment`. */
  readonly application: string;
  /** The Pub/Sub subscription id, e.g. `payment.charge-order`. */
  readonly subscription: string;
  /** Full name of the event it consumes. */
  readonly event: string;
}

/**
 * Which deploy order a change breaks. `backward`: today's consumers refuse
 * events the release's producers published (it breaks when consumers deploy
 * first, and for events in flight). `forward`: the release's consumers refuse
 * events today's producers publish (it breaks when producers deploy first).
 * `both`: any order.
 */
export type Direction = "backward" | "forward" | "both";

/** A change that breaks events in flight, with the consumers it affects. */
export interface CompatFinding extends Finding {
  /** The applications and subscriptions that consume the events concerned. */
  readonly consumers: readonly AffectedConsumer[];
  /** The applications that publish the events concerned, in the release or today. */
  readonly producers: readonly string[];
  /**
   * The deploy order the change breaks, for event-level rules, which the
   * events' compatibility modes decide on; undefined for subscription rules,
   * which hold in every mode.
   */
  readonly direction?: Direction;
  /** Full names of the events concerned, whose modes decide. */
  readonly events: readonly string[];
  /** For field rules: the field's full name (`shop.v1.OrderPlaced.note`). */
  readonly field?: string;
  /**
   * `today`: the location is in today's .proto files. `release`: the element
   * no longer exists, so the location is where the release declared it.
   */
  readonly locationIn: "today" | "release";
}

/**
 * The full name of the next major version of an event, for fix messages:
 * `checkout.v1.OrderPlaced` → `checkout.v2.OrderPlaced`.
 */
export function nextVersionName(typeName: string): string {
  const parts = typeName.split(".");
  for (let i = parts.length - 2; i >= 0; i--) {
    const match = /^v(\d+)(.*)$/.exec(parts[i] ?? "");
    if (match !== null) {
      parts[i] = `v${Number(match[1]) + 1}`;
      return parts.join(".");
    }
  }
  return [...parts.slice(0, -1), "v2", ...parts.slice(-1)].join(".");
}

function affected(consumers: readonly ConsumerSnapshot[]): AffectedConsumer[] {
  const bySubscription = new Map<string, AffectedConsumer>();
  for (const c of consumers) {
    if (!bySubscription.has(c.subscription)) {
      bySubscription.set(c.subscription, {
        application: c.application,
        subscription: c.subscription,
        event: c.event,
      });
    }
  }
  return [...bySubscription.values()].sort((a, b) =>
    a.subscription < b.subscription ? -1 : a.subscription > b.subscription ? 1 : 0,
  );
}

/** "payment (payment.charge-order) and inventory (inventory.reserve-stock)". */
function describeConsumers(consumers: readonly AffectedConsumer[]): string {
  const names = consumers.map((c) => `${c.application} (${c.subscription})`);
  return names.length <= 1
    ? (names[0] ?? "no consumer")
    : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
}

type EventOption = "topic" | "orderingKey" | "subject" | "type" | "maxBytes";

function eventOptionAt(event: EventSnapshot, option: EventOption, prefix: string): SourceLocation {
  return locate(
    event.desc,
    optionPath(event.desc, "event", EventOptionsSchema.field[option].number),
    prefix,
  );
}

/** Field rules in proto names, in the order they are reported. */
const RULE_NAMES = [
  ["required", "required"],
  ["minLen", "min_len"],
  ["maxLen", "max_len"],
  ["pattern", "pattern"],
  ["min", "min"],
  ["max", "max"],
  ["minItems", "min_items"],
  ["maxItems", "max_items"],
] as const;

type RuleKey = (typeof RULE_NAMES)[number][0];

/** One rule that accepts less (a narrowing) or more (a loosening) than before. */
interface RuleChange {
  readonly key: RuleKey;
  readonly description: string;
}

function show(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

/**
 * How a field's rules changed: `narrowed` refuses values `before` accepted
 * (today's consumers refuse old events), `loosened` accepts values `before`
 * refused (the release's consumers refuse new events). A changed pattern is
 * both: two expressions cannot be compared.
 */
function ruleChanges(
  before: FieldRules | undefined,
  after: FieldRules | undefined,
): { readonly narrowed: RuleChange[]; readonly loosened: RuleChange[] } {
  const narrowed: RuleChange[] = [];
  const loosened: RuleChange[] = [];
  const bound = (key: "minLen" | "min" | "minItems" | "maxLen" | "max" | "maxItems") => {
    const name = RULE_NAMES.find(([k]) => k === key)?.[1] ?? key;
    const a = after?.[key];
    const b = before?.[key];
    if (a === b) {
      return;
    }
    const lower = key === "minLen" || key === "min" || key === "minItems";
    // For a lower bound, a higher value narrows; for an upper bound, a lower one.
    const stricter = (x: number | bigint, y: number | bigint) => (lower ? x > y : x < y);
    if (a !== undefined && (b === undefined || stricter(a, b))) {
      narrowed.push({
        key,
        description:
          b === undefined
            ? `${name} ${a} added`
            : `${name} ${lower ? "raised" : "lowered"} from ${b} to ${a}`,
      });
    }
    if (b !== undefined && (a === undefined || stricter(b, a))) {
      loosened.push({
        key,
        description:
          a === undefined
            ? `${name} ${b} removed`
            : `${name} ${lower ? "lowered" : "raised"} from ${b} to ${a}`,
      });
    }
  };
  if (after?.required === true && before?.required !== true) {
    narrowed.push({ key: "required", description: "required added" });
  }
  if (before?.required === true && after?.required !== true) {
    loosened.push({ key: "required", description: "required dropped" });
  }
  bound("minLen");
  bound("maxLen");
  const was = before?.pattern ?? "";
  const now = after?.pattern ?? "";
  if (now !== was) {
    if (now !== "") {
      narrowed.push({
        key: "pattern",
        description:
          was === ""
            ? `pattern ${show(now)} added`
            : `pattern changed from ${show(was)} to ${show(now)}`,
      });
    }
    if (was !== "") {
      loosened.push({
        key: "pattern",
        description:
          now === ""
            ? `pattern ${show(was)} removed`
            : `pattern changed from ${show(was)} to ${show(now)}`,
      });
    }
  }
  bound("min");
  bound("max");
  bound("minItems");
  bound("maxItems");
  return { narrowed, loosened };
}

/** A rule as the rules of one side state it, for fix sentences: `max_len 200`, `not required`. */
function ruleText(rules: FieldRules | undefined, key: RuleKey): string {
  const name = RULE_NAMES.find(([k]) => k === key)?.[1] ?? key;
  const value = rules?.[key];
  if (value === undefined || value === "" || value === false) {
    return key === "required" ? "not required" : `no ${name}`;
  }
  return key === "required" ? "required" : `${name} ${show(value)}`;
}

/** Whether a field's rules refuse the value it reads as when it is missing (its zero value). */
function refusesMissing(rules: FieldRules | undefined): boolean {
  if (rules === undefined) {
    return false;
  }
  return (
    rules.required ||
    (rules.min !== undefined && rules.min > 0n) ||
    (rules.max !== undefined && rules.max < 0n) ||
    (rules.minItems !== undefined && rules.minItems > 0)
  );
}

function ruleAt(field: DescField, key: RuleKey, prefix: string): SourceLocation {
  return locate(field, optionPath(field, "rules", FieldRulesSchema.field[key].number), prefix);
}

function fieldName(field: DescField): string {
  return `${field.parent.typeName}.${field.name}`;
}

/** "declare compatibility: COMPATIBILITY_BACKWARD on checkout.v1.OrderPlaced": the two-step rollout a one-way change needs. */
export function rolloutFix(direction: "backward" | "forward", events: readonly string[]): string {
  const on = events.join(", ");
  return direction === "forward"
    ? `or roll it out in two steps: declare compatibility: COMPATIBILITY_BACKWARD on ${on} (option (protoevents.v1.event)) and deploy the consumers first, then the producers`
    : `or roll it out in two steps: declare compatibility: COMPATIBILITY_FORWARD on ${on} (option (protoevents.v1.event)) and deploy the producers first, then the consumers once the events published under the old contract have drained`;
}

/** What compares two sides, with the producers and consumers of events on both. */
class Sides {
  constructor(
    readonly before: ContractSnapshot,
    readonly after: ContractSnapshot,
  ) {}

  consumers(names: Iterable<string>): AffectedConsumer[] {
    const all: ConsumerSnapshot[] = [];
    for (const name of names) {
      all.push(...consumersOf(this.before, name), ...consumersOf(this.after, name));
    }
    return affected(all);
  }

  producers(names: Iterable<string>): string[] {
    return producersAcross([this.before, this.after], names);
  }
}

/** Events on both sides: the field rules of every message they carry, both ways. */
function compareFieldRules(sides: Sides, findings: CompatFinding[]): void {
  const { before, after } = sides;
  const prefix = after.pathPrefix;
  // Every field of an existing message reachable from an existing event, with the events reaching it.
  const reach = new Map<string, { message: DescMessage; old: DescMessage; events: Set<string> }>();
  for (const [name, event] of after.events) {
    if (!before.events.has(name)) {
      continue;
    }
    for (const message of closureOf(event.desc).messages) {
      const old: DescMessage | undefined = before.messages.get(message.typeName);
      if (old === undefined) {
        continue;
      }
      const entry = reach.get(message.typeName) ?? { message, old, events: new Set<string>() };
      entry.events.add(name);
      reach.set(message.typeName, entry);
    }
  }
  for (const { message, old, events } of reach.values()) {
    const eventNames = [...events].sort();
    const concerned = {
      consumers: sides.consumers(eventNames),
      producers: sides.producers(eventNames),
      events: eventNames,
    };
    const eventList = eventNames.join(", ");
    const first = eventNames[0] ?? message.typeName;
    const next = nextVersionName(first);
    for (const field of message.fields) {
      const rules = getFieldRules(field);
      const previous = old.fields.find((f) => f.number === field.number);
      if (previous === undefined) {
        if (rules?.required === true) {
          findings.push({
            rule: CompatRule.newFieldRequired,
            message: `new field ${fieldName(field)} (in ${eventList}) is required: events the release's producers published lack it, so today's consumers refuse them (validation_failed, dead-lettered)`,
            fix: `drop required from ${field.name} and handle its absence in consumers (check it in the producer instead), or add a new event ${next} where it is required and publish both during migration; ${rolloutFix("backward", eventNames)}`,
            location: ruleAt(field, "required", prefix),
            ...concerned,
            direction: "backward",
            field: fieldName(field),
            locationIn: "today",
          });
        }
        continue;
      }
      const previousRules = getFieldRules(previous);
      const { narrowed, loosened } = ruleChanges(previousRules, rules);
      const firstNarrowed = narrowed[0];
      if (firstNarrowed !== undefined) {
        findings.push({
          rule: CompatRule.fieldRuleNarrowed,
          message: `field ${fieldName(field)} (in ${eventList}) accepts less than before: ${narrowed.map((n) => n.description).join(", ")}; events the release's producers published under the old rules are refused by today's consumers (validation_failed, dead-lettered)`,
          fix: `restore ${narrowed.map((n) => ruleText(previousRules, n.key)).join(" and ")} on ${field.name} and enforce the stricter rule in the producer, or add a new event ${next} with it and publish both during migration; ${rolloutFix("backward", eventNames)}`,
          location: ruleAt(field, firstNarrowed.key, prefix),
          ...concerned,
          direction: "backward",
          field: fieldName(field),
          locationIn: "today",
        });
      }
      const firstLoosened = loosened[0];
      if (firstLoosened !== undefined) {
        findings.push({
          rule: CompatRule.fieldRuleLoosened,
          message: `field ${fieldName(field)} (in ${eventList}) accepts more than before: ${loosened.map((n) => n.description).join(", ")}; the release's consumers still check the old rules and refuse events today's producers may publish (validation_failed, dead-lettered)`,
          fix: `keep ${loosened.map((n) => ruleText(previousRules, n.key)).join(" and ")} on ${field.name} until every consumer runs the new rules, or add a new event ${next} with the wider rule and publish both during migration; ${rolloutFix("forward", eventNames)}`,
          location: ruleAt(field, firstLoosened.key, prefix),
          ...concerned,
          direction: "forward",
          field: fieldName(field),
          locationIn: "today",
        });
      }
    }
    // Fields gone today that the release's consumers cannot do without.
    for (const gone of old.fields) {
      if (message.fields.some((f) => f.number === gone.number)) {
        continue;
      }
      const rules = getFieldRules(gone);
      if (!refusesMissing(rules)) {
        continue;
      }
      const why = (["required", "min", "max", "minItems"] as const)
        .filter((key) =>
          key === "required"
            ? rules?.required === true
            : key === "minItems"
              ? (rules?.minItems ?? 0) > 0
              : rules?.[key] !== undefined,
        )
        .map((key) => ruleText(rules, key))
        .join(", ");
      findings.push({
        rule: CompatRule.requiredFieldRemoved,
        message: `field ${fieldName(gone)} (in ${eventList}) was removed, but the release's consumers check ${why} on it: events today's producers publish lack it, so those consumers refuse them (validation_failed, dead-lettered)`,
        fix: `keep ${gone.name} (deprecated = true) and keep setting it until no consumer of the release runs, then remove it and reserve its number and name; ${rolloutFix("forward", eventNames)}`,
        location: locate(message, [], prefix),
        ...concerned,
        direction: "forward",
        field: fieldName(gone),
        locationIn: "today",
      });
    }
  }
}

/**
 * Subscriptions are contracts: one the release created must still be
 * declared today, under the same id, unless its application retired it
 * (`retired_subscriptions`). Otherwise provisioning creates a new, empty
 * subscription for a renamed rpc and leaves the old one, backlog and dead
 * letters included, with nobody reading it.
 */
function compareSubscriptionIdentity(sides: Sides, findings: CompatFinding[]): void {
  const { before, after } = sides;
  const prefix = after.pathPrefix;
  const today = new Set(after.consumers.map((c) => c.subscription));
  const released = new Set(before.consumers.map((c) => c.subscription));
  const retired = new Set(after.applications.flatMap((a) => a.retired));
  for (const old of before.consumers) {
    if (today.has(old.subscription) || retired.has(old.subscription)) {
      continue;
    }
    const app = after.applications.find((a) => a.service === old.service);
    const service = old.service.split(".").pop() ?? old.service;
    const retire = `add "${old.subscription}" to retired_subscriptions in the (protoevents.v1.application) option of ${service} once it has drained and its dead letters are handled (provisioning never deletes it)`;
    // A rename: today's rpc of the same service consuming the same event under
    // a subscription id the release did not have.
    const successor = after.consumers.find(
      (c) => c.service === old.service && c.event === old.event && !released.has(c.subscription),
    );
    if (successor !== undefined) {
      findings.push({
        rule: CompatRule.subscriptionRenamed,
        message: `rpc ${service}.${successor.rpc} takes over from rpc ${old.rpc} with subscription ${successor.subscription} instead of ${old.subscription}${successor.derivedName ? " (derived from the rpc's name)" : ""}: provisioning would create a new, empty subscription and leave ${old.subscription}, with its backlog and dead letters, unread`,
        fix: `keep the subscription: option (protoevents.v1.subscription) = { name: "${old.subscription}" } on rpc ${successor.rpc}; or, for a new subscription on purpose, ${retire}`,
        location: locate(successor.desc, [], prefix),
        consumers: affected([old, successor]),
        producers: sides.producers([old.event]),
        events: [old.event],
        locationIn: "today",
      });
      continue;
    }
    if (!after.events.has(old.event)) {
      // The event went too: event-removed-while-consumed names this consumer.
      continue;
    }
    findings.push({
      rule: CompatRule.consumerRemoved,
      message: `rpc ${service}.${old.rpc} (subscription ${old.subscription}) was removed: its subscription keeps receiving ${old.event} events, and its backlog and dead letters, with nobody reading them`,
      fix: `keep the rpc until its subscription has drained; then ${retire}`,
      location:
        app === undefined ? locate(old.desc, [], before.pathPrefix) : locate(app.desc, [], prefix),
      consumers: affected([old]),
      producers: sides.producers([old.event]),
      events: [old.event],
      locationIn: app === undefined ? "release" : "today",
    });
  }
}

/** The event-level options of events on both sides. */
function compareEvents(sides: Sides, findings: CompatFinding[]): void {
  const { before, after } = sides;
  const prefix = after.pathPrefix;
  for (const [name, old] of before.events) {
    const now = after.events.get(name);
    const concerned = {
      consumers: sides.consumers([name]),
      producers: sides.producers([name]),
      events: [name],
    };
    if (now === undefined) {
      if (concerned.consumers.length === 0) {
        continue;
      }
      const consumers = concerned.consumers;
      const stillMessage = after.messages.get(name);
      findings.push({
        rule: CompatRule.eventRemovedWhileConsumed,
        message: `event ${name} was ${stillMessage === undefined ? "removed" : "turned into a plain message (no event option)"} while ${describeConsumers(consumers)} consume${consumers.length === 1 ? "s" : ""} it: its events in flight on topic "${old.topic}" would never be handled`,
        fix: `keep ${name} on topic "${old.topic}" until its consumers are gone and their subscriptions have drained, then retire the releases that still declare them (protoevents docs/compatibility.md, "Retiring a consumer")`,
        location:
          stillMessage === undefined
            ? locate(old.desc, [], before.pathPrefix)
            : locate(stillMessage, [], prefix),
        ...concerned,
        direction: "both",
        locationIn: stillMessage === undefined ? "release" : "today",
      });
      continue;
    }
    const next = nextVersionName(name);
    const both = { ...concerned, direction: "both" as const, locationIn: "today" as const };
    if (now.topic !== old.topic) {
      findings.push({
        rule: CompatRule.eventTopicChanged,
        message: `event ${name} is published on topic "${now.topic}" instead of "${old.topic}": events already on "${old.topic}" never reach the subscriptions on "${now.topic}"`,
        fix: `keep topic "${old.topic}"; to move the event, add a new event ${next} on topic "${now.topic}" and publish both during migration`,
        location: eventOptionAt(now, "topic", prefix),
        ...both,
      });
    }
    if (now.type !== old.type) {
      findings.push({
        rule: CompatRule.eventTypeChanged,
        message: `event ${name} has ce-type "${now.type}" instead of "${old.type}": consumers of one side refuse the other side's events (unknown_event_type, dead-lettered)`,
        fix: `keep ce-type "${old.type}"; for a new type add a new event ${next} and publish both during migration`,
        location: eventOptionAt(now, "type", prefix),
        ...both,
      });
    }
    if (old.orderingKey !== "" && now.orderingKey !== old.orderingKey) {
      findings.push({
        rule: CompatRule.orderingKeyChanged,
        message:
          now.orderingKey === ""
            ? `event ${name} no longer has an ordering key (it was field "${old.orderingKey}"): its events lose their per-key order, also against the events still in flight`
            : `event ${name} is ordered by field "${now.orderingKey}" instead of "${old.orderingKey}": events in flight and new ones of one ${old.orderingKey} no longer share a key, so ordered subscriptions lose their order`,
        fix: `keep ordering_key "${old.orderingKey}"; to order by another field, add a new event ${next} and publish both during migration`,
        location: eventOptionAt(now, "orderingKey", prefix),
        ...both,
      });
    }
    if (old.subject !== "" && now.subject !== old.subject) {
      findings.push({
        rule: CompatRule.subjectChanged,
        message:
          now.subject === ""
            ? `event ${name} no longer sets ce-subject (it was field "${old.subject}"): consumers, filters and tools that read the subject see none on new events`
            : `event ${name} takes ce-subject from field "${now.subject}" instead of "${old.subject}": the same aggregate gets another subject than the events in flight`,
        fix: `keep subject "${old.subject}"; for another subject add a new event ${next} and publish both during migration`,
        location: eventOptionAt(now, "subject", prefix),
        ...both,
      });
    }
    if (now.maxBytes < old.maxBytes) {
      findings.push({
        rule: CompatRule.maxBytesLowered,
        message: `event ${name} allows ${now.maxBytes} bytes instead of ${old.maxBytes} (max_bytes): today's consumers refuse larger events the release's producers published (too_large, dead-lettered)`,
        fix: `keep max_bytes ${old.maxBytes} until no larger event is in flight; ${rolloutFix("backward", [name])}`,
        location: eventOptionAt(now, "maxBytes", prefix),
        ...concerned,
        direction: "backward",
        locationIn: "today",
      });
    }
    if (now.maxBytes > old.maxBytes) {
      findings.push({
        rule: CompatRule.maxBytesRaised,
        message: `event ${name} allows ${now.maxBytes} bytes instead of ${old.maxBytes} (max_bytes): the release's consumers refuse the larger events today's producers may publish (too_large, dead-lettered)`,
        fix: `keep max_bytes ${old.maxBytes} until every consumer runs with ${now.maxBytes}; ${rolloutFix("forward", [name])}`,
        location: eventOptionAt(now, "maxBytes", prefix),
        ...concerned,
        direction: "forward",
        locationIn: "today",
      });
    }
  }
}

/** Subscriptions on both sides: what Pub/Sub or the backlog cannot follow. */
function compareSubscriptions(sides: Sides, findings: CompatFinding[]): void {
  const { before, after } = sides;
  const prefix = after.pathPrefix;
  const oldSubscriptions = new Map(before.consumers.map((c) => [c.subscription, c]));
  for (const now of after.consumers) {
    const old = oldSubscriptions.get(now.subscription);
    if (old === undefined) {
      continue;
    }
    const rpc = `${now.service.split(".").pop() ?? now.service}.${now.rpc}`;
    const concerned = {
      consumers: affected([old, now]),
      producers: sides.producers(new Set([old.event, now.event])),
      events: [...new Set([old.event, now.event])].sort(),
      locationIn: "today" as const,
    };
    if (now.event !== old.event) {
      findings.push({
        rule: CompatRule.consumerEventChanged,
        message: `rpc ${rpc} (subscription ${now.subscription}) consumes ${now.event} instead of ${old.event}: the subscription's backlog and dead letters are ${old.event} events it can no longer decode`,
        fix: `keep rpc ${now.rpc} consuming ${old.event} and add a new rpc for ${now.event} (a new subscription); remove the old rpc once its subscription has drained`,
        location: locate(now.desc, [METHOD_INPUT_TYPE], prefix),
        ...concerned,
      });
    }
    if (old.deadLetter && !now.deadLetter) {
      findings.push({
        rule: CompatRule.deadLetterDisabled,
        message: `subscription ${now.subscription} (rpc ${rpc}) turns dead-lettering off: a message that keeps failing is redelivered until it expires instead of being kept on ${old.deadLetterTopic}, and the dead letters already there lose their way back`,
        fix: `remove dead_letter: false (dead-lettering is on by default); if the rpc must not dead-letter, add a new rpc without it and retire this one once its subscription has drained`,
        location: locate(
          now.desc,
          optionPath(now.desc, "subscription", SubscriptionOptionsSchema.field.deadLetter.number),
          prefix,
        ),
        ...concerned,
      });
    }
    const subscriptionOption = (field: "filter" | "ordered") =>
      locate(
        now.desc,
        optionPath(now.desc, "subscription", SubscriptionOptionsSchema.field[field].number),
        prefix,
      );
    if (now.filter !== old.filter) {
      findings.push({
        rule: CompatRule.subscriptionFilterChanged,
        message: `subscription ${now.subscription} (rpc ${rpc}) changes its filter from ${JSON.stringify(old.filter)} to ${JSON.stringify(now.filter)}: Pub/Sub cannot change a subscription's filter, so provisioning would refuse and the consumer would keep reading what the old filter lets through`,
        fix: `keep the filter ${JSON.stringify(old.filter)} on rpc ${now.rpc}; to filter otherwise, ${MIGRATE}`,
        location: now.filter === "" ? locate(now.desc, [], prefix) : subscriptionOption("filter"),
        ...concerned,
      });
    } else if (now.effectiveFilter !== old.effectiveFilter) {
      // The contract's filter is the same, but the ce-type clause a shared topic adds came or went.
      const topic = after.events.get(now.event)?.topic ?? "";
      const joined = now.effectiveFilter.includes('attributes."ce-type"');
      findings.push({
        rule: CompatRule.subscriptionFilterChanged,
        message: `subscription ${now.subscription} (rpc ${rpc}) would be provisioned with the filter ${JSON.stringify(now.effectiveFilter)} instead of ${JSON.stringify(old.effectiveFilter)}: ${joined ? `another event now shares topic "${topic}" with ${now.event}, so its subscriptions must filter on ce-type` : `${now.event} no longer shares topic "${topic}" with another event, so the ce-type clause goes`}; Pub/Sub cannot change a subscription's filter`,
        fix: joined
          ? `publish the new event on a topic of its own (subscriptions filter on ce-type only where events share a topic); or, to share the topic, ${MIGRATE}`
          : `keep the other event on topic "${topic}" until this subscription is migrated: ${MIGRATE}`,
        location: locate(now.desc, [], prefix),
        ...concerned,
      });
    }
    if (now.ordered !== old.ordered) {
      findings.push({
        rule: CompatRule.subscriptionOrderingChanged,
        message: `subscription ${now.subscription} (rpc ${rpc}) turns message ordering ${now.ordered ? "on" : "off"}: Pub/Sub cannot change ordering on an existing subscription`,
        fix: `keep ordered: ${old.ordered} on rpc ${now.rpc}; to change it, ${MIGRATE}`,
        location: now.ordered ? subscriptionOption("ordered") : locate(now.desc, [], prefix),
        ...concerned,
      });
    }
  }
}

/**
 * Compare a release's contracts with today's: every change that would break
 * an event published under the release or today, or a subscription the
 * release created, with its location, rule id, the deploy order it breaks
 * (`direction`), affected consumers and producers, and fix. Every change is
 * reported whatever the events' compatibility modes: the gate decides which
 * of them the modes refuse.
 *
 * buf's wire and JSON rules (field types, numbers, names, enum values) are
 * not repeated here; `buf breaking` checks them.
 */
export function compareContracts(
  before: ContractSnapshot,
  after: ContractSnapshot,
): CompatFinding[] {
  const findings: CompatFinding[] = [];
  const sides = new Sides(before, after);
  compareEvents(sides, findings);
  compareFieldRules(sides, findings);
  compareSubscriptions(sides, findings);
  compareSubscriptionIdentity(sides, findings);
  return findings.sort(
    (a, b) =>
      (a.location.file < b.location.file ? -1 : a.location.file > b.location.file ? 1 : 0) ||
      a.location.line - b.location.line ||
      a.location.column - b.location.column ||
      (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0),
  );
}
