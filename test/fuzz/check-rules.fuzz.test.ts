import { clone, type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkRules } from "../../codegen/src/release/check-rules.js";
import { goldenSample, type SampleVariant } from "../../codegen/src/release/golden-sample.js";
import { registry } from "../../generated/protoevents_registry.js";
import { fuzzOptions } from "./options.js";

/**
 * The gate checks a release's field rules without generated code
 * (`checkRules`, reading the rules from descriptors); consumers run the
 * generated validators. The two must give the same answer on any event, or
 * the gate would pass a change the consumers then dead-letter (or refuse a
 * safe one). Each run takes a sample of a checkout event and breaks it in a
 * few places with values chosen to sit on and around the rules' edges.
 */

type Plain = Record<string, unknown>;

const STRINGS = [
  "",
  "x",
  "EUR",
  "eur",
  "DE",
  "customer@example.com",
  "not an e-mail",
  "😀",
  "😀".repeat(70),
  "x".repeat(33),
  "x".repeat(65),
  "x".repeat(129),
  "x".repeat(257),
  "x".repeat(1001),
];
const LENGTHS = [0, 1, 2, 3, 100, 101, 257];
const NUMBERS = [0, 1, -1, 2, 99, 100, 999, 1000, 1_000_000, 2_147_483_647, -2_147_483_648];

/** One scalar value for a field, picked by `pick`. */
function valueFor(field: DescField, scalar: ScalarType | undefined, pick: number): unknown {
  if (field.enum !== undefined) {
    const values = field.enum.values.map((v) => v.number);
    return values[pick % values.length] ?? 0;
  }
  switch (scalar) {
    case ScalarType.STRING:
      return STRINGS[pick % STRINGS.length];
    case ScalarType.BYTES:
      return new Uint8Array(pick % 70);
    case ScalarType.BOOL:
      return pick % 2 === 0;
    case ScalarType.FLOAT:
    case ScalarType.DOUBLE:
      return (NUMBERS[pick % NUMBERS.length] ?? 0) + 0.5;
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
    case ScalarType.UINT64:
    case ScalarType.FIXED64: {
      const n = BigInt(NUMBERS[pick % NUMBERS.length] ?? 0);
      const unsigned = scalar === ScalarType.UINT64 || scalar === ScalarType.FIXED64;
      const value = unsigned && n < 0n ? -n : n;
      return "longAsString" in field && field.longAsString ? value.toString() : value;
    }
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return Math.abs(NUMBERS[pick % NUMBERS.length] ?? 0);
    default:
      return NUMBERS[pick % NUMBERS.length] ?? 0;
  }
}

/** Change one place of a message in place, walking `path` (a list of choices) down into set messages. */
function mutate(desc: DescMessage, message: Plain, path: readonly number[]): void {
  const [choice = 0, pick = 0, ...rest] = path;
  const fields = desc.fields;
  const field = fields[choice % fields.length];
  if (field === undefined) {
    return;
  }
  if (field.oneof !== undefined) {
    const group = message[field.oneof.localName] as { case?: string; value?: unknown };
    if (field.message !== undefined) {
      if (group.case === field.localName && rest.length > 0) {
        mutate(field.message, group.value as Plain, rest);
      }
      return;
    }
    message[field.oneof.localName] =
      pick % 5 === 0
        ? { case: undefined }
        : { case: field.localName, value: valueFor(field, field.scalar, pick) };
    return;
  }
  switch (field.fieldKind) {
    case "message": {
      const value = message[field.localName] as Plain | undefined;
      if (pick % 4 === 0) {
        message[field.localName] = undefined;
      } else if (value !== undefined && rest.length > 0) {
        mutate(field.message, value, rest);
      }
      return;
    }
    case "list": {
      const list = message[field.localName] as unknown[];
      if (pick % 3 === 0) {
        // Resize around the checkout's item-count rules (1 to 100): empty, a few, and just past them.
        const length = LENGTHS[(pick >> 2) % LENGTHS.length] ?? 0;
        const first = list[0];
        message[field.localName] = first === undefined ? [] : Array.from({ length }, () => first);
      } else if (list.length > 0) {
        const i = pick % list.length;
        if (field.listKind === "message") {
          if (rest.length > 0) {
            list[i] = structuredClone(list[i]);
            mutate(field.message, list[i] as Plain, rest);
          }
        } else {
          list[i] = valueFor(
            field,
            field.listKind === "scalar" ? field.scalar : undefined,
            pick >> 2,
          );
        }
      }
      return;
    }
    case "map": {
      if (pick % 2 === 0) {
        message[field.localName] = {};
      }
      return;
    }
    case "scalar":
      message[field.localName] =
        pick % 7 === 0 && field.presence === 1 ? undefined : valueFor(field, field.scalar, pick);
      return;
    case "enum":
      message[field.localName] = valueFor(field, undefined, pick);
      return;
  }
}

const events = registry.events;
const variants: readonly SampleVariant[] = ["typical", "upper", "lower"];

describe("checkRules, the gate's reading of field rules", () => {
  it("should report the same violations as the generated validators on every checkout event", () => {
    fc.assert(
      fc.property(
        fc.nat(events.length - 1),
        fc.constantFrom(...variants),
        fc.array(fc.array(fc.nat(1000), { minLength: 2, maxLength: 8 }), { maxLength: 4 }),
        (index, variant, mutations) => {
          const contract = events[index];
          if (contract === undefined) {
            return;
          }
          const message = clone(contract.schema, goldenSample(contract.schema, variant));
          for (const path of mutations) {
            mutate(contract.schema, message as unknown as Plain, path);
          }
          const generated = contract
            .validate(message)
            .map((v) => `${v.path} ${v.rule}`)
            .sort();
          const read = checkRules(contract.schema, message)
            .map((v) => `${v.path} ${v.rule}`)
            .sort();
          expect(read, contract.type).toEqual(generated);
        },
      ),
      fuzzOptions(300),
    );
  });

  it("should find violations in runs that break rules, so the comparison is not vacuous", () => {
    // The upper sample of an event with a max_len, pushed one past it.
    const placed = events.find((e) => e.type === "checkout.v1.OrderPlaced");
    expect(placed).toBeDefined();
    if (placed === undefined) {
      return;
    }
    const message = clone(placed.schema, goldenSample(placed.schema, "upper")) as unknown as Plain;
    const field = placed.schema.fields.find(
      (f) => f.fieldKind === "scalar" && f.scalar === ScalarType.STRING,
    );
    expect(field).toBeDefined();
    if (field === undefined) {
      return;
    }
    message[field.localName] = "x".repeat(100_000);
    const generated = placed.validate(message as never).map((v) => `${v.path} ${v.rule}`);
    expect(generated.length).toBeGreaterThan(0);
    expect(checkRules(placed.schema, message).map((v) => `${v.path} ${v.rule}`)).toEqual(generated);
  });
});
