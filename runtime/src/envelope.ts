import {
  type DescMessage,
  fromBinary,
  fromJsonString,
  type JsonObject,
  type JsonValue,
  type MessageShape,
  toBinary,
  toJson,
  toJsonString,
} from "@bufbuild/protobuf";
import type { EventContract } from "./contract.js";
import { Code, type FieldViolation, ProtoeventsError } from "./errors.js";
import { uuidv7 } from "./uuidv7.js";

/**
 * Pub/Sub attribute names of the CloudEvents Pub/Sub binding (binary content
 * mode): the event's metadata travels in attributes, the payload in `data`.
 */
export const CloudEventAttribute = {
  specversion: "ce-specversion",
  id: "ce-id",
  type: "ce-type",
  source: "ce-source",
  time: "ce-time",
  subject: "ce-subject",
  dataschema: "ce-dataschema",
  contentType: "content-type",
  traceparent: "traceparent",
} as const;

/** The CloudEvents spec version we write. */
export const CLOUDEVENTS_SPEC_VERSION = "1.0";

/** `content-type` of each payload encoding. */
export const ContentType = {
  binary: "application/protobuf",
  json: "application/json",
} as const;

/** The CloudEvents envelope of one event, as read from a message's attributes. */
export interface Envelope {
  /** `ce-id`: the event id (UUIDv7 when protoevents produced it). Duplicates share it. */
  readonly id: string;
  /** `ce-type`, e.g. `checkout.v1.OrderPlaced`. */
  readonly type: string;
  /** `ce-source`: the producing application. */
  readonly source: string;
  /** `ce-time`: when the event happened, RFC 3339. */
  readonly time: string;
  /** `ce-subject`, usually the aggregate id. */
  readonly subject: string | undefined;
  /** `ce-dataschema`: the event and contract revision that produced it. */
  readonly dataschema: string | undefined;
  /** `content-type` of `data`. */
  readonly contentType: string;
  /** `ce-specversion`. */
  readonly specversion: string;
  /** W3C `traceparent`, when the producer had a trace. */
  readonly traceparent: string | undefined;
  /** The Pub/Sub ordering key, when the event has one. */
  readonly orderingKey: string | undefined;
}

/** A Pub/Sub message ready to publish. `data` is a Buffer: the client walks a plain Uint8Array byte by byte. */
export interface OutgoingMessage {
  readonly data: Buffer;
  readonly attributes: Record<string, string>;
  readonly orderingKey?: string;
}

/** The parts of a received Pub/Sub message the decoder reads. */
export interface IncomingMessage {
  readonly data: Uint8Array;
  readonly attributes: Readonly<Record<string, string>>;
  readonly orderingKey?: string | undefined;
}

/** Envelope values chosen by the producer. */
export interface EncodeOptions {
  /** `ce-source`: the producing application. */
  readonly source: string;
  /** `ce-id`. @default a new UUIDv7. Pass the original id to republish an event. */
  readonly id?: string | undefined;
  /** `ce-time`. @default now */
  readonly time?: Date | string | undefined;
  /** W3C trace context to propagate. */
  readonly traceparent?: string | undefined;
  /**
   * Extra attributes, e.g. for subscription filters. Names that belong to
   * the envelope, to protoevents or to Pub/Sub (see
   * {@link isReservedAttribute}) are refused.
   */
  readonly attributes?: Readonly<Record<string, string>> | undefined;
}

/**
 * Whether an attribute name is not the producer's to set: the CloudEvents
 * envelope (`ce-*`, `content-type`), trace context (`traceparent`,
 * `tracestate`), protoevents' own bookkeeping (`protoevents-*`, which decides
 * how dead letters are replayed) and what Pub/Sub reserves (`goog*`).
 */
export function isReservedAttribute(name: string): boolean {
  const lower = name.toLowerCase();
  return (
    lower.startsWith("ce-") ||
    lower.startsWith("protoevents-") ||
    lower.startsWith("goog") ||
    lower === "content-type" ||
    lower === "traceparent" ||
    lower === "tracestate"
  );
}

function checkExtraAttributes(attributes: Readonly<Record<string, string>>): void {
  const reserved = Object.keys(attributes).filter(isReservedAttribute);
  if (reserved.length > 0) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `attribute${reserved.length === 1 ? "" : "s"} ${reserved.map((n) => JSON.stringify(n)).join(", ")} cannot be set by a producer: ce-*, content-type, traceparent, tracestate, protoevents-* and goog* belong to the envelope, to protoevents and to Pub/Sub; choose another name`,
    );
  }
}

/** A decoded event with its envelope. */
export interface DecodedEvent<Desc extends DescMessage = DescMessage> {
  readonly event: MessageShape<Desc>;
  readonly envelope: Envelope;
}

let lastTimeMs = -1;
let lastTimeIso = "";

/** The current time in RFC 3339, computed once per millisecond. */
function nowIso(): string {
  const ms = Date.now();
  if (ms !== lastTimeMs) {
    lastTimeMs = ms;
    lastTimeIso = new Date(ms).toISOString();
  }
  return lastTimeIso;
}

