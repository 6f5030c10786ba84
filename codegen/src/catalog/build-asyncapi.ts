/**
 * The AsyncAPI 3.0 document of the contracts: channels are the Pub/Sub
 * topics (event topics and dead-letter topics, with `googlepubsub`
 * bindings), messages are the events (CloudEvents attributes as headers,
 * the payload's JSON Schema from the proto descriptors), operations are what
 * each application sends and receives (one receive operation per
 * subscription, its Pub/Sub settings in `x-protoevents-subscription`).
 */
import type { Catalog, CatalogEvent, CatalogSubscription } from "./load-catalog.js";
import { catalogSchemas, type JsonSchema } from "./to-json-schema.js";

/** An AsyncAPI document as plain JSON. */
export type AsyncApiDocument = { [key: string]: unknown };

/** Options of {@link buildAsyncApi}. */
export interface AsyncApiOptions {
  /** `info.title`. @default "protoevents contracts" */
  readonly title?: string;
  /** `info.version`: the version of the contracts. */
  readonly version: string;
}

/** The binding version of the `googlepubsub` bindings written. */
const GOOGLEPUBSUB_BINDING_VERSION = "0.2.0";

/** JSON Pointer escaping of one reference token (RFC 6901). */
function pointer(token: string): string {
  return token.replace(/~/g, "~0").replace(/\//g, "~1");
}

function firstSentence(text: string): string | undefined {
  const line =
    text
      .split(/\n\s*\n/)[0]
      ?.replace(/\s+/g, " ")
      .trim() ?? "";
  if (line === "") {
    return undefined;
  }
  const end = line.search(/\.(\s|$)/);
  return end === -1 ? line : line.slice(0, end + 1);
}

/** The CloudEvents binary-mode attributes of an event, as the message's headers. */
function headersOf(event: CatalogEvent): JsonSchema {
  const properties: Record<string, JsonSchema> = {
    "ce-specversion": { type: "string", const: "1.0", description: "CloudEvents spec version." },
    "ce-id": {
      type: "string",
      description:
        "The event id (UUIDv7). Redeliveries and replays keep it; consumers' inboxes deduplicate by it.",
    },
    "ce-type": {
      type: "string",
      const: event.type,
      description:
        event.type === event.typeName
          ? "The full proto name."
          : "The CloudEvents type the contract's type option sets.",
    },
    "ce-source": {
      type: "string",
      description: "The producing application.",
      ...(event.owners.length > 0 ? { enum: [...event.owners] } : {}),
    },
    "ce-time": { type: "string", format: "date-time", description: "When the event happened." },
    "ce-dataschema": {
      type: "string",
      const: event.dataschema,
      description: "The event and the contract revision that produced it.",
    },
    "content-type": { type: "string", const: event.contentType },
    traceparent: {
      type: "string",
      pattern: "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}",
      description: "W3C trace context of the producer's span, when it had one.",
    },
  };
  const required = ["ce-specversion", "ce-id", "ce-type", "ce-source", "ce-time", "content-type"];
  if (event.subject !== undefined) {
    properties["ce-subject"] = {
      type: "string",
      description: `The value of field \`${event.subject}\` (the aggregate id).`,
    };
  }
  return { type: "object", properties, required };
}

function messageOf(event: CatalogEvent): AsyncApiDocument {
  const summary = firstSentence(event.comment);
  return {
    name: event.name,
    title: event.typeName,
    ...(summary === undefined ? {} : { summary }),
    ...(event.comment === "" ? {} : { description: event.comment }),
    contentType: event.contentType,
    headers: headersOf(event),
    payload: { $ref: `#/components/schemas/${pointer(event.typeName)}` },
    bindings: {
      googlepubsub: {
        bindingVersion: GOOGLEPUBSUB_BINDING_VERSION,
        attributes: {
          "ce-type": event.typeName,
          "ce-specversion": "1.0",
          "content-type": event.contentType,
        },
        ...(event.orderingKey === undefined
          ? {}
          : { "x-protoevents-ordering-key-field": event.orderingKey }),
      },
    },
    tags: event.owners.map((name) => ({ name, description: "publishing application" })),
    "x-protoevents-owners": [...event.owners],
    "x-protoevents-source": event.file,
    "x-protoevents-pii-fields": event.fields.filter((f) => f.pii).map((f) => f.name),
  };
}

/**
 * The `googlepubsub` channel binding. Binding 0.2.0 requires `schemaSettings`;
 * protoevents attaches no Pub/Sub schema resource to topics (the emulator
 * does not support them; generated code validates instead), so it names the
 * proto message the topic's messages are encoded with and the encoding.
 */
function channelBinding(event: CatalogEvent | undefined): AsyncApiDocument {
  return {
    googlepubsub: {
      bindingVersion: GOOGLEPUBSUB_BINDING_VERSION,
      schemaSettings: {
        encoding: event?.encoding === "json" ? "json" : "binary",
        name: event?.typeName ?? "",
      },
      "x-protoevents-schema-resource":
        "none: the payload is validated by generated code against the proto message named in schemaSettings.name",
    },
  };
}

function subscriptionExtension(sub: CatalogSubscription): AsyncApiDocument {
  return {
    name: sub.name,
    service: sub.service,
    rpc: sub.rpc,
    maxDeliveryAttempts: sub.maxDeliveryAttempts,
    ackDeadlineSeconds: sub.ackDeadlineSeconds,
    minBackoffSeconds: sub.minBackoffSeconds,
    maxBackoffSeconds: sub.maxBackoffSeconds,
    ordered: sub.ordered,
    filter: sub.filter,
    ...(sub.deadLetter === undefined
      ? {}
      : {
          deadLetterTopic: sub.deadLetter.topic,
          deadLetterSubscription: sub.deadLetter.subscription,
        }),
  };
}

/** Build the AsyncAPI 3.0 document of a catalog. */
export function buildAsyncApi(catalog: Catalog, options: AsyncApiOptions): AsyncApiDocument {
  const eventsByType = new Map(catalog.events.map((e) => [e.typeName, e]));
  const messageRef = (type: string) => ({ $ref: `#/components/messages/${pointer(type)}` });

  const channels: Record<string, AsyncApiDocument> = {};
  for (const topic of catalog.topics) {
    const messages: Record<string, unknown> = {};
    for (const type of topic.eventTypes) {
      messages[eventsByType.get(type)?.name ?? type] = messageRef(type);
    }
    const first = eventsByType.get(topic.eventTypes[0] ?? "");
    channels[topic.name] = {
      address: topic.name,
      title: topic.name,
      ...(topic.kind === "event"
        ? {
            summary: `Event topic of ${topic.eventTypes.join(", ")}.`,
            description: `Pub/Sub topic \`${topic.name}\`. Subscriptions: ${topic.subscriptions.length === 0 ? "none" : topic.subscriptions.map((s) => `\`${s}\``).join(", ")}.`,
          }
        : {
            summary: `Dead letters of subscription ${topic.deadLetterOf}.`,
            description: `Pub/Sub topic \`${topic.name}\`: messages subscription \`${topic.deadLetterOf}\` could not process, with the reason in attributes (\`protoevents-dead-letter-*\` or Pub/Sub's \`CloudPubSubDeadLetterSource*\`). Kept 7 days by subscription \`${topic.subscriptions[0]}\`; inspect and replay them with \`protoevents dlq\`. They may also be undecodable bytes.`,
          }),
      messages,
      bindings: channelBinding(first),
      tags: [{ name: topic.kind === "event" ? "event-topic" : "dead-letter-topic" }],
    };
  }

  const operations: Record<string, AsyncApiDocument> = {};
  for (const app of catalog.applications) {
    for (const type of app.publishes) {
      const event = eventsByType.get(type);
      if (event === undefined) {
        continue;
      }
      operations[`${app.name}.publish.${event.name}`] = {
        action: "send",
        channel: { $ref: `#/channels/${pointer(event.topic)}` },
        messages: [{ $ref: `#/channels/${pointer(event.topic)}/messages/${pointer(event.name)}` }],
        title: `${app.name} publishes ${event.name}`,
        summary: `Application ${app.name} publishes ${type} on ${event.topic}.`,
        tags: [{ name: app.name }],
      };
    }
    for (const sub of app.subscriptions) {
      const event = eventsByType.get(sub.eventType);
      if (event === undefined) {
        continue;
      }
      const summary = firstSentence(sub.comment);
      operations[sub.name] = {
        action: "receive",
        channel: { $ref: `#/channels/${pointer(sub.topic)}` },
        messages: [{ $ref: `#/channels/${pointer(sub.topic)}/messages/${pointer(event.name)}` }],
        title: `${app.name} consumes ${event.name} (${sub.name})`,
        ...(summary === undefined ? {} : { summary }),
        description:
          `${sub.comment === "" ? "" : `${sub.comment}\n\n`}Subscription \`${sub.name}\` (rpc ${sub.service}.${sub.rpc}): ` +
          `${sub.maxDeliveryAttempts} delivery attempts, ack deadline ${sub.ackDeadlineSeconds} s, ` +
          `backoff ${sub.minBackoffSeconds}–${sub.maxBackoffSeconds} s${sub.ordered ? ", ordered" : ""}` +
          `${sub.filter === "" ? "" : `, filter \`${sub.filter}\``}` +
          `${sub.deadLetter === undefined ? ", no dead-letter topic" : `, dead letters to \`${sub.deadLetter.topic}\``}.`,
        tags: [{ name: app.name }],
        "x-protoevents-subscription": subscriptionExtension(sub),
      };
    }
  }

  const messages: Record<string, AsyncApiDocument> = {};
  for (const event of catalog.events) {
    messages[event.typeName] = messageOf(event);
  }

  return {
    asyncapi: "3.0.0",
    info: {
      title: options.title ?? "protoevents contracts",
      version: options.version,
      description:
        "Events, topics and subscriptions of the contracts in `proto/`, generated by `protoevents catalog`. " +
        "Messages are CloudEvents in binary content mode: the attributes are the headers, the payload is the " +
        "protobuf message (binary unless the contract asks for JSON); payload schemas describe its proto3 JSON form.",
      tags: catalog.applications.map((a) => ({
        name: a.name,
        description: a.services.map((s) => s.typeName).join(", "),
      })),
    },
    defaultContentType: "application/protobuf",
    servers: {
      pubsub: {
        host: "pubsub.googleapis.com",
        protocol: "googlepubsub",
        description:
          "Google Cloud Pub/Sub. Locally the Pub/Sub emulator (PUBSUB_EMULATOR_HOST) serves the same API.",
      },
    },
    channels,
    operations,
    components: {
      messages,
      schemas: catalogSchemas(catalog),
    },
  };
}
