/**
 * Golden payloads against today's contracts: decode a release's golden
 * payload with today's schema and check that every field that still exists
 * (same field number) still holds the sample's value. A new field keeps them
 * green; a field number reused with another type, or a field whose name
 * changed in JSON, turns them red whatever buf's rules say.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  type DescField,
  type DescMessage,
  fromBinary,
  fromJsonString,
  type Message,
  type Registry,
} from "@bufbuild/protobuf";
import type { ReleasedEvent, ReleaseRef } from "./releases.js";

/** One field whose value differs between the release's sample and today's decoding of it. */
export interface GoldenMismatch {
  /** Field path in proto names, e.g. `items[1].unit_price.amount_minor`. */
  readonly path: string;
  /** Today's field, for its location. */
  readonly field: DescField;
  /** What the release wrote and what today's code read. */
  readonly detail: string;
}

/** A golden payload of a release: both encodings' bytes. */
export interface GoldenPayloads {
  readonly binary: Uint8Array;
  readonly json: string;
}

/** Read an event's golden payloads from its release directory. */
export async function readGolden(
  release: ReleaseRef,
  event: ReleasedEvent,
): Promise<GoldenPayloads> {
  const [binary, json] = await Promise.all([
    readFile(join(release.dir, event.golden.binary)),
    readFile(join(release.dir, event.golden.json), "utf8"),
  ]);
  return { binary: new Uint8Array(binary), json };
}

/**
 * Decode a golden payload with a schema. `strict` decodes JSON like the
 * runtime does (an unknown field is an error); otherwise unknown JSON fields
 * are ignored, as for the encoding the release's producers did not use.
 */
export function decodeGolden(
  desc: DescMessage,
  payloads: GoldenPayloads,
  encoding: "binary" | "json",
  options: { readonly strict: boolean; readonly registry?: Registry },
): Message {
  if (encoding === "binary") {
    return fromBinary(desc, payloads.binary);
  }
  return fromJsonString(desc, payloads.json, {
    ignoreUnknownFields: !options.strict,
    ...(options.registry === undefined ? {} : { registry: options.registry }),
  });
}

type Plain = Record<string, unknown>;

function fieldValue(message: Plain, field: DescField): unknown {
  if (field.oneof !== undefined) {
    const group = message[field.oneof.localName] as { case?: string; value?: unknown } | undefined;
    return group?.case === field.localName ? group.value : undefined;
  }
  return message[field.localName];
}

function show(value: unknown): string {
  if (value === undefined) {
    return "unset";
  }
  if (typeof value === "bigint") {
    return value.toString();
  }
  if (value instanceof Uint8Array) {
    return `bytes(${Buffer.from(value).toString("hex")})`;
  }
  if (typeof value === "object" && value !== null) {
    return "a message";
  }
  return JSON.stringify(value);
}

/** Scalars and enums: 64-bit integers may be bigint or string, both mean the same number. */
function sameScalar(a: unknown, b: unknown): boolean {
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return (
      a instanceof Uint8Array && b instanceof Uint8Array && Buffer.from(a).equals(Buffer.from(b))
    );
  }
  if (typeof a === typeof b) {
    return a === b;
  }
  const numeric = (v: unknown) =>
    typeof v === "bigint" || typeof v === "number" || typeof v === "string";
  return numeric(a) && numeric(b) && String(a) === String(b);
}

function compareValue(
  before: DescField,
  after: DescField,
  a: unknown,
  b: unknown,
  path: string,
  out: GoldenMismatch[],
): void {
  const kind = (f: DescField) =>
    f.message !== undefined
      ? `message ${f.message.typeName}`
      : f.enum !== undefined
        ? "enum"
        : "scalar";
  if (
    (before.message === undefined) !== (after.message === undefined) ||
    (before.enum === undefined) !== (after.enum === undefined)
  ) {
    out.push({ path, field: after, detail: `was ${kind(before)}, is ${kind(after)}` });
    return;
  }
  if (before.message !== undefined && after.message !== undefined) {
    if ((a === undefined) !== (b === undefined)) {
      out.push({ path, field: after, detail: `${show(a)} in the release, ${show(b)} today` });
      return;
    }
    if (a !== undefined && b !== undefined) {
      compareMessage(before.message, after.message, a as Plain, b as Plain, `${path}.`, out);
    }
    return;
  }
  if (!sameScalar(a, b)) {
    out.push({ path, field: after, detail: `${show(a)} in the release, ${show(b)} today` });
  }
}

function compareMessage(
  beforeDesc: DescMessage,
  afterDesc: DescMessage,
  before: Plain,
  after: Plain,
  prefix: string,
  out: GoldenMismatch[],
): void {
  for (const field of afterDesc.fields) {
    const old = beforeDesc.fields.find((f) => f.number === field.number);
    if (old === undefined) {
      continue;
    }
    const path = `${prefix}${field.name}`;
    const a = fieldValue(before, old);
    const b = fieldValue(after, field);
    if (
      old.fieldKind !== field.fieldKind &&
      (old.fieldKind === "map" || field.fieldKind === "map")
    ) {
      out.push({
        path,
        field,
        detail: `was a ${old.fieldKind} field, is a ${field.fieldKind} field`,
      });
      continue;
    }
    if (old.fieldKind === "list" || field.fieldKind === "list") {
      const la = (old.fieldKind === "list" ? a : a === undefined ? [] : [a]) as unknown[];
      const lb = (field.fieldKind === "list" ? b : b === undefined ? [] : [b]) as unknown[];
      if (la.length !== lb.length) {
        out.push({ path, field, detail: `${la.length} items in the release, ${lb.length} today` });
        continue;
      }
      la.forEach((item, i) => {
        compareValue(old, field, item, lb[i], `${path}[${i}]`, out);
      });
      continue;
    }
    if (old.fieldKind === "map" && field.fieldKind === "map") {
      const ma = (a ?? {}) as Plain;
      const mb = (b ?? {}) as Plain;
      const keys = new Set([...Object.keys(ma), ...Object.keys(mb)]);
      for (const key of keys) {
        compareValue(old, field, ma[key], mb[key], `${path}[${JSON.stringify(key)}]`, out);
      }
      continue;
    }
    compareValue(old, field, a, b, path, out);
  }
}

/**
 * The fields of a golden sample that today's schema reads differently: for
 * every field of today's message whose number the release's message also
 * has, the value decoded with the release's schema and with today's must be
 * equal (recursively).
 */
export function compareGolden(
  releaseDesc: DescMessage,
  released: Message,
  todayDesc: DescMessage,
  today: Message,
): GoldenMismatch[] {
  const out: GoldenMismatch[] = [];
  compareMessage(
    releaseDesc,
    todayDesc,
    released as unknown as Plain,
    today as unknown as Plain,
    "",
    out,
  );
  return out;
}