/** Wrap bytes as a Buffer without copying. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Encode an event as a Pub/Sub message in CloudEvents binary content mode.
 * Does not validate; the publisher does that first.
 */
export function encodeEvent<Desc extends DescMessage>(
  contract: EventContract<Desc>,
  event: MessageShape<Desc>,
  options: EncodeOptions,
): OutgoingMessage {
  const data =
    contract.encoding === "json"
      ? Buffer.from(toJsonString(contract.schema, event), "utf8")
      : asBuffer(toBinary(contract.schema, event));
  if (data.length > contract.maxBytes) {
    throw new ProtoeventsError(
      Code.TooLarge,
      `${contract.type} is ${data.length} bytes encoded, over the ${contract.maxBytes} its contract allows (max_bytes); nothing was published`,
      { details: { size: data.length, limit: contract.maxBytes } },
    );
  }
  const time = options.time;
  const envelope: Record<string, string> = {
    "ce-specversion": CLOUDEVENTS_SPEC_VERSION,
    "ce-id": options.id ?? uuidv7(),
    "ce-type": contract.type,
    "ce-source": options.source,
    "ce-time": time === undefined ? nowIso() : typeof time === "string" ? time : time.toISOString(),
    "ce-dataschema": contract.dataschema,
    "content-type": ContentType[contract.encoding],
  };
  if (options.attributes !== undefined) {
    checkExtraAttributes(options.attributes);
  }
  const attributes =
    options.attributes === undefined ? envelope : { ...options.attributes, ...envelope };
  if (contract.subject !== undefined) {
    const subject = contract.subject(event);
    if (subject !== "") {
      attributes["ce-subject"] = subject;
    }
  }
  if (options.traceparent !== undefined) {
    attributes.traceparent = options.traceparent;
  }
  if (contract.orderingKey !== undefined) {
    const orderingKey = contract.orderingKey(event);
    if (orderingKey !== "") {
      return { data, attributes, orderingKey };
    }
  }
  return { data, attributes };
}

/** The envelope of a message, or a `decode_failed` error naming the missing attribute. */
export function readEnvelope(message: IncomingMessage): Envelope {
  const a = message.attributes;
  for (const name of ["ce-id", "ce-type", "ce-source"] as const) {
    if (a[name] === undefined || a[name] === "") {
      throw new ProtoeventsError(
        Code.DecodeFailed,
        `message has no ${name} attribute: it is not a CloudEvent in binary content mode. Publish it with a generated producer, or set ce-specversion, ce-id, ce-type, ce-source and content-type.`,
      );
    }
  }
  return {
    id: a["ce-id"] as string,
    type: a["ce-type"] as string,
    source: a["ce-source"] as string,
    time: a["ce-time"] ?? "",
    subject: a["ce-subject"],
    dataschema: a["ce-dataschema"],
    contentType: a["content-type"] ?? ContentType.binary,
    specversion: a["ce-specversion"] ?? CLOUDEVENTS_SPEC_VERSION,
    traceparent: a.traceparent,
    orderingKey:
      message.orderingKey === undefined || message.orderingKey === ""
        ? undefined
        : message.orderingKey,
  };
}

/**
 * Decode a Pub/Sub message as the contract's event.
 *
 * @throws ProtoeventsError `unknown_event_type` when `ce-type` is not the
 *   contract's type, `decode_failed` when the attributes are not a CloudEvent
 *   or the payload is not a valid encoding of the message. Both are permanent.
 */
export function decodeEvent<Desc extends DescMessage>(
  contract: EventContract<Desc>,
  message: IncomingMessage,
): DecodedEvent<Desc> {
  const envelope = readEnvelope(message);
  if (envelope.type !== contract.type) {
    throw new ProtoeventsError(
      Code.UnknownEventType,
      `ce-type "${envelope.type}" is not "${contract.type}", the only event this consumer reads from topic ${contract.topic}`,
    );
  }
  if (message.data.length > contract.maxBytes) {
    // Refused before any decoding: a payload's size bounds the work and memory it costs.
    throw new ProtoeventsError(
      Code.TooLarge,
      `payload of ${contract.type} event ${envelope.id} is ${message.data.length} bytes, over the ${contract.maxBytes} its contract allows (max_bytes)`,
      { details: { size: message.data.length, limit: contract.maxBytes } },
    );
  }
  const mediaType = envelope.contentType.split(";", 1)[0]?.trim().toLowerCase();
  try {
    switch (mediaType) {
      case ContentType.binary:
      case "application/x-protobuf":
        return { event: fromBinary(contract.schema, message.data), envelope };
      case ContentType.json:
        return {
          event: fromJsonString(contract.schema, asBuffer(message.data).toString("utf8")),
          envelope,
        };
      default:
        throw new ProtoeventsError(
          Code.DecodeFailed,
          `content-type "${envelope.contentType}" is neither ${ContentType.binary} nor ${ContentType.json}`,
        );
    }
  } catch (cause) {
    if (cause instanceof ProtoeventsError) {
      throw cause;
    }
    // Not the cause: its message (kept by loggers and error reporters) may quote the payload.
    throw new ProtoeventsError(
      Code.DecodeFailed,
      `payload of ${contract.type} event ${envelope.id} cannot be decoded as ${mediaType}: ${withoutPersonalData(contract, (cause as Error).message)}`,
    );
  }
}

