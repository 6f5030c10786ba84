/**
 * The deterministic sample of an event that a release's golden payloads
 * encode: every field set (the first member of each oneof), values that
 * satisfy the field's rules, and the same bytes on every run.
 *
 * - strings are `<field name>-<n>`, cut or padded to `min_len`/`max_len`; a
 *   field with a `pattern` takes the first of {@link PATTERN_EXAMPLES} or a
 *   few generic candidates that matches it (and its lengths), and the build
 *   fails naming the field when none does;
 * - numbers are 7 (32-bit), 1700000000 (64-bit, also a valid Unix time) or
 *   1.5, plus the item index, clamped into `min`/`max`;
 * - enums take their first non-zero value; bools are true; bytes are 1, 2, 3…;
 * - lists have two items, maps one entry (within `min_items`/`max_items`);
 * - `google.protobuf.Timestamp` is 2023-11-14T22:13:20Z, `Duration` 60 s;
 *   `Any` and `Value` stay unset (they need a type registry to mean anything).
 */
import {
  create,
  type DescField,
  type DescMessage,
  type MessageShape,
  ScalarType,
} from "@bufbuild/protobuf";
import { Code, ProtoeventsError } from "@protoevents/runtime/errors";
import { type FieldRules, getFieldRules } from "../options.js";

/**
 * Examples for the patterns of the checkout contracts, keyed by the pattern
 * exactly as the .proto declares it. Add a line when a new pattern matches
 * none of the generic candidates; the release says which field needs it.
 */
export const PATTERN_EXAMPLES: Readonly<Record<string, readonly string[]>> = {
  "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$": ["customer@example.com"],
  "^[A-Z]{3}$": ["EUR"],
  "^[A-Z]{2}$": ["DE"],
};

/** Nesting depth after which a recursive message is left empty. */
const MAX_DEPTH = 4;

/** Unix seconds of the sample time: 2023-11-14T22:13:20Z. */
const SAMPLE_SECONDS = 1_700_000_000;

const int64Scalars: ReadonlySet<ScalarType> = new Set([
  ScalarType.INT64,
  ScalarType.UINT64,
  ScalarType.SINT64,
  ScalarType.FIXED64,
  ScalarType.SFIXED64,
]);

/** Build the golden sample of an event (or any message). */
export function goldenSample<Desc extends DescMessage>(desc: Desc): MessageShape<Desc> {
  return create(desc, messageInit(desc, 0, 0) as never);
}

function clampCount(wanted: number, rules: FieldRules | undefined): number {
  const min = rules?.minItems ?? 0;
  const max = rules?.maxItems ?? Number.POSITIVE_INFINITY;
  return Math.min(Math.max(wanted, min), max);
}

/** The init of a message; `n` is the index of the list item it is (0 otherwise), so list items differ. */
function messageInit(
  desc: DescMessage,
  depth: number,
  n: number,
): Record<string, unknown> | undefined {
  switch (desc.typeName) {
    case "google.protobuf.Timestamp":
      return { seconds: BigInt(SAMPLE_SECONDS + n), nanos: 0 };
    case "google.protobuf.Duration":
      return { seconds: 60n, nanos: 0 };
    case "google.protobuf.Any":
    case "google.protobuf.Value":
      return undefined;
  }
  const init: Record<string, unknown> = {};
  if (depth > MAX_DEPTH) {
    return init;
  }
  for (const member of desc.members) {
    if (member.kind === "oneof") {
      const first = member.fields[0];
      const value = first === undefined ? undefined : singleValue(first, depth, n);
      if (first !== undefined && value !== undefined) {
        init[member.localName] = { case: first.localName, value };
      }
      continue;
    }
    const field = member;
    const rules = getFieldRules(field);
    switch (field.fieldKind) {
      case "list": {
        const items = Array.from({ length: clampCount(2, rules) }, (_, i) =>
          singleValue(field, depth, n + i),
        ).filter((v) => v !== undefined);
        init[field.localName] = items;
        break;
      }
      case "map": {
        const entries: Record<string, unknown> = {};
        for (let i = 0; i < clampCount(1, rules); i++) {
          const value = singleValue(field, depth, n + i);
          if (value !== undefined) {
            entries[mapKey(field.mapKey, i)] = value;
          }
        }
        init[field.localName] = entries;
        break;
      }
      default: {
        const value = singleValue(field, depth, n);
        if (value !== undefined) {
          init[field.localName] = value;
        }
      }
    }
  }
  return init;
}

