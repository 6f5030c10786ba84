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

/** A change that breaks events in flight, with the consumers it affects. */
export interface CompatFinding extends Finding {
  /** The applications and subscriptions that consume the events concerned. */
  readonly consumers: readonly AffectedConsumer[];
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

/** The consumers of an event in the release and today. */
function consumersBoth(
  before: ContractSnapshot,
  after: ContractSnapshot,
  names: Iterable<string>,
): AffectedConsumer[] {
  const all: ConsumerSnapshot[] = [];
  for (const name of names) {
    all.push(...consumersOf(before, name), ...consumersOf(after, name));
  }
  return affected(all);
}

/** "payment (payment.charge-order) and inventory (inventory.reserve-stock)". */
function describeConsumers(consumers: readonly AffectedConsumer[]): string {
  const names = consumers.map((c) => `${c.application} (${c.subscription})`);
  return names.length <= 1
    ? (names[0] ?? "no consumer")
    : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
}

type EventOption = "topic" | "orderingKey" | "subject" | "type";

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

/** One rule that accepts less than before. */
interface Narrowing {
  readonly key: RuleKey;
  readonly name: string;
  readonly description: string;
}

function show(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

/** The rules of `after` that refuse values `before` accepted. */
function narrowings(before: FieldRules | undefined, after: FieldRules | undefined): Narrowing[] {
  if (after === undefined) {
    return [];
  }
  const out: Narrowing[] = [];
  const up = (key: "minLen" | "min" | "minItems", name: string) => {
    const a = after[key];
    const b = before?.[key];
    if (a !== undefined && (b === undefined || a > b)) {
      out.push({
        key,
        name,
        description: b === undefined ? `${name} ${a} added` : `${name} raised from ${b} to ${a}`,
      });
    }
  };
  const down = (key: "maxLen" | "max" | "maxItems", name: string) => {
    const a = after[key];
    const b = before?.[key];
    if (a !== undefined && (b === undefined || a < b)) {
      out.push({
        key,
        name,
        description: b === undefined ? `${name} ${a} added` : `${name} lowered from ${b} to ${a}`,
      });
    }
  };
  if (after.required && before?.required !== true) {
    out.push({ key: "required", name: "required", description: "required added" });
  }
  up("minLen", "min_len");
  down("maxLen", "max_len");
  if (after.pattern !== "" && after.pattern !== (before?.pattern ?? "")) {
    out.push({
      key: "pattern",
      name: "pattern",
      description:
        (before?.pattern ?? "") === ""
          ? `pattern ${show(after.pattern)} added`
          : `pattern changed from ${show(before?.pattern)} to ${show(after.pattern)}`,
    });
  }
  up("min", "min");
  down("max", "max");
  up("minItems", "min_items");
  down("maxItems", "max_items");
  return out;
}

/** What the old rule allowed, for the fix sentence. */
function oldRule(before: FieldRules | undefined, key: RuleKey): string {
  const name = RULE_NAMES.find(([k]) => k === key)?.[1] ?? key;
  const value = before?.[key];
  if (value === undefined || value === "" || value === false) {
    return `no ${name}`;
  }
  return key === "required" ? "not required" : `${name} ${show(value)}`;
}

function ruleAt(field: DescField, key: RuleKey, prefix: string): SourceLocation {
  return locate(field, optionPath(field, "rules", FieldRulesSchema.field[key].number), prefix);
}

function fieldName(field: DescField): string {
  return `${field.parent.typeName}.${field.name}`;
}

/** Events on both sides: the field rules of every message they carry. */
function compareFieldRules(
  before: ContractSnapshot,
  after: ContractSnapshot,
  findings: CompatFinding[],
): void {
  // Every field of an existing message reachable from an existing event, with the events reaching it.
  const reach = new Map<
    string,
    { field: DescField; previous: DescField | undefined; events: Set<string> }
  >();
  for (const [name, event] of after.events) {
    if (!before.events.has(name)) {
      continue;
    }
    for (const message of closureOf(event.desc).messages) {
      const old: DescMessage | undefined = before.messages.get(message.typeName);
      if (old === undefined) {
        continue;
      }
      for (const field of message.fields) {
        const key = `${message.typeName}#${field.number}`;
        const entry = reach.get(key) ?? {
          field,
          previous: old.fields.find((f) => f.number === field.number),
          events: new Set<string>(),
        };
        entry.events.add(name);
        reach.set(key, entry);
      }
    }
  }
  for (const { field, previous, events } of reach.values()) {
    const rules = getFieldRules(field);
    if (rules === undefined) {
      continue;
    }
    const eventNames = [...events].sort();
    const consumers = consumersBoth(before, after, eventNames);
    const eventList = eventNames.join(", ");
    const first = eventNames[0] ?? field.parent.typeName;
    if (previous === undefined) {
      if (rules.required) {
        findings.push({
          rule: CompatRule.newFieldRequired,
          message: `new field ${fieldName(field)} (in ${eventList}) is required: events published before it existed lack it, so today's consumers refuse them (validation_failed, dead-lettered)`,
          fix: `drop required from ${field.name} and handle its absence in consumers (check it in the producer instead), or add a new event ${nextVersionName(first)} where it is required and publish both during migration`,
          location: ruleAt(field, "required", after.pathPrefix),
          consumers,
          locationIn: "today",
        });
      }
      continue;
    }
    const narrowed = narrowings(getFieldRules(previous), rules);
    const head = narrowed[0];
    if (head === undefined) {
      continue;
    }
    const previousRules = getFieldRules(previous);
    findings.push({
      rule: CompatRule.fieldRuleNarrowed,
      message: `field ${fieldName(field)} (in ${eventList}) accepts less than before: ${narrowed.map((n) => n.description).join(", ")}; events the release's producers published under the old rules are refused by today's consumers (validation_failed, dead-lettered)`,
      fix: `restore ${narrowed.map((n) => oldRule(previousRules, n.key)).join(" and ")} on ${field.name} and enforce the stricter rule in the producer, or add a new event ${nextVersionName(first)} with it and publish both during migration`,
      location: ruleAt(field, head.key, after.pathPrefix),
      consumers,
      locationIn: "today",
    });
  }
}

/**
 * Subscriptions are contracts: one the release created must still be
 * declared today, under the same id, unless its application retired it
 * (`retired_subscriptions`). Otherwise provisioning creates a new, empty
 * subscription for a renamed rpc and leaves the old one, backlog and dead
 * letters included, with nobody reading it.
 */
function compareSubscriptionIdentity(
  before: ContractSnapshot,
  after: ContractSnapshot,
  findings: CompatFinding[],
): void {
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
      locationIn: app === undefined ? "release" : "today",
    });
  }
}

