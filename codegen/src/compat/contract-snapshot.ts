/**
 * What the event-level compatibility rules compare: the events, their
 * topics, types, keys and modes, and the consumers with their
 * subscriptions, projected from the contract model (`readContracts`), plus
 * the descriptors the rules compare wire shapes and field rules on.
 *
 * Unlike `buildModel`, taking a snapshot refuses nothing: a release was
 * valid under the codegen checks of its day, and a check added later must not
 * make an old release unreadable.
 */
import type { DescEnum, DescFile, DescMessage, DescMethod, DescService } from "@bufbuild/protobuf";
import type { ContractModel } from "../model.js";
import type { CompatibilityMode } from "../options.js";
import { readContracts } from "../read-contracts.js";

/** One event as a release or today's contracts declare it. */
export interface EventSnapshot {
  /** Full name of the message, e.g. `checkout.v1.OrderPlaced`. */
  readonly name: string;
  /** `ce-type`. */
  readonly type: string;
  readonly topic: string;
  /** Name of the ordering-key field; empty for none. */
  readonly orderingKey: string;
  /** Name of the subject field; empty for none. */
  readonly subject: string;
  readonly encoding: "binary" | "json";
  /** The largest payload consumers read (max_bytes, its default when unset). */
  readonly maxBytes: number;
  /** Who may deploy first when the event changes. */
  readonly compatibility: CompatibilityMode;
  /** Where the mode comes from: the event's option, its package's defaults, or protoevents' default. */
  readonly compatibilityFrom: "event" | "package" | "default";
  readonly desc: DescMessage;
}

/** One consumer rpc and the subscription behind it. */
export interface ConsumerSnapshot {
  /** The application's name. */
  readonly application: string;
  /** Full name of the application's service, e.g. `checkout.v1.PaymentService`. */
  readonly service: string;
  /** The rpc's name, e.g. `ChargeOrder`. */
  readonly rpc: string;
  /** The Pub/Sub subscription id. */
  readonly subscription: string;
  /** Full name of the message consumed (the rpc's input). */
  readonly event: string;
  readonly deadLetter: boolean;
  /** Its dead-letter topic; empty when dead-lettering is off. */
  readonly deadLetterTopic: string;
  /** The contract's own filter (without the ce-type clause a shared topic adds). */
  readonly filter: string;
  /** The filter provisioning gives the subscription: the own filter and, on a shared topic, the ce-type clause. */
  readonly effectiveFilter: string;
  readonly ordered: boolean;
  /** Whether the subscription id is derived from the rpc name (no `name` option). */
  readonly derivedName: boolean;
  readonly desc: DescMethod;
}

/** An application service: its name, consumer rpcs, retirements and what it may publish. */
export interface ApplicationSnapshot {
  readonly name: string;
  readonly service: string;
  readonly consumers: readonly ConsumerSnapshot[];
  /** Subscription ids it retired on purpose (`retired_subscriptions`). */
  readonly retired: readonly string[];
  /** Full names of the events it may publish. */
  readonly publishes: readonly string[];
  readonly desc: DescService;
}

/** The contracts of a release or of today, as the compatibility rules see them. */
export interface ContractSnapshot {
  /** Events by message full name. */
  readonly events: ReadonlyMap<string, EventSnapshot>;
  readonly applications: readonly ApplicationSnapshot[];
  /** Every consumer rpc of every application. */
  readonly consumers: readonly ConsumerSnapshot[];
  /** Every message of the files, by full name. */
  readonly messages: ReadonlyMap<string, DescMessage>;
  /** Prepended to file names in locations, e.g. `proto/`. */
  readonly pathPrefix: string;
}

function* walkMessages(messages: readonly DescMessage[]): Generator<DescMessage> {
  for (const message of messages) {
    yield message;
    yield* walkMessages(message.nestedMessages);
  }
}

/**
 * Read the contracts of a set of files.
 *
 * @param files the module's files (a release image's or today's).
 * @param pathPrefix prepended to file names in locations, e.g. `proto/`.
 */
export function snapshotContracts(files: readonly DescFile[], pathPrefix = ""): ContractSnapshot {
  return snapshotOf(readContracts(files, { pathPrefix }).model, files, pathPrefix);
}

/**
 * The snapshot of a contract model: its projection for the compatibility
 * rules, which derives nothing of its own.
 *
 * @param files the files the model was read from, for their messages.
 */
