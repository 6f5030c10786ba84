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
 *
 * Two more variants probe the edges of the rules, for the gate's checks in
 * both directions (they are derived from a contract when needed, never
 * stored):
 *
 * - `upper`: strings and bytes at `max_len`, numbers at `max`, lists and maps
 *   at `max_items` (at most {@link MAX_EDGE_ITEMS}; the first item at its own
 *   upper edge, the others typical);
 * - `lower`: what the rules let a producer leave out is left out (empty,
 *   zero, unset); the rest at `min_len`, `min`, `min_items`.
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
import { INT64_SCALARS, isExplicitScalar } from "../scalars.js";

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

/** Which sample: see the module's comment. */
export type SampleVariant = "typical" | "upper" | "lower";

/** The most items an edge sample puts in one list or map. */
export const MAX_EDGE_ITEMS = 256;

/** The longest string or bytes value an edge sample writes. */
const MAX_EDGE_LENGTH = 65_536;

/** Unix seconds of the sample time: 2023-11-14T22:13:20Z. */
const SAMPLE_SECONDS = 1_700_000_000;

/** Build the golden sample of an event (or any message), or one of its edge variants. */
export function goldenSample<Desc extends DescMessage>(
  desc: Desc,
  variant: SampleVariant = "typical",
): MessageShape<Desc> {
  return create(desc, messageInit(desc, 0, 0, variant) as never);
}

function clampCount(wanted: number, rules: FieldRules | undefined): number {
  const min = rules?.minItems ?? 0;
  const max = rules?.maxItems ?? Number.POSITIVE_INFINITY;
  return Math.min(Math.max(wanted, min), max);
}

/** How many items a list or map of a variant has. */
function itemCount(rules: FieldRules | undefined, variant: SampleVariant, typical: number): number {
  switch (variant) {
    case "typical":
      return clampCount(typical, rules);
    case "upper":
      return rules?.maxItems === undefined
        ? clampCount(typical, rules)
        : Math.min(rules.maxItems, Math.max(MAX_EDGE_ITEMS, rules.minItems ?? 0));
    case "lower":
      return Math.max(rules?.minItems ?? 0, rules?.required === true ? 1 : 0);
  }
}

/** Whether a lower sample may leave a singular field out: not required, and its zero value passes min/max. */
function mayOmit(field: DescField, rules: FieldRules | undefined): boolean {
  if (rules === undefined) {
    return true;
  }
  if (rules.required) {
    return false;
  }
  if (field.fieldKind === "scalar" && !isExplicitScalar(field)) {
    // Left out, it reads as zero: only if zero passes min and max.
    return (
      (rules.min === undefined || rules.min <= 0n) && (rules.max === undefined || rules.max >= 0n)
    );
  }
  return true;
}

/** The init of a message; `n` is the index of the list item it is (0 otherwise), so list items differ. */
function messageInit(
  desc: DescMessage,
  depth: number,
  n: number,
  variant: SampleVariant,
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
      if (variant === "lower") {
        continue;
      }
      const first = member.fields[0];
      const value = first === undefined ? undefined : singleValue(first, depth, n, variant);
      if (first !== undefined && value !== undefined) {
        init[member.localName] = { case: first.localName, value };
      }
      continue;
    }
    const field = member;
    const rules = getFieldRules(field);
    // Items after the first are typical: an upper edge in every item of nested lists would multiply.
    const itemVariant = (i: number): SampleVariant => (i === 0 ? variant : "typical");
    switch (field.fieldKind) {
      case "list": {
        const items = Array.from({ length: itemCount(rules, variant, 2) }, (_, i) =>
          singleValue(field, depth, n + i, itemVariant(i)),
        ).filter((v) => v !== undefined);
        init[field.localName] = items;
        break;
      }
      case "map": {
        const entries: Record<string, unknown> = {};
        for (let i = 0; i < itemCount(rules, variant, 1); i++) {
          const value = singleValue(field, depth, n + i, itemVariant(i));
          if (value !== undefined) {
            entries[mapKey(field.mapKey, i)] = value;
          }
        }
        init[field.localName] = entries;
        break;
      }
      default: {
        if (variant === "lower" && mayOmit(field, rules)) {
          break;
        }
        const value = singleValue(field, depth, n, variant);
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
function singleValue(field: DescField, depth: number, n: number, variant: SampleVariant): unknown {
  const rules = getFieldRules(field);
  if (field.enum !== undefined) {
    return (field.enum.values.find((v) => v.number !== 0) ?? field.enum.values[0])?.number ?? 0;
  }
  if (field.message !== undefined) {
    return messageInit(field.message, depth + 1, n, variant);
  }
  const scalar = field.scalar;
  if (scalar === undefined) {
    return undefined;
  }
  switch (scalar) {
    case ScalarType.STRING:
      return stringValue(field, rules, n, variant);
    case ScalarType.BYTES: {
      const wanted =
        variant === "upper" && rules?.maxLen !== undefined
          ? Math.min(rules.maxLen, MAX_EDGE_LENGTH)
          : variant === "lower"
            ? Math.max(1, rules?.minLen ?? 0)
            : 3;
      const length = Math.min(
        Math.max(wanted, rules?.minLen ?? 0),
        rules?.maxLen ?? Number.POSITIVE_INFINITY,
      );
      return Uint8Array.from({ length }, (_, i) => (i === 0 ? n + 1 : i + 1) & 0xff);
    }
    case ScalarType.BOOL:
      return true;
    case ScalarType.FLOAT:
    case ScalarType.DOUBLE: {
      const edge = variant === "upper" ? rules?.max : variant === "lower" ? rules?.min : undefined;
      if (edge !== undefined) {
        return Number(edge);
      }
      const value = 1.5 + n;
      const min = rules?.min === undefined ? value : Number(rules.min);
      const max = rules?.max === undefined ? value : Number(rules.max);
      return Math.min(Math.max(value, min), max);
    }
    default: {
      const wide = INT64_SCALARS.has(scalar);
      const edge = variant === "upper" ? rules?.max : variant === "lower" ? rules?.min : undefined;
      let value = edge ?? BigInt(wide ? SAMPLE_SECONDS + n : 7 + n);
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

function stringValue(
  field: DescField,
  rules: FieldRules | undefined,
  n: number,
  variant: SampleVariant,
): string {
  const base = `${field.name.replace(/_/g, "-")}-${n + 1}`;
  if (rules === undefined || rules.pattern === "") {
    let value = base;
    if (variant === "upper" && rules?.maxLen !== undefined) {
      value = value.padEnd(Math.min(rules.maxLen, MAX_EDGE_LENGTH), "x");
    }
    if (variant === "lower") {
      value = [...value].slice(0, Math.max(1, rules?.minLen ?? 0)).join("");
    }
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