/**
 * Compare a release's contracts with today's: every change that would break
 * an event published under the release, or a subscription the release
 * created, with its location, rule id, affected consumers and fix.
 *
 * buf's wire and JSON rules (field types, numbers, names, enum values) are
 * not repeated here; `buf breaking` checks them.
 */
export function compareContracts(
  before: ContractSnapshot,
  after: ContractSnapshot,
): CompatFinding[] {
  const findings: CompatFinding[] = [];
  const prefix = after.pathPrefix;

  for (const [name, old] of before.events) {
    const now = after.events.get(name);
    if (now === undefined) {
      const consumers = consumersBoth(before, after, [name]);
      if (consumers.length === 0) {
        continue;
      }
      const stillMessage = after.messages.get(name);
      findings.push({
        rule: CompatRule.eventRemovedWhileConsumed,
        message: `event ${name} was ${stillMessage === undefined ? "removed" : "turned into a plain message (no event option)"} while ${describeConsumers(consumers)} consume${consumers.length === 1 ? "s" : ""} it: its events in flight on topic "${old.topic}" would never be handled`,
        fix: `keep ${name} on topic "${old.topic}" until its consumers are gone and their subscriptions have drained, then retire the releases that still declare them (README, "Changing a contract safely")`,
        location:
          stillMessage === undefined
            ? locate(old.desc, [], before.pathPrefix)
            : locate(stillMessage, [], prefix),
        consumers,
        locationIn: stillMessage === undefined ? "release" : "today",
      });
      continue;
    }
    const consumers = consumersBoth(before, after, [name]);
    const next = nextVersionName(name);
    if (now.topic !== old.topic) {
      findings.push({
        rule: CompatRule.eventTopicChanged,
        message: `event ${name} is published on topic "${now.topic}" instead of "${old.topic}": events already on "${old.topic}" never reach the subscriptions on "${now.topic}"`,
        fix: `keep topic "${old.topic}"; to move the event, add a new event ${next} on topic "${now.topic}" and publish both during migration`,
        location: eventOptionAt(now, "topic", prefix),
        consumers,
        locationIn: "today",
      });
    }
    if (now.type !== old.type) {
      findings.push({
        rule: CompatRule.eventTypeChanged,
        message: `event ${name} has ce-type "${now.type}" instead of "${old.type}": today's consumers refuse events in flight with ce-type "${old.type}" (unknown_event_type, dead-lettered)`,
        fix: `keep ce-type "${old.type}"; for a new type add a new event ${next} and publish both during migration`,
        location: eventOptionAt(now, "type", prefix),
        consumers,
        locationIn: "today",
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
        consumers,
        locationIn: "today",
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
        consumers,
        locationIn: "today",
      });
    }
  }

  compareFieldRules(before, after, findings);

  const oldSubscriptions = new Map(before.consumers.map((c) => [c.subscription, c]));
  for (const now of after.consumers) {
    const old = oldSubscriptions.get(now.subscription);
    if (old === undefined) {
      continue;
    }
    const rpc = `${now.service.split(".").pop() ?? now.service}.${now.rpc}`;
    const consumers = affected([old, now]);
    if (now.event !== old.event) {
      findings.push({
        rule: CompatRule.consumerEventChanged,
        message: `rpc ${rpc} (subscription ${now.subscription}) consumes ${now.event} instead of ${old.event}: the subscription's backlog and dead letters are ${old.event} events it can no longer decode`,
        fix: `keep rpc ${now.rpc} consuming ${old.event} and add a new rpc for ${now.event} (a new subscription); remove the old rpc once its subscription has drained`,
        location: locate(now.desc, [METHOD_INPUT_TYPE], prefix),
        consumers,
        locationIn: "today",
      });
    }
    if (old.deadLetter && !now.deadLetter) {
      findings.push({
        rule: CompatRule.deadLetterDisabled,
        message: `subscription ${now.subscription} (rpc ${rpc}) turns dead-lettering off: a message that keeps failing is redelivered until it expires instead of being kept on ${now.subscription}.dead-letter, and the dead letters already there lose their way back`,
        fix: `remove dead_letter: false (dead-lettering is on by default); if the rpc must not dead-letter, add a new rpc without it and retire this one once its subscription has drained`,
        location: locate(
          now.desc,
          optionPath(now.desc, "subscription", SubscriptionOptionsSchema.field.deadLetter.number),
          prefix,
        ),
        consumers,
        locationIn: "today",
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
        consumers,
        locationIn: "today",
      });
    }
    if (now.ordered !== old.ordered) {
      findings.push({
        rule: CompatRule.subscriptionOrderingChanged,
        message: `subscription ${now.subscription} (rpc ${rpc}) turns message ordering ${now.ordered ? "on" : "off"}: Pub/Sub cannot change ordering on an existing subscription`,
        fix: `keep ordered: ${old.ordered} on rpc ${now.rpc}; to change it, ${MIGRATE}`,
        location: now.ordered ? subscriptionOption("ordered") : locate(now.desc, [], prefix),
        consumers,
        locationIn: "today",
      });
    }
  }

  compareSubscriptionIdentity(before, after, findings);

  return findings.sort(
    (a, b) =>
      (a.location.file < b.location.file ? -1 : a.location.file > b.location.file ? 1 : 0) ||
      a.location.line - b.location.line ||
      a.location.column - b.location.column ||
      (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0),
  );
}
