/**
 * What the event-level compatibility rules compare: the events, their
 * topics, types, keys and field rules, and the consumers with their
 * subscriptions, read from descriptors through `options.ts`.
 *
 * Unlike `buildModel`, reading a snapshot refuses nothing: a release was
 * valid under the codegen checks of its day, and a check added later must not
 * make an old release unreadable.
 */
import type { DescEnum, DescFile, DescMessage, DescMethod, DescService } from "@bufbuild/protobuf";
import { PayloadEncoding } from "../gen/protoevents/v1/options_pb.js";
import { kebab } from "../model.js";
import { getApplicationOptions, getEventOptions, getSubscriptionOptions } from "../options.js";

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
  /** The contract's own filter (without the ce-type clause a shared topic adds). */
  readonly filter: string;
  readonly ordered: boolean;
  /** Whether the subscription id is derived from the rpc name (no `name` option). */
  readonly derivedName: boolean;
  readonly desc: DescMethod;
}

/** An application service: its name and consumer rpcs, for `sync`. */
export interface ApplicationSnapshot {
  readonly name: string;
  readonly service: string;
  /** The service's short name, e.g. `PaymentService`: generated code names `PaymentServiceHandlers` after it. */
  readonly serviceName: string;
  readonly consumers: readonly ConsumerSnapshot[];
  /** Subscription ids it retired on purpose (`retired_subscriptions`). */
  readonly retired: readonly string[];
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
  const events = new Map<string, EventSnapshot>();
  const messages = new Map<string, DescMessage>();
  for (const file of files) {
    for (const message of walkMessages(file.messages)) {
      messages.set(message.typeName, message);
      const options = getEventOptions(message);
      if (options !== undefined) {
        events.set(message.typeName, {
          name: message.typeName,
          type: options.type === "" ? message.typeName : options.type,
          topic: options.topic,
          orderingKey: options.orderingKey,
          subject: options.subject,
          encoding: options.encoding === PayloadEncoding.JSON ? "json" : "binary",
          desc: message,
        });
      }
    }
  }
  const applications: ApplicationSnapshot[] = [];
  for (const file of files) {
    for (const service of file.services) {
      const options = getApplicationOptions(service);
      if (options === undefined) {
        continue;
      }
      const consumers = service.methods.map((method): ConsumerSnapshot => {
        const sub = getSubscriptionOptions(method);
        return {
          application: options.name,
          service: service.typeName,
          rpc: method.name,
          subscription: sub.name === "" ? `${options.name}.${kebab(method.name)}` : sub.name,
          event: method.input.typeName,
          deadLetter: sub.deadLetter ?? true,
          filter: sub.filter,
          ordered: sub.ordered,
          derivedName: sub.name === "",
          desc: method,
        };
      });
      applications.push({
        name: options.name,
        service: service.typeName,
        serviceName: service.name,
        consumers,
        retired: [...options.retiredSubscriptions],
        desc: service,
      });
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