function mapKey(key: ScalarType, n: number): string {
  switch (key) {
    case ScalarType.STRING:
      return `key-${n + 1}`;
    case ScalarType.BOOL:
      return n === 0 ? "true" : "false";
    default:
      return String(n + 1);
  }
}

/** The value of one (singular, list item or map value) occurrence of a field. */
function singleValue(field: DescField, depth: number, n: number): unknown {
  const rules = getFieldRules(field);
  if (field.enum !== undefined) {
    return (field.enum.values.find((v) => v.number !== 0) ?? field.enum.values[0])?.number ?? 0;
  }
  if (field.message !== undefined) {
    return messageInit(field.message, depth + 1, n);
  }
  const scalar = field.scalar;
  if (scalar === undefined) {
    return undefined;
  }
  switch (scalar) {
    case ScalarType.STRING:
      return stringValue(field, rules, n);
    case ScalarType.BYTES: {
      const length = Math.min(
        Math.max(3, rules?.minLen ?? 0),
        rules?.maxLen ?? Number.POSITIVE_INFINITY,
      );
      return Uint8Array.from({ length }, (_, i) => (i === 0 ? n + 1 : i + 1));
    }
    case ScalarType.BOOL:
      return true;
    case ScalarType.FLOAT:
    case ScalarType.DOUBLE: {
      const value = 1.5 + n;
      const min = rules?.min === undefined ? value : Number(rules.min);
      const max = rules?.max === undefined ? value : Number(rules.max);
      return Math.min(Math.max(value, min), max);
    }
    default: {
      const wide = int64Scalars.has(scalar);
      let value = BigInt(wide ? SAMPLE_SECONDS + n : 7 + n);
      if (rules?.min !== undefined && value < rules.min) {
        value = rules.min;
      }
      if (rules?.max !== undefined && value > rules.max) {
        value = rules.max;
      }
      if (!wide) {
        return Number(value);
      }
      return "longAsString" in field && field.longAsString ? value.toString() : value;
    }
  }
}

function codePoints(value: string): number {
  return [...value].length;
}

function fitsLength(value: string, rules: FieldRules | undefined): boolean {
  const length = codePoints(value);
  return (
    (rules?.minLen === undefined || length >= rules.minLen) &&
    (rules?.maxLen === undefined || length <= rules.maxLen)
  );
}

function stringValue(field: DescField, rules: FieldRules | undefined, n: number): string {
  const base = `${field.name.replace(/_/g, "-")}-${n + 1}`;
  if (rules === undefined || rules.pattern === "") {
    let value = base;
    if (rules?.maxLen !== undefined && codePoints(value) > rules.maxLen) {
      value = [...value].slice(0, rules.maxLen).join("");
    }
    while (rules?.minLen !== undefined && codePoints(value) < rules.minLen) {
      value += "x";
    }
    return value;
  }
  const pattern = new RegExp(rules.pattern, "u");
  const candidates = [
    ...(PATTERN_EXAMPLES[rules.pattern] ?? []),
    base,
    `${field.name.replace(/_/g, "-")}@example.com`,
    "sample",
    "EUR",
    "DE",
    "A1",
    "a",
    "A",
    "1",
  ];
  const found = candidates.find((c) => pattern.test(c) && fitsLength(c, rules));
  if (found === undefined) {
    throw new ProtoeventsError(
      Code.InvalidContract,
      `cannot build the golden sample of field ${field.parent.typeName}.${field.name}: no example matches its pattern ${JSON.stringify(rules.pattern)}${rules.minLen === undefined && rules.maxLen === undefined ? "" : " and length rules"}; add one to PATTERN_EXAMPLES in codegen/src/release/golden-sample.ts`,
    );
  }
  return found;
}