function snapshotOf(
  model: ContractModel,
  files: readonly DescFile[],
  pathPrefix: string,
): ContractSnapshot {
  const events = new Map<string, EventSnapshot>();
  for (const event of model.events.values()) {
    events.set(event.desc.typeName, {
      compatibility: event.compatibility,
      compatibilityFrom: event.compatibilityFrom,
      name: event.desc.typeName,
      type: event.type,
      topic: event.topic,
      orderingKey: event.orderingKey,
      subject: event.subject,
      encoding: event.encoding,
      maxBytes: event.maxBytes,
      desc: event.desc,
    });
  }
  const applications = model.applications.map(
    (app): ApplicationSnapshot => ({
      name: app.name,
      service: app.service.typeName,
      consumers: app.subscriptions.map(
        (sub): ConsumerSnapshot => ({
          application: app.name,
          service: app.service.typeName,
          rpc: sub.method.name,
          subscription: sub.name,
          event: sub.event.desc.typeName,
          deadLetter: sub.deadLetter,
          deadLetterTopic: sub.deadLetterIds?.topic ?? "",
          filter: sub.contractFilter,
          effectiveFilter: sub.filter,
          ordered: sub.ordered,
          derivedName: sub.derivedName,
          desc: sub.method,
        }),
      ),
      retired: app.retired,
      publishes: app.publishesDeclared,
      desc: app.service,
    }),
  );
  const messages = new Map<string, DescMessage>();
  for (const file of files) {
    for (const message of walkMessages(file.messages)) {
      messages.set(message.typeName, message);
    }
  }
  return {
    events,
    applications,
    consumers: applications.flatMap((a) => a.consumers),
    messages,
    pathPrefix,
  };
}

/** The applications that may publish an event (by message full name), by name. */
export function producersOf(snapshot: ContractSnapshot, eventName: string): readonly string[] {
  return snapshot.applications.filter((a) => a.publishes.includes(eventName)).map((a) => a.name);
}

/** The applications that may publish any of the events on any of the sides, sorted, each once. */
export function producersAcross(
  snapshots: readonly ContractSnapshot[],
  eventNames: Iterable<string>,
): string[] {
  const names = [...eventNames];
  return [...new Set(snapshots.flatMap((s) => names.flatMap((e) => producersOf(s, e))))].sort();
}

/** The consumers of an event (by message full name). */
export function consumersOf(
  snapshot: ContractSnapshot,
  eventName: string,
): readonly ConsumerSnapshot[] {
  return snapshot.consumers.filter((c) => c.event === eventName);
}

/** The messages and enums an event's payload can contain, the event itself first. */
export function closureOf(root: DescMessage): {
  readonly messages: readonly DescMessage[];
  readonly enums: readonly DescEnum[];
} {
  const messages: DescMessage[] = [];
  const enums: DescEnum[] = [];
  const seen = new Set<string>();
  const visit = (message: DescMessage): void => {
    if (seen.has(message.typeName)) {
      return;
    }
    seen.add(message.typeName);
    messages.push(message);
    for (const field of message.fields) {
      if (field.message !== undefined) {
        visit(field.message);
      }
      if (field.enum !== undefined && !seen.has(field.enum.typeName)) {
        seen.add(field.enum.typeName);
        enums.push(field.enum);
      }
    }
  };
  visit(root);
  return { messages, enums };
}

/** The events, on any of the sides, whose payload contains a message or enum (by full name). */
export function eventsReaching(snapshots: readonly ContractSnapshot[], typeName: string): string[] {
  const out = new Set<string>();
  for (const snapshot of snapshots) {
    for (const event of snapshot.events.values()) {
      const closure = closureOf(event.desc);
      if (
        closure.messages.some((m) => m.typeName === typeName) ||
        closure.enums.some((e) => e.typeName === typeName)
      ) {
        out.add(event.name);
      }
    }
  }
  return [...out].sort();
}

/** The consumers, on any of the sides, of every event whose payload contains a message or enum: one per subscription. */
export function consumersReaching(
  snapshots: readonly ContractSnapshot[],
  typeName: string,
): Array<{ application: string; subscription: string; event: string }> {
  const events = eventsReaching(snapshots, typeName);
  const out = new Map<string, { application: string; subscription: string; event: string }>();
  for (const snapshot of snapshots) {
    for (const c of snapshot.consumers) {
      if (events.includes(c.event)) {
        out.set(c.subscription, {
          application: c.application,
          subscription: c.subscription,
          event: c.event,
        });
      }
    }
  }
  return [...out.values()].sort((a, b) => (a.subscription < b.subscription ? -1 : 1));
}
