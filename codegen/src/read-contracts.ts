/**
 * Reading contracts: the one place that reads protoevents' options from
 * descriptors and turns them into the contract model, deriving every name
 * through `derive.ts`, and lists what cannot work as findings with
 * `file:line:column`.
 *
 * Reading is lenient: a finding never stops it, and the model holds every
 * event, application and consumer rpc it found. Codegen (`buildModel`)
 * refuses a contract with findings; the compatibility gate and sync read
 * anyway, because a release was valid under the checks of its day and a
 * check added later must not make it unreadable, and because the gate must
 * judge today's contracts even while they are broken.
 */
import { createHash } from "node:crypto";
import {
  type DescField,
  type DescFile,
  type DescMessage,
  type DescMethod,
  type DescService,
  ScalarType,
  toBinary,
} from "@bufbuild/protobuf";
import { DescriptorProtoSchema, FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";
import { DEFAULT_MAX_EVENT_BYTES, PUBSUB_MAX_MESSAGE_BYTES } from "@protoevents/runtime/defaults";
import {
  contentType,
  DEAD_LETTER_SUFFIX,
  deadLetterIds,
  eventType,
  kebab,
  subscriptionFilter,
  subscriptionId,
} from "./derive.js";
import { applicationNames, handlerMethodName } from "./emit/names.js";
import {
  ContractDefaultsSchema,
  PayloadEncoding,
  type SubscriptionOptions,
} from "./gen/protoevents/v1/options_pb.js";
import {
  locate,
  locateFileOption,
  METHOD_INPUT_TYPE,
  METHOD_OUTPUT_TYPE,
  optionPath,
  type SourceLocation,
} from "./location.js";
import type {
  ApplicationModel,
  ContractModel,
  EventModel,
  Finding,
  SubscriptionModel,
} from "./model.js";
import {
  compatibilityMode,
  DEFAULT_COMPATIBILITY,
  type FieldRules,
  fileCompatibility,
  getApplicationOptions,
  getEventOptions,
  getFieldRules,
  getSubscriptionOptions,
  hasSubscriptionOptions,
  type PackageDefaults,
  packageDefaultsOf,
} from "./options.js";
import { planPattern } from "./pattern.js";
import { scalarOf } from "./scalars.js";

/** Options of {@link readContracts}. */
export interface ReadOptions {
  /**
   * The files whose applications and field rules the model holds and whose
   * declarations are checked, e.g. the plugin's files to generate. Events
   * are read from every file, so that references to them resolve.
   * @default every file
   */
  readonly checked?: readonly DescFile[];
  /** Prepended to file names in locations, e.g. `proto/`. @default "" */
  readonly pathPrefix?: string;
}

/** What {@link readContracts} found. */
export interface ContractReading {
  readonly model: ContractModel;
  /** Everything that cannot work, sorted by location; empty for a contract codegen accepts. */
  readonly findings: readonly Finding[];
}

/** Defaults of SubscriptionOptions; see options.proto. */
export const SubscriptionDefaults = {
  maxDeliveryAttempts: 5,
  ackDeadlineSeconds: 60,
  minBackoffSeconds: 10,
  maxBackoffSeconds: 600,
  messageRetentionSeconds: 7 * 24 * 60 * 60,
} as const;

/** Pub/Sub resource ids: a letter, then 2–254 of letters, digits and `-_.~+%`; not `goog…`. */
const RESOURCE_ID = /^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$/;
const APPLICATION_NAME = /^[a-z][a-z0-9-]{0,62}$/;

const integerScalars: ReadonlySet<ScalarType> = new Set([
  ScalarType.INT32,
  ScalarType.INT64,
  ScalarType.UINT32,
  ScalarType.UINT64,
  ScalarType.SINT32,
  ScalarType.SINT64,
  ScalarType.FIXED32,
  ScalarType.FIXED64,
  ScalarType.SFIXED32,
  ScalarType.SFIXED64,
]);
const numberScalars: ReadonlySet<ScalarType> = new Set([
  ...integerScalars,
  ScalarType.FLOAT,
  ScalarType.DOUBLE,
]);

/** "a string field", "an int32 field", … */
function aKind(field: DescField): string {
  const kind = describeKind(field);
  return `${/^[aeiou]/.test(kind) ? "an" : "a"} ${kind}`;
}

function describeKind(field: DescField): string {
  switch (field.fieldKind) {
    case "scalar":
      return `${ScalarType[field.scalar].toLowerCase()} field`;
    case "enum":
      return `enum field (${field.enum.typeName})`;
    case "message":
      return `message field (${field.message.typeName})`;
    case "list":
      return `repeated ${field.listKind === "scalar" ? ScalarType[field.scalar].toLowerCase() : field.listKind === "enum" ? field.enum.typeName : field.message.typeName} field`;
    case "map":
      return "map field";
  }
}

function* allMessages(file: DescFile): Generator<DescMessage> {
  const walk = function* (messages: readonly DescMessage[]): Generator<DescMessage> {
    for (const message of messages) {
      yield message;
      yield* walk(message.nestedMessages);
    }
  };
  yield* walk(file.messages);
}

/** Hash of the message and every message and enum it reaches: changes when the schema does, not the comments. */
function schemaHash(root: DescMessage): string {
  const seen = new Set<string>();
  const parts: Array<[string, Uint8Array]> = [];
  const visit = (message: DescMessage): void => {
    if (seen.has(message.typeName)) {
      return;
    }
    seen.add(message.typeName);
    parts.push([message.typeName, toBinary(DescriptorProtoSchema, message.proto)]);
    for (const field of message.fields) {
      if (field.message !== undefined) {
        visit(field.message);
      }
      if (field.enum !== undefined && !seen.has(field.enum.typeName)) {
        seen.add(field.enum.typeName);
        parts.push([
          field.enum.typeName,
          new TextEncoder().encode(
            JSON.stringify(field.enum.values.map((v) => [v.name, v.number])),
          ),
        ]);
      }
    }
  };
  visit(root);
  parts.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const hash = createHash("sha256");
  for (const [name, bytes] of parts) {
    hash.update(name);
    hash.update(bytes);
  }
  return hash.digest("hex").slice(0, 16);
}

/** A topic id in the style of the checkout contracts: `<package without version>.<event in kebab-case>`. */
function suggestTopic(message: DescMessage): string {
  const area = message.file.proto.package
    .split(".")
    .filter((part) => part !== "" && !/^v\d+/.test(part))
    .join(".");
  return area === "" ? kebab(message.name) : `${area}.${kebab(message.name)}`;
}

/** Field names a user could have meant, for a fix message. */
function candidates(message: DescMessage, accept: (field: DescField) => boolean): string {
  const names = message.fields.filter(accept).map((f) => f.name);
  return names.length === 0 ? "(the message has none; add one)" : names.join(", ");
}

function isKeyField(field: DescField): boolean {
  return (
    field.fieldKind === "scalar" &&
    (field.scalar === ScalarType.STRING || integerScalars.has(field.scalar))
  );
}

/**
 * Read the contracts of a set of files into the contract model, leniently:
 * every finding is listed, none stops the reading. The model of a contract
 * with findings still holds every application and every consumer rpc (a
 * streaming one, one whose input is no event), so the gate and sync see
 * what the author wrote; `buildModel` refuses such a contract.
 *
 * @param files every file to read events from: the plugin's whole request, or a module's files.
 */
export function readContracts(
  files: readonly DescFile[],
  options: ReadOptions = {},
): ContractReading {
  const checkedFiles = options.checked ?? files;
  const pathPrefix = options.pathPrefix ?? "";
  const r: Reading = {
    findings: [],
    checked: new Set(checkedFiles.map((f) => f.name)),
    pathPrefix,
    at: (desc, subPath = []) => locate(desc, subPath, pathPrefix),
  };
  const defaults = packageDefaultsOf(files);
  checkPackageDefaults(r, checkedFiles, defaults);
  const events = new Map<string, EventModel>();
  for (const file of files) {
    for (const message of allMessages(file)) {
      const event = readEvent(r, message, defaults);
      if (event !== undefined) {
        events.set(message.typeName, event);
      }
    }
  }
  const byTopic = eventsByTopic(r, events);
  const applications: ApplicationModel[] = [];
  const subscriptionIds = new Map<string, DescMethod>();
  for (const file of checkedFiles) {
    for (const service of file.services) {
      const application = readApplication(r, service, events, byTopic, subscriptionIds);
      if (application !== undefined) {
        applications.push(application);
      }
    }
  }
  const rules = readFieldRules(r, checkedFiles);
  r.findings.sort((a, b) =>
    a.location.file === b.location.file
      ? a.location.line - b.location.line || a.location.column - b.location.column
      : a.location.file < b.location.file
        ? -1
        : 1,
  );
  return { model: { events, applications, rules }, findings: r.findings };
}

/** What the steps of one reading share. */
interface Reading {
  /** Everything found so far. */
  readonly findings: Finding[];
  /** Names of the files whose declarations are checked. */
  readonly checked: ReadonlySet<string>;
  readonly pathPrefix: string;
  /** Where an element (or a part of it, by source path) is declared. */
  at(
    desc: DescMessage | DescField | DescService | DescMethod,
    subPath?: readonly number[],
  ): SourceLocation;
}

/** Every file of a package that sets a compatibility mode sets the same one. */
function checkPackageDefaults(
  r: Reading,
  files: readonly DescFile[],
  defaults: ReadonlyMap<string, PackageDefaults>,
): void {
  for (const file of files) {
    const mode = fileCompatibility(file);
    const first = defaults.get(file.proto.package);
    if (mode !== undefined && first !== undefined && first.compatibility !== mode) {
      r.findings.push({
        rule: "package-defaults-conflict",
        message: `file ${file.name}.proto sets compatibility ${mode} for package ${file.proto.package}, but ${first.file.name}.proto sets ${first.compatibility}: a package has one default`,
        fix: `set the same compatibility in both files, or set it in one file only (it applies to every file of the package); an event that needs another mode sets its own (protoevents.v1.event).compatibility`,
        location: locateFileOption(
          file,
          "defaults",
          r.pathPrefix,
          ContractDefaultsSchema.field.compatibility.number,
        ),
      });
    }
  }
}

/** An event as its option declares it, checked when its file is; undefined for a message that is no event. */
function readEvent(
  r: Reading,
  message: DescMessage,
  defaults: ReadonlyMap<string, PackageDefaults>,
): EventModel | undefined {
  const options = getEventOptions(message);
  if (options === undefined) {
    return undefined;
  }
  const file = message.file;
  const mine = r.checked.has(file.name);
  const optionAt = (...fields: number[]) => r.at(message, optionPath(message, "event", ...fields));
  const keyField = (
    name: string,
    what: "ordering_key" | "subject",
    number: number,
  ): DescField | undefined => {
    if (name === "") {
      return undefined;
    }
    const field = message.fields.find((f) => f.name === name);
    const rule = what === "ordering_key" ? "ordering-key" : "subject";
    if (field === undefined) {
      if (mine) {
        r.findings.push({
          rule: `${rule}-missing`,
          message: `event ${message.typeName} names ${what} "${name}", which is not a field of the message`,
          fix: `set ${what} to one of its top-level string or integer fields: ${candidates(message, isKeyField)}`,
          location: optionAt(number),
        });
      }
      return undefined;
    }
    if (!isKeyField(field) || field.oneof !== undefined) {
      if (mine) {
        r.findings.push({
          rule: `${rule}-not-scalar`,
          message: `event ${message.typeName} uses ${field.name} as ${what}, but it is ${field.oneof === undefined ? aKind(field) : "a oneof member"}; a ${what === "ordering_key" ? "Pub/Sub ordering key" : "CloudEvents subject"} is one string`,
          fix: `point ${what} at a top-level string or integer field outside any oneof: ${candidates(message, (f) => isKeyField(f) && f.oneof === undefined)}`,
          location: optionAt(number),
        });
      }
      return undefined;
    }
    return field;
  };
  if (mine) {
    if (options.topic === "") {
      r.findings.push({
        rule: "event-topic-missing",
        message: `event ${message.typeName} has no topic`,
        fix: `add topic: "${suggestTopic(message)}" to its (protoevents.v1.event) option`,
        location: optionAt(),
      });
    } else if (!RESOURCE_ID.test(options.topic) || options.topic.startsWith("goog")) {
      r.findings.push({
        rule: "event-topic-invalid",
        message: `topic "${options.topic}" of event ${message.typeName} is not a valid Pub/Sub topic id`,
        fix: "use 3 to 255 characters, starting with a letter, of letters, digits and -_.~+%, not starting with goog",
        location: optionAt(1),
      });
    }
  }
  if (mine && options.maxBytes > PUBSUB_MAX_MESSAGE_BYTES) {
    r.findings.push({
      rule: "event-max-bytes-invalid",
      message: `event ${message.typeName} has max_bytes ${options.maxBytes}, above the ${PUBSUB_MAX_MESSAGE_BYTES} bytes Pub/Sub accepts in a message`,
      fix: `set max_bytes to at most ${PUBSUB_MAX_MESSAGE_BYTES}, or leave it out for ${DEFAULT_MAX_EVENT_BYTES} (1 MiB)`,
      location: optionAt(6),
    });
  }
  const retention = options.messageRetentionSeconds;
  if (mine && retention !== undefined && (retention < 600 || retention > 2_678_400)) {
    r.findings.push({
      rule: "retention-range",
      message: `event ${message.typeName} sets message_retention_seconds ${retention}; Pub/Sub keeps a topic's messages 600 (10 minutes) to 2678400 (31 days) seconds`,
      fix: "set message_retention_seconds between 600 and 2678400, or leave it out",
      location: optionAt(7),
    });
  }
  const hash = schemaHash(message);
  const encoding = options.encoding === PayloadEncoding.JSON ? "json" : "binary";
  const own = compatibilityMode(options.compatibility);
  const inherited = defaults.get(file.proto.package)?.compatibility;
  return {
    desc: message,
    type: eventType(message.typeName, options.type),
    topic: options.topic,
    orderingKeyField: keyField(options.orderingKey, "ordering_key", 2),
    subjectField: keyField(options.subject, "subject", 3),
    orderingKey: options.orderingKey,
    subject: options.subject,
    encoding,
    contentType: contentType(encoding),
    dataschema: `urn:protoevents:schema:${message.typeName}:sha256-${hash}`,
    maxBytes: options.maxBytes === 0 ? DEFAULT_MAX_EVENT_BYTES : options.maxBytes,
    messageRetentionSeconds: retention,
    compatibility: own ?? inherited ?? DEFAULT_COMPATIBILITY,
    compatibilityFrom:
      own !== undefined ? "event" : inherited !== undefined ? "package" : "default",
  };
}

/** The events of each topic; events on one topic must be told apart by ce-type and agree on retention. */
function eventsByTopic(
  r: Reading,
  events: ReadonlyMap<string, EventModel>,
): Map<string, EventModel[]> {
  const byTopic = new Map<string, EventModel[]>();
  for (const model of events.values()) {
    const list = byTopic.get(model.topic) ?? [];
    list.push(model);
    byTopic.set(model.topic, list);
  }
  for (const [topic, list] of byTopic) {
    for (const [i, model] of list.entries()) {
      const earlier = list.slice(0, i).find((other) => other.type === model.type);
      if (earlier !== undefined && r.checked.has(model.desc.file.name)) {
        r.findings.push({
          rule: "event-type-ambiguous",
          message: `events ${earlier.desc.typeName} and ${model.desc.typeName} are both published on topic ${topic} with ce-type "${model.type}": consumers cannot tell them apart`,
          fix: `give one of them a distinct type in its (protoevents.v1.event) option, or its own topic`,
          location: r.at(
            model.desc,
            optionPath(model.desc, "event", model.type === model.desc.typeName ? 1 : 5),
          ),
        });
      }
      const disagrees = list
        .slice(0, i)
        .find(
          (other) =>
            other.messageRetentionSeconds !== undefined &&
            model.messageRetentionSeconds !== undefined &&
            other.messageRetentionSeconds !== model.messageRetentionSeconds,
        );
      if (disagrees !== undefined && r.checked.has(model.desc.file.name)) {
        r.findings.push({
          rule: "topic-retention-conflict",
          message: `events ${disagrees.desc.typeName} and ${model.desc.typeName} share topic ${topic} but ask it to keep messages ${disagrees.messageRetentionSeconds} and ${model.messageRetentionSeconds} seconds`,
          fix: "give both the same message_retention_seconds, or set it on one of them only",
          location: r.at(model.desc, optionPath(model.desc, "event", 7)),
        });
      }
    }
  }
  return byTopic;
}

/** An application with its subscriptions, checked; undefined for a service that is no application. */
function readApplication(
  r: Reading,
  service: DescService,
  events: ReadonlyMap<string, EventModel>,
  byTopic: ReadonlyMap<string, readonly EventModel[]>,
  subscriptionIds: Map<string, DescMethod>,
): ApplicationModel | undefined {
  const options = getApplicationOptions(service);
  if (options === undefined) {
    for (const method of service.methods) {
      if (hasSubscriptionOptions(method)) {
        r.findings.push({
          rule: "subscription-without-application",
          message: `rpc ${service.typeName}.${method.name} sets (protoevents.v1.subscription), but service ${service.name} is not an application`,
          fix: `add option (protoevents.v1.application) = { name: "..." } to service ${service.name}, or remove the subscription option`,
          location: r.at(method, optionPath(method, "subscription")),
        });
      }
    }
    return undefined;
  }
  const appAt = (...fields: number[]) =>
    r.at(service, optionPath(service, "application", ...fields));
  if (!APPLICATION_NAME.test(options.name)) {
    r.findings.push({
      rule: "application-name-invalid",
      message:
        options.name === ""
          ? `application ${service.typeName} has no name`
          : `application name "${options.name}" of ${service.typeName} is not lowercase letters, digits and -`,
      fix: `set name: "${kebab(service.name.replace(/Service$/, ""))}" (lowercase letters, digits and -, starting with a letter, at most 63)`,
      location: appAt(1),
    });
  }
  const publishes: EventModel[] = [];
  for (const [index, name] of options.publishes.entries()) {
    const model = events.get(name);
    if (model === undefined) {
      const known = [...events.keys()];
      const short = name.split(".").pop() ?? name;
      const near = known.filter(
        (k) => k.endsWith(`.${short}`) || k.toLowerCase().includes(short.toLowerCase()),
      );
      r.findings.push({
        rule: "publishes-unknown",
        message: `application ${options.name} publishes "${name}", which is not an event`,
        fix:
          near.length > 0
            ? `use the full name of an event, e.g. ${near.slice(0, 3).join(", ")}`
            : `use the full name (package.Message) of a message with option (protoevents.v1.event)`,
        location: appAt(2, index),
      });
    } else if (publishes.includes(model)) {
      r.findings.push({
        rule: "publishes-duplicate",
        message: `application ${options.name} lists ${name} twice in publishes`,
        fix: "remove the second entry",
        location: appAt(2, index),
      });
    } else {
      publishes.push(model);
    }
  }
  const subscriptions: SubscriptionModel[] = [];
  // What codegen would accept of them: unary rpcs consuming an event.
  const consumable: SubscriptionModel[] = [];
  for (const method of service.methods) {
    const subscription = readSubscription(
      r,
      options.name,
      method,
      events,
      byTopic,
      subscriptionIds,
    );
    subscriptions.push(subscription);
    if (method.methodKind === "unary" && events.has(method.input.typeName)) {
      consumable.push(subscription);
    }
  }
  for (const [index, retired] of options.retiredSubscriptions.entries()) {
    const current = consumable.find((s) => s.name === retired);
    if (current !== undefined) {
      r.findings.push({
        rule: "retired-subscription-in-use",
        message: `application ${options.name} lists ${retired} in retired_subscriptions, but rpc ${current.method.parent.name}.${current.method.name} still consumes it`,
        fix: `remove "${retired}" from retired_subscriptions, or remove the rpc (or give it another subscription name)`,
        location: r.at(service, optionPath(service, "application", 3, index)),
      });
    }
  }
  return {
    service,
    name: options.name,
    publishes,
    publishesDeclared: [...options.publishes],
    subscriptions,
    retired: [...options.retiredSubscriptions],
    handlersInterface: applicationNames(service.name).handlers,
  };
}

/** The subscription of a consumer rpc, checked; a streaming rpc gets that one finding and no other check. */
function readSubscription(
  r: Reading,
  application: string,
  method: DescMethod,
  events: ReadonlyMap<string, EventModel>,
  byTopic: ReadonlyMap<string, readonly EventModel[]>,
  subscriptionIds: Map<string, DescMethod>,
): SubscriptionModel {
  const where = `rpc ${method.parent.name}.${method.name}`;
  const declared = events.get(method.input.typeName);
  const event = declared ?? notAnEvent(method.input);
  const sub = getSubscriptionOptions(method);
  const settings = subscriptionSettings(sub);
  const name = subscriptionId(application, method.name, sub.name);
  if (method.methodKind !== "unary") {
    r.findings.push({
      rule: "consumer-streaming",
      message: `${where} is ${method.methodKind.replace("_", " ")}; a consumer rpc receives one event at a time`,
      fix: "declare it as a unary rpc: rpc Name(Event) returns (google.protobuf.Empty)",
      location: r.at(method),
    });
  } else {
    checkConsumer(r, method, where, declared, sub, settings, name, subscriptionIds);
  }
  const siblings =
    declared === undefined
      ? []
      : (byTopic.get(event.topic) ?? [])
          .filter((other) => other !== event)
          .map((other) => other.type);
  const deadLetter = sub.deadLetter ?? true;
  return {
    method,
    application,
    name,
    derivedName: sub.name === "",
    event,
    ...settings,
    retainAckedMessages: sub.retainAckedMessages,
    exactlyOnceDelivery: sub.exactlyOnceDelivery,
    ordered: sub.ordered,
    filter: subscriptionFilter(sub.filter, event.type, siblings.length > 0),
    contractFilter: sub.filter,
    deadLetter,
    deadLetterIds: deadLetter ? deadLetterIds(name) : undefined,
    siblingTypes: siblings,
    handlerMethod: handlerMethodName(method.name),
  };
}

/** The checks of one unary consumer rpc. */
function checkConsumer(
  r: Reading,
  method: DescMethod,
  where: string,
  declared: EventModel | undefined,
  sub: SubscriptionOptions,
  settings: SubscriptionSettings,
  name: string,
  subscriptionIds: Map<string, DescMethod>,
): void {
  if (declared === undefined) {
    r.findings.push({
      rule: "consumer-input-not-event",
      message: `${where} consumes ${method.input.typeName}, which is not an event`,
      fix: `add option (protoevents.v1.event) to ${method.input.typeName}, consume an event instead, or move the rpc to a service without (protoevents.v1.application)`,
      location: r.at(method, [METHOD_INPUT_TYPE]),
    });
  }
  if (method.output.typeName !== "google.protobuf.Empty") {
    r.findings.push({
      rule: "consumer-output-not-empty",
      message: `${where} returns ${method.output.typeName}; a consumer answers nothing, its effects are its state and the events it publishes`,
      fix: "return google.protobuf.Empty",
      location: r.at(method, [METHOD_OUTPUT_TYPE]),
    });
  }
  const subAt = (...fields: number[]) =>
    r.at(method, optionPath(method, "subscription", ...fields));
  const {
    maxDeliveryAttempts,
    ackDeadlineSeconds,
    minBackoffSeconds,
    maxBackoffSeconds,
    messageRetentionSeconds,
    expirationTtlDays,
  } = settings;
  if (maxDeliveryAttempts < 5 || maxDeliveryAttempts > 100) {
    r.findings.push({
      rule: "delivery-attempts-range",
      message: `${where} sets max_delivery_attempts ${maxDeliveryAttempts}; Pub/Sub allows 5 to 100`,
      fix: `set max_delivery_attempts between 5 and 100 (${maxDeliveryAttempts < 5 ? 5 : 100} is the nearest)`,
      location: subAt(2),
    });
  }
  if (ackDeadlineSeconds < 10 || ackDeadlineSeconds > 600) {
    r.findings.push({
      rule: "ack-deadline-range",
      message: `${where} sets ack_deadline_seconds ${ackDeadlineSeconds}; Pub/Sub allows 10 to 600`,
      fix: "set ack_deadline_seconds between 10 and 600",
      location: subAt(3),
    });
  }
  for (const [value, field, number] of [
    [minBackoffSeconds, "min_backoff_seconds", 4],
    [maxBackoffSeconds, "max_backoff_seconds", 5],
  ] as const) {
    if (value < 0 || value > 600) {
      r.findings.push({
        rule: "backoff-range",
        message: `${where} sets ${field} ${value}; Pub/Sub allows 0 to 600 seconds`,
        fix: `set ${field} between 0 and 600`,
        location: subAt(number),
      });
    }
  }
  if (minBackoffSeconds > maxBackoffSeconds) {
    r.findings.push({
      rule: "backoff-range",
      message: `${where} sets min_backoff_seconds ${minBackoffSeconds} above max_backoff_seconds ${maxBackoffSeconds}`,
      fix: "make min_backoff_seconds at most max_backoff_seconds",
      location: subAt(4),
    });
  }
  if (messageRetentionSeconds < 600 || messageRetentionSeconds > 604_800) {
    r.findings.push({
      rule: "retention-range",
      message: `${where} sets message_retention_seconds ${messageRetentionSeconds}; Pub/Sub allows 600 (10 minutes) to 604800 (7 days)`,
      fix: "set message_retention_seconds between 600 and 604800",
      location: subAt(10),
    });
  }
  if (expirationTtlDays !== undefined) {
    if (expirationTtlDays < 1 || expirationTtlDays > 365) {
      r.findings.push({
        rule: "expiration-range",
        message: `${where} sets expiration_ttl_days ${expirationTtlDays}; Pub/Sub allows 1 to 365 days`,
        fix: "set expiration_ttl_days between 1 and 365, or leave it out so the subscription never expires",
        location: subAt(9),
      });
    } else if (expirationTtlDays * 86_400 <= messageRetentionSeconds) {
      r.findings.push({
        rule: "expiration-range",
        message: `${where} sets expiration_ttl_days ${expirationTtlDays}, not longer than its message retention (${messageRetentionSeconds} s); Pub/Sub refuses an expiry that is not longer than the retention`,
        fix: `set expiration_ttl_days above ${Math.floor(messageRetentionSeconds / 86_400)}, lower message_retention_seconds, or leave expiration_ttl_days out so the subscription never expires`,
        location: subAt(9),
      });
    }
  }
  if (sub.ordered && declared !== undefined && declared.orderingKeyField === undefined) {
    r.findings.push({
      rule: "ordered-without-key",
      message: `${where} is ordered, but event ${declared.desc.typeName} has no ordering key, so nothing would be ordered`,
      fix: `declare ordering_key in the (protoevents.v1.event) option of ${declared.desc.typeName}, or drop ordered`,
      location: subAt(6),
    });
  }
  if (
    !RESOURCE_ID.test(name) ||
    name.startsWith("goog") ||
    name.length + DEAD_LETTER_SUFFIX.length > 255
  ) {
    r.findings.push({
      rule: "subscription-name-invalid",
      message: `subscription id "${name}" of ${where} is not a valid Pub/Sub subscription id (with room for "${DEAD_LETTER_SUFFIX}")`,
      fix: "use 3 to 243 characters, starting with a letter, of letters, digits and -_.~+%",
      location: sub.name === "" ? r.at(method) : subAt(1),
    });
  }
  const clash = subscriptionIds.get(name);
  if (clash !== undefined) {
    r.findings.push({
      rule: "subscription-name-duplicate",
      message: `${where} and rpc ${clash.parent.name}.${clash.name} both use subscription id "${name}"`,
      fix: "rename one rpc or give it its own name in (protoevents.v1.subscription)",
      location: sub.name === "" ? r.at(method) : subAt(1),
    });
  }
  subscriptionIds.set(name, method);
}

/** The field rules of every field of the files that has some, checked. */
function readFieldRules(r: Reading, files: readonly DescFile[]): Map<DescField, FieldRules> {
  const rules = new Map<DescField, FieldRules>();
  for (const file of files) {
    for (const message of allMessages(file)) {
      for (const field of message.fields) {
        const fieldRules = getFieldRules(field);
        if (fieldRules !== undefined) {
          checkRules(field, fieldRules, r.findings, r.pathPrefix);
          rules.set(field, fieldRules);
        }
      }
    }
  }
  return rules;
}

/** A subscription's Pub/Sub settings: the contract's, or the defaults where it sets none. */
type SubscriptionSettings = Pick<
  SubscriptionModel,
  | "maxDeliveryAttempts"
  | "ackDeadlineSeconds"
  | "minBackoffSeconds"
  | "maxBackoffSeconds"
  | "messageRetentionSeconds"
  | "expirationTtlDays"
>;

function subscriptionSettings(sub: SubscriptionOptions): SubscriptionSettings {
  return {
    maxDeliveryAttempts: sub.maxDeliveryAttempts ?? SubscriptionDefaults.maxDeliveryAttempts,
    ackDeadlineSeconds: sub.ackDeadlineSeconds ?? SubscriptionDefaults.ackDeadlineSeconds,
    minBackoffSeconds: sub.minBackoffSeconds ?? SubscriptionDefaults.minBackoffSeconds,
    maxBackoffSeconds: sub.maxBackoffSeconds ?? SubscriptionDefaults.maxBackoffSeconds,
    messageRetentionSeconds:
      sub.messageRetentionSeconds ?? SubscriptionDefaults.messageRetentionSeconds,
    expirationTtlDays: sub.expirationTtlDays,
  };
}

/**
 * What a consumer rpc whose input is not an event consumes, in a lenient
 * reading: the message as an event without a topic, every option at its
 * default. It never enters `model.events`, and the finding
 * `consumer-input-not-event` comes with it, so no model `buildModel`
 * accepts holds one.
 */
function notAnEvent(message: DescMessage): EventModel {
  return {
    desc: message,
    type: eventType(message.typeName, ""),
    topic: "",
    orderingKeyField: undefined,
    subjectField: undefined,
    orderingKey: "",
    subject: "",
    encoding: "binary",
    contentType: contentType("binary"),
    dataschema: "",
    maxBytes: DEFAULT_MAX_EVENT_BYTES,
    messageRetentionSeconds: undefined,
    compatibility: DEFAULT_COMPATIBILITY,
    compatibilityFrom: "default",
  };
}

/** RuleField numbers in FieldRules, for locations. */
const RuleField = {
  required: 1,
  min_len: 2,
  max_len: 3,
  pattern: 4,
  min: 5,
  max: 6,
  min_items: 7,
  max_items: 8,
} as const;

function checkRules(
  field: DescField,
  r: FieldRules,
  findings: Finding[],
  pathPrefix: string,
): void {
  const where = `field ${field.parent.typeName}.${field.name}`;
  const ruleAt = (name: keyof typeof RuleField) =>
    locate(field, optionPath(field, "rules", RuleField[name]), pathPrefix);
  const mismatch = (name: keyof typeof RuleField, applies: string) =>
    findings.push({
      rule: "rule-type-mismatch",
      message: `${where} is ${aKind(field)}; rule ${name} applies to ${applies}`,
      fix: `remove ${name} from its rules, or use a rule for its type`,
      location: ruleAt(name),
    });
  const scalar = scalarOf(field);
  const isText = scalar === ScalarType.STRING || scalar === ScalarType.BYTES;
  const isNumber = scalar !== undefined && numberScalars.has(scalar);
  const isCollection = field.fieldKind === "list" || field.fieldKind === "map";

  if (r.required) {
    if (field.oneof !== undefined) {
      findings.push({
        rule: "rule-required-unsupported",
        message: `${where} is a member of oneof ${field.oneof.name}; one member cannot be required on its own`,
        fix: "check the oneof's case in the handler, or move the field out of the oneof",
        location: ruleAt("required"),
      });
    } else if (
      field.fieldKind === "scalar" &&
      field.scalar === ScalarType.BOOL &&
      field.presence !== FeatureSet_FieldPresence.EXPLICIT
    ) {
      findings.push({
        rule: "rule-required-unsupported",
        message: `${where} is a bool without presence; false cannot be told from unset`,
        fix: "drop required, declare the field optional, or use an enum with an UNSPECIFIED zero value",
        location: ruleAt("required"),
      });
    }
  }
  if ((r.minLen !== undefined || r.maxLen !== undefined) && !isText) {
    mismatch(r.minLen !== undefined ? "min_len" : "max_len", "string and bytes fields");
  }
  if (r.pattern !== "") {
    if (scalar !== ScalarType.STRING) {
      mismatch("pattern", "string fields");
    } else {
      let valid = true;
      try {
        new RegExp(r.pattern, "u");
      } catch (error) {
        valid = false;
        findings.push({
          rule: "rule-pattern-invalid",
          message: `${where} has pattern ${JSON.stringify(r.pattern)}, which is not a valid regular expression: ${(error as Error).message}`,
          fix: "write an ECMAScript regular expression (it is compiled with the u flag); remember to escape backslashes in the .proto string",
          location: ruleAt("pattern"),
        });
      }
      const plan = valid ? planPattern(r.pattern) : undefined;
      if (plan?.engine === "refused") {
        findings.push({
          rule: "rule-pattern-unsafe",
          message: `${where} has pattern ${JSON.stringify(r.pattern)}, which ${plan.reason}: one crafted value could stall every consumer`,
          fix: plan.fix,
          location: ruleAt("pattern"),
        });
      }
    }
  }
  if ((r.min !== undefined || r.max !== undefined) && !isNumber) {
    mismatch(r.min !== undefined ? "min" : "max", "number fields");
  }
  if ((r.minItems !== undefined || r.maxItems !== undefined) && !isCollection) {
    mismatch(r.minItems !== undefined ? "min_items" : "max_items", "repeated and map fields");
  }
  for (const [low, high, lowName, highName] of [
    [r.minLen, r.maxLen, "min_len", "max_len"],
    [r.min, r.max, "min", "max"],
    [r.minItems, r.maxItems, "min_items", "max_items"],
  ] as const) {
    if (low !== undefined && high !== undefined && low > high) {
      findings.push({
        rule: "rule-range-invalid",
        message: `${where} has ${lowName} ${low} above ${highName} ${high}: no value can pass`,
        fix: `make ${lowName} at most ${highName}`,
        location: ruleAt(lowName),
      });
    }
  }
}
