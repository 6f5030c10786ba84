/**
 * The contract model: events, applications, subscriptions and field rules as
 * the custom options declare them, with every value a contract derives
 * (ce-type, subscription ids, filters, dead-letter topics) computed once.
 * `readContracts` (read-contracts.ts) builds it; codegen, the compatibility
 * gate, releases, the catalog and sync read it and never read options.
 */
import type { DescField, DescFile, DescMessage, DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ProtoeventsError } from "@protoevents/runtime/errors";
import type { DeadLetterIds } from "./derive.js";
import { formatLocation, type SourceLocation } from "./location.js";
import type { CompatibilityMode, FieldRules } from "./options.js";
import { readContracts } from "./read-contracts.js";

/** One reason a contract cannot work. Every finding is an error: codegen refuses a contract with any. */
export interface Finding {
  /** Rule id, e.g. `ordering-key-missing`. */
  readonly rule: string;
  /** What is wrong. */
  readonly message: string;
  /** How to fix it. */
  readonly fix: string;
  readonly location: SourceLocation;
}

/** `file:line:column: rule: message` and the fix on the next line. */
export function formatFinding(finding: Finding): string {
  return `${formatLocation(finding.location)}: ${finding.rule}: ${finding.message}\n    fix: ${finding.fix}`;
}

export interface EventModel {
  readonly desc: DescMessage;
  /** `ce-type`: the `type` option, else the message's full name. */
  readonly type: string;
  readonly topic: string;
  /** The ordering-key field; undefined when none is declared or the declared name is no usable field (a finding). */
  readonly orderingKeyField: DescField | undefined;
  /** The subject field; undefined when none is declared or the declared name is no usable field (a finding). */
  readonly subjectField: DescField | undefined;
  /** The ordering key's field name as the option declares it; empty for none. */
  readonly orderingKey: string;
  /** The subject's field name as the option declares it; empty for none. */
  readonly subject: string;
  readonly encoding: "binary" | "json";
  /** The `content-type` its messages carry. */
  readonly contentType: string;
  /** `ce-dataschema`: the event's name and a hash of its schema closure. */
  readonly dataschema: string;
  /** The largest payload producers may publish and consumers read, in bytes. */
  readonly maxBytes: number;
  /** How long the topic keeps messages, in seconds; undefined: not managed. */
  readonly messageRetentionSeconds: number | undefined;
  /** Who may deploy first when the event changes. */
  readonly compatibility: CompatibilityMode;
  /** Where the mode comes from: the event's option, its package's defaults, or protoevents' default. */
  readonly compatibilityFrom: "event" | "package" | "default";
}

export interface SubscriptionModel {
  readonly method: DescMethod;
  readonly application: string;
  /** The Pub/Sub subscription id. */
  readonly name: string;
  /** Whether the id is derived from the rpc's name (the contract gives no `name`). */
  readonly derivedName: boolean;
  readonly event: EventModel;
  readonly maxDeliveryAttempts: number;
  readonly ackDeadlineSeconds: number;
  readonly minBackoffSeconds: number;
  readonly maxBackoffSeconds: number;
  /** Days of inactivity before Pub/Sub deletes the subscription; undefined: never. */
  readonly expirationTtlDays: number | undefined;
  readonly messageRetentionSeconds: number;
  readonly retainAckedMessages: boolean;
  readonly exactlyOnceDelivery: boolean;
  readonly ordered: boolean;
  /** The filter to create the subscription with: the contract's, plus `ce-type` on a shared topic. */
  readonly filter: string;
  /** The contract's own filter, without the `ce-type` clause a shared topic adds. */
  readonly contractFilter: string;
  readonly deadLetter: boolean;
  /** Its dead-letter topic and the subscription keeping its dead letters; undefined when dead-lettering is off. */
  readonly deadLetterIds: DeadLetterIds | undefined;
  /** Other event types published on the same topic. */
  readonly siblingTypes: readonly string[];
  /** The rpc's method in the generated handlers interface, e.g. `chargeOrder`. */
  readonly handlerMethod: string;
}

export interface ApplicationModel {
  readonly service: DescService;
  readonly name: string;
  readonly publishes: readonly EventModel[];
  /** Full names as `publishes` lists them, unknown and repeated ones included (each a finding). */
  readonly publishesDeclared: readonly string[];
  readonly subscriptions: readonly SubscriptionModel[];
  /** Subscription ids it retired on purpose (`retired_subscriptions`). */
  readonly retired: readonly string[];
  /** The generated handlers interface of its service, e.g. `PaymentServiceHandlers`. */
  readonly handlersInterface: string;
}

export interface ContractModel {
  /** Events by message type name, over every file read. */
  readonly events: ReadonlyMap<string, EventModel>;
  /** Applications declared in the files checked (the plugin's files to generate). */
  readonly applications: readonly ApplicationModel[];
  /** Field rules of every field that has some, in the files checked. */
  readonly rules: ReadonlyMap<DescField, FieldRules>;
}

export { DEAD_LETTER_SUFFIX, kebab } from "./derive.js";
export { SubscriptionDefaults } from "./read-contracts.js";

/**
 * Build the contract model of a request and check it: {@link readContracts},
 * refusing a contract with findings. Throws one ProtoeventsError
 * `invalid_contract` listing every finding, each with `file:line:column`,
 * the rule and the fix.
 *
 * @param files the files to generate; only they are checked.
 * @param allFiles every file of the request, to resolve events by name.
 * @param pathPrefix prepended to file names in locations, e.g. `proto/`.
 */
export function buildModel(
  files: readonly DescFile[],
  allFiles: readonly DescFile[],
  pathPrefix = "",
): ContractModel {
  const { model, findings } = readContracts(allFiles, { checked: files, pathPrefix });
  if (findings.length > 0) {
    throw new ProtoeventsError(
      Code.InvalidContract,
      `${findings.length} contract error${findings.length === 1 ? "" : "s"}:\n${findings.map(formatFinding).join("\n")}`,
      { details: { findings } },
    );
  }
  return model;
}