/** `cannot decode field <message>.<field> from JSON: …`, as protobuf-es words a field it cannot read. */
const JSON_FIELD_ERROR = /^cannot decode field ([\w.]+)\.(\w+) from JSON: /;

/**
 * A decoding error's message without values that may be personal data.
 * protobuf-es quotes the offending value (`expected string, got 12345`) and
 * V8 quotes the start of text that is not JSON at all; the field's name and
 * the kind of mistake stay, the value of a `pii` field and any quoted text go.
 */
function withoutPersonalData(contract: EventContract, message: string): string {
  const text = message.replace(/, ".*" is not valid JSON$/s, ": the payload is not JSON");
  const field = JSON_FIELD_ERROR.exec(text);
  if (field !== null && contract.piiFields.has(`${field[1]}.${field[2]}`)) {
    return `${field[0]}its value does not fit the field's type (${REDACTED}: the field is pii)`;
  }
  return text;
}

/**
 * Decode a Pub/Sub message as the contract's event and check its field rules.
 *
 * @throws ProtoeventsError `unknown_event_type`, `decode_failed` (see
 *   {@link decodeEvent}) or `validation_failed` with the violations in
 *   `details.violations`. All are permanent.
 */
export function decodeValidEvent<Desc extends DescMessage>(
  contract: EventContract<Desc>,
  message: IncomingMessage,
): DecodedEvent<Desc> {
  const decoded = decodeEvent(contract, message);
  const violations = contract.validate(decoded.event);
  if (violations.length > 0) {
    throw new ProtoeventsError(
      Code.ValidationFailed,
      `${contract.type} event ${decoded.envelope.id} breaks its field rules: ${formatViolations(violations)}`,
      { details: { violations } },
    );
  }
  return decoded;
}

/** `path: message; path: message` for an error message. */
export function formatViolations(violations: readonly FieldViolation[]): string {
  return violations.map((v) => `${v.path} ${v.message} (${v.rule})`).join("; ");
}

/** The value that replaces a `pii` field in logs and dead-letter views. */
export const REDACTED = "[redacted]";

/**
 * The proto3 JSON of a message with every `pii` field replaced by
 * {@link REDACTED}, also inside nested messages, lists and maps.
 */
export function redactedJson(
  schema: DescMessage,
  message: MessageShape<DescMessage>,
  piiFields: ReadonlySet<string>,
): JsonValue {
  const json = toJson(schema, message);
  if (piiFields.size > 0) {
    redactInPlace(schema, json, piiFields);
  }
  return json;
}

function isJsonObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function redactInPlace(schema: DescMessage, json: JsonValue, pii: ReadonlySet<string>): void {
  if (!isJsonObject(json)) {
    return; // a well-known type with a scalar JSON form, e.g. Timestamp
  }
  for (const field of schema.fields) {
    const value = json[field.jsonName];
    if (value === undefined) {
      continue;
    }
    if (pii.has(`${schema.typeName}.${field.name}`)) {
      json[field.jsonName] = REDACTED;
      continue;
    }
    if (field.fieldKind === "message") {
      redactInPlace(field.message, value, pii);
    } else if (field.fieldKind === "list" && field.listKind === "message" && Array.isArray(value)) {
      for (const item of value) {
        redactInPlace(field.message, item, pii);
      }
    } else if (field.fieldKind === "map" && field.mapKind === "message" && isJsonObject(value)) {
      for (const item of Object.values(value)) {
        redactInPlace(field.message, item, pii);
      }
    }
  }
}

/** The human view of an event: the seed's JSON shape, for logs, docs and dead-letter tools. */
export interface EventJsonView {
  readonly eventId: string;
  readonly eventType: string;
  readonly timestamp: string;
  readonly source: string;
  readonly subject?: string;
  readonly payload: JsonValue;
}

/** The seed-style JSON view of an event, `pii` fields redacted. */
export function toJsonView<Desc extends DescMessage>(
  contract: EventContract<Desc>,
  decoded: DecodedEvent<Desc>,
): EventJsonView {
  const { envelope } = decoded;
  const payload = redactedJson(contract.schema, decoded.event, contract.piiFields);
  return envelope.subject === undefined
    ? {
        eventId: envelope.id,
        eventType: envelope.type,
        timestamp: envelope.time,
        source: envelope.source,
        payload,
      }
    : {
        eventId: envelope.id,
        eventType: envelope.type,
        timestamp: envelope.time,
        source: envelope.source,
        subject: envelope.subject,
        payload,
      };
}
