/**
 * The catalog's view of the contracts: every event with its fields, comments
 * and rules, every application with what it publishes and consumes, every
 * topic, read from the `.proto` sources (compiled by `buf build` with their
 * comments) through the same contract model codegen uses.
 */
import { resolve } from "node:path";
import { type DescEnum, type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import { getComments } from "@bufbuild/protoplugin";
import { bufBuild, pathPrefixOf, readModulePath } from "../buf.js";
import { readImage } from "../compat/image.js";
import { buildModel, type ContractModel, type EventModel } from "../model.js";
import type { FieldRules } from "../options.js";

/** One field of an event or of a message it contains. */
export interface CatalogField {
  readonly name: string;
  /** The proto3 JSON name, as in the JSON view of events. */
  readonly jsonName: string;
  readonly number: number;
  /** For people: `string`, `repeated checkout.v1.LineItem`, `map<string, int64>`. */
  readonly type: string;
  /** The message or enum the field refers to, for links. */
  readonly typeRef: string | undefined;
  readonly comment: string;
  /** The field rules for people, e.g. `required`, `at most 64 characters`. */
  readonly rules: readonly string[];
  readonly required: boolean;
  readonly pii: boolean;
  readonly desc: DescField;
  readonly fieldRules: FieldRules | undefined;
}

/** A message: an event's payload or a type it contains. */
export interface CatalogMessage {
  /** Full name, e.g. `checkout.v1.Money`. */
  readonly typeName: string;
  readonly name: string;
  readonly comment: string;
  readonly fields: readonly CatalogField[];
  /** The `.proto` file, e.g. `proto/checkout/v1/common.proto`. */
  readonly file: string;
  readonly desc: DescMessage;
}

/** An enum a message uses. */
export interface CatalogEnum {
  readonly typeName: string;
  readonly comment: string;
  readonly values: readonly {
    readonly name: string;
    readonly number: number;
    readonly comment: string;
  }[];
  readonly desc: DescEnum;
}

/** One consumer rpc: a Pub/Sub subscription. */
export interface CatalogSubscription {
  readonly name: string;
  readonly application: string;
  /** The proto service, e.g. `checkout.v1.PaymentService`. */
  readonly service: string;
  readonly rpc: string;
  readonly comment: string;
  /** Full name of the event consumed, e.g. `checkout.v1.OrderPlaced`. */
  readonly eventType: string;
  readonly topic: string;
  readonly maxDeliveryAttempts: number;
  readonly ackDeadlineSeconds: number;
  readonly minBackoffSeconds: number;
  readonly maxBackoffSeconds: number;
  readonly ordered: boolean;
  readonly filter: string;
  /** The dead-letter topic and the subscription keeping its messages; undefined when off. */
  readonly deadLetter: { readonly topic: string; readonly subscription: string } | undefined;
}

/** An event: its payload message plus what the contracts say about it. */
export interface CatalogEvent extends CatalogMessage {
  /** `ce-type`: the `type` option, else the full name. */
  readonly type: string;
  readonly topic: string;
  readonly orderingKey: string | undefined;
  readonly subject: string | undefined;
  readonly encoding: "binary" | "json";
  readonly contentType: string;
  /** The `ce-dataschema` value. */
  readonly dataschema: string;
  /** The applications that publish it (its owners). */
  readonly owners: readonly string[];
  /** The subscriptions that consume it. */
  readonly subscriptions: readonly CatalogSubscription[];
}

/** An application: one or more proto services sharing an application name. */
export interface CatalogApplication {
  readonly name: string;
  readonly services: readonly { readonly typeName: string; readonly comment: string }[];
  /** Full names of the events it publishes. */
  readonly publishes: readonly string[];
  readonly subscriptions: readonly CatalogSubscription[];
}

/** A Pub/Sub topic the contracts provision. */
export interface CatalogTopic {
  readonly name: string;
  readonly kind: "event" | "dead-letter";
  /** Full names of the events it carries (for a dead-letter topic: of its subscription). */
  readonly eventTypes: readonly string[];
  /** Subscriptions on it (for a dead-letter topic: the one keeping its messages). */
  readonly subscriptions: readonly string[];
  /** For a dead-letter topic: the subscription whose dead letters it takes. */
  readonly deadLetterOf: string | undefined;
}

/** Everything the catalog shows. */
export interface Catalog {
  readonly events: readonly CatalogEvent[];
  /** Messages the events contain (not events themselves), by name. */
  readonly types: readonly CatalogMessage[];
  readonly enums: readonly CatalogEnum[];
  readonly applications: readonly CatalogApplication[];
  readonly topics: readonly CatalogTopic[];
}

/** Options of {@link loadCatalog}. */
export interface LoadCatalogOptions {
  /** The directory with `buf.yaml`. @default the current directory */
  readonly root?: string;
  /** Files (as buf names them, e.g. `checkout/v1/order_events.proto`) to catalog. @default every file outside `protoevents/` and `google/` */
  readonly include?: (file: string) => boolean;
}

/**
 * Compile the `.proto` files with `buf build` (keeping comments) and read
 * the contracts with codegen's model, which also refuses contracts that
 * cannot work.
 *
 * @throws ProtoeventsError `invalid_contract` when buf fails or a contract
 *   cannot work.
 */
export async function loadCatalog(options: LoadCatalogOptions = {}): Promise<Catalog> {
  const root = resolve(options.root ?? ".");
  const modulePath = await readModulePath(root);
  const image = readImage(await bufBuild({ dir: root }, modulePath), `the image of ${modulePath}`);
  const include =
    options.include ??
    ((name: string) => !name.startsWith("protoevents/") && !name.startsWith("google/"));
  const mine = image.allFiles.filter((f) => include(`${f.name}.proto`));
  return catalogOf(buildModel(mine, image.allFiles, pathPrefixOf(modulePath)));
}

/** Build the catalog from a contract model. */
export function catalogOf(model: ContractModel): Catalog {
  const events = [...model.events.values()];
  const subscriptions = model.applications.flatMap((app) =>
    app.subscriptions.map(
      (sub): CatalogSubscription => ({
        name: sub.name,
        application: app.name,
        service: app.service.typeName,
        rpc: sub.method.name,
        comment: commentOf(sub.method),
        eventType: sub.event.desc.typeName,
        topic: sub.event.topic,
        maxDeliveryAttempts: sub.maxDeliveryAttempts,
        ackDeadlineSeconds: sub.ackDeadlineSeconds,
        minBackoffSeconds: sub.minBackoffSeconds,
        maxBackoffSeconds: sub.maxBackoffSeconds,
        ordered: sub.ordered,
        filter: sub.filter,
        deadLetter: sub.deadLetterIds,
      }),
    ),
  );
  const ownersOf = (event: EventModel): string[] =>
    unique(model.applications.filter((a) => a.publishes.includes(event)).map((a) => a.name));

  // Every message and enum an event reaches, events first.
  const messages = new Map<string, DescMessage>();
  const enums = new Map<string, DescEnum>();
  const visit = (message: DescMessage): void => {
    if (messages.has(message.typeName)) {
      return;
    }
    messages.set(message.typeName, message);
    for (const field of message.fields) {
      if (field.message !== undefined && !isWellKnown(field.message.typeName)) {
        visit(field.message);
      }
      if (field.enum !== undefined) {
        enums.set(field.enum.typeName, field.enum);
      }
    }
  };
  for (const event of events) {
    visit(event.desc);
  }
  const eventNames = new Set(events.map((e) => e.desc.typeName));
  const messageOf = (desc: DescMessage): CatalogMessage => ({
    typeName: desc.typeName,
    name: desc.name,
    comment: commentOf(desc),
    fields: desc.fields.map((field) => fieldOf(field, model.rules.get(field))),
    file: `proto/${desc.file.name}.proto`,
    desc,
  });

  const catalogEvents = events.map(
    (event: EventModel): CatalogEvent => ({
      ...messageOf(event.desc),
      type: event.type,
      topic: event.topic,
      orderingKey: event.orderingKeyField?.name,
      subject: event.subjectField?.name,
      encoding: event.encoding,
      contentType: event.contentType,
      dataschema: event.dataschema,
      owners: ownersOf(event),
      subscriptions: subscriptions.filter((s) => s.eventType === event.desc.typeName),
    }),
  );

  const applications = new Map<string, CatalogApplication>();
  for (const app of model.applications) {
    const known = applications.get(app.name);
    applications.set(app.name, {
      name: app.name,
      services: [
        ...(known?.services ?? []),
        { typeName: app.service.typeName, comment: commentOf(app.service) },
      ],
      publishes: unique([
        ...(known?.publishes ?? []),
        ...app.publishes.map((e) => e.desc.typeName),
      ]),
      subscriptions: [
        ...(known?.subscriptions ?? []),
        ...subscriptions.filter((s) => s.service === app.service.typeName),
      ],
    });
  }

  const topics: CatalogTopic[] = [];
  for (const topic of unique(events.map((e) => e.topic))) {
    topics.push({
      name: topic,
      kind: "event",
      eventTypes: events.filter((e) => e.topic === topic).map((e) => e.desc.typeName),
      subscriptions: subscriptions.filter((s) => s.topic === topic).map((s) => s.name),
      deadLetterOf: undefined,
    });
  }
  for (const sub of subscriptions) {
    if (sub.deadLetter !== undefined) {
      topics.push({
        name: sub.deadLetter.topic,
        kind: "dead-letter",
        eventTypes: [sub.eventType],
        subscriptions: [sub.deadLetter.subscription],
        deadLetterOf: sub.name,
      });
    }
  }

  return {
    events: catalogEvents,
    types: [...messages.values()].filter((m) => !eventNames.has(m.typeName)).map(messageOf),
    enums: [...enums.values()].map((e) => ({
      typeName: e.typeName,
      comment: commentOf(e),
      values: e.values.map((v) => ({ name: v.name, number: v.number, comment: commentOf(v) })),
      desc: e,
    })),
    applications: [...applications.values()],
    topics,
  };
}

/** Well-known types are shown by their JSON form, not as messages of their own. */
export function isWellKnown(typeName: string): boolean {
  return typeName.startsWith("google.protobuf.");
}

function unique<T>(items: readonly T[]): T[] {
  return [...new Set(items)];
}

/** The leading comment of a descriptor, without the comment markers' indentation. */
function commentOf(desc: Parameters<typeof getComments>[0]): string {
  const text = getComments(desc).leading ?? "";
  return text
    .split("\n")
    .map((line) => line.replace(/^ /, ""))
    .join("\n")
    .trim();
}

function scalarName(scalar: ScalarType): string {
  return ScalarType[scalar].toLowerCase();
}

function typeOf(field: DescField): { type: string; typeRef: string | undefined } {
  switch (field.fieldKind) {
    case "scalar":
      return { type: scalarName(field.scalar), typeRef: undefined };
    case "enum":
      return { type: field.enum.typeName, typeRef: field.enum.typeName };
    case "message":
      return { type: field.message.typeName, typeRef: field.message.typeName };
    case "list":
      switch (field.listKind) {
        case "scalar":
          return { type: `repeated ${scalarName(field.scalar)}`, typeRef: undefined };
        case "enum":
          return { type: `repeated ${field.enum.typeName}`, typeRef: field.enum.typeName };
        case "message":
          return { type: `repeated ${field.message.typeName}`, typeRef: field.message.typeName };
      }
      break;
    case "map": {
      const key = scalarName(field.mapKey);
      switch (field.mapKind) {
        case "scalar":
          return { type: `map<${key}, ${scalarName(field.scalar)}>`, typeRef: undefined };
        case "enum":
          return { type: `map<${key}, ${field.enum.typeName}>`, typeRef: field.enum.typeName };
        case "message":
          return {
            type: `map<${key}, ${field.message.typeName}>`,
            typeRef: field.message.typeName,
          };
      }
    }
  }
}

/** The field rules in words. */
export function describeRules(rules: FieldRules | undefined): string[] {
  if (rules === undefined) {
    return [];
  }
  const out: string[] = [];
  if (rules.required) {
    out.push("required");
  }
  if (rules.minLen !== undefined && rules.maxLen !== undefined) {
    out.push(`${rules.minLen}–${rules.maxLen} characters`);
  } else if (rules.minLen !== undefined) {
    out.push(`at least ${rules.minLen} characters`);
  } else if (rules.maxLen !== undefined) {
    out.push(`at most ${rules.maxLen} characters`);
  }
  if (rules.pattern !== "") {
    out.push(`matches ${rules.pattern}`);
  }
  if (rules.min !== undefined && rules.max !== undefined) {
    out.push(`${rules.min} to ${rules.max}`);
  } else if (rules.min !== undefined) {
    out.push(`at least ${rules.min}`);
  } else if (rules.max !== undefined) {
    out.push(`at most ${rules.max}`);
  }
  if (rules.minItems !== undefined && rules.maxItems !== undefined) {
    out.push(`${rules.minItems}–${rules.maxItems} items`);
  } else if (rules.minItems !== undefined) {
    out.push(`at least ${rules.minItems} items`);
  } else if (rules.maxItems !== undefined) {
    out.push(`at most ${rules.maxItems} items`);
  }
  if (rules.pii) {
    out.push("pii: redacted in logs and dead-letter views");
  }
  return out;
}

function fieldOf(field: DescField, rules: FieldRules | undefined): CatalogField {
  const { type, typeRef } = typeOf(field);
  return {
    name: field.name,
    jsonName: field.jsonName,
    number: field.number,
    type,
    typeRef: typeRef !== undefined && isWellKnown(typeRef) ? undefined : typeRef,
    comment: commentOf(field),
    rules: describeRules(rules),
    required: rules?.required === true,
    pii: rules?.pii === true,
    desc: field,
    fieldRules: rules,
  };
}
