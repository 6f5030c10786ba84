/**
 * Field rules read from descriptors and checked on a decoded message: what
 * the generated validators do, for contracts that have no generated code at
 * hand — a release's, in the compatibility gate. The semantics are the
 * validators' (`emit/validators.ts`, `emit/value-checks.ts`): `required` by
 * field kind, length and pattern on non-empty values only, `min`/`max` on
 * every value, item counts on lists and maps, nested messages checked
 * wherever they are set. A test holds the two to the same answers on the
 * checkout's events.
 */
import { type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import { linearPattern } from "@protoevents/runtime/pattern";
import { codePointLength } from "@protoevents/runtime/text";
import { type FieldRules, getFieldRules } from "../options.js";
import { planPattern } from "../pattern.js";
import { INT64_SCALARS, isExplicitScalar, scalarOf } from "../scalars.js";

/** One rule a value breaks, as the generated validators report it. */
export interface RuleViolation {
  /** Field path in proto names, e.g. `items[1].quantity`. */
  readonly path: string;
  /** The rule, e.g. `max_len`. */
  readonly rule: string;
  /** The field, for its full name and location. */
  readonly field: DescField;
}

type Plain = Record<string, unknown>;
type Matcher = { test(value: string): boolean };

/** Nesting depth after which a (recursive) message is not looked into: decoding already bounded it. */
const MAX_DEPTH = 64;

const matchers = new Map<string, Matcher | undefined>();

/** The pattern's matcher as generated code builds it; undefined when codegen would refuse the pattern today. */
function matcherOf(pattern: string): Matcher | undefined {
  if (!matchers.has(pattern)) {
    const plan = planPattern(pattern);
    matchers.set(
      pattern,
      plan.engine === "backtracking"
        ? new RegExp(plan.source, "u")
        : plan.engine === "linear"
          ? linearPattern(plan.source)
          : undefined,
    );
  }
  return matchers.get(pattern);
}

function isEmpty(value: unknown, scalar: ScalarType | undefined): boolean {
  if (value === undefined) {
    return true;
  }
  switch (scalar) {
    case ScalarType.STRING:
      return value === "";
    case ScalarType.BYTES:
      return (value as Uint8Array).length === 0;
    case ScalarType.BOOL:
      return value === false;
    default:
      return typeof value === "bigint" ? value === 0n : value === 0 || value === "0";
  }
}

/** Checks on one scalar or enum value (a singular field, a oneof member or a list item). */
function checkValue(
  field: DescField,
  rules: FieldRules,
  value: unknown,
  path: string,
  required: boolean,
  out: RuleViolation[],
): void {
  const explicit = isExplicitScalar(field);
  const scalar = scalarOf(field);
  const push = (rule: string) => out.push({ path, rule, field });
  if (required && (explicit ? value === undefined : isEmpty(value, scalar))) {
    push("required");
  }
  if (explicit && value === undefined) {
    return;
  }
  if (scalar === ScalarType.STRING || scalar === ScalarType.BYTES) {
    const length =
      scalar === ScalarType.STRING
        ? codePointLength(value as string)
        : (value as Uint8Array).length;
    if (length === 0) {
      return;
    }
    if (rules.minLen !== undefined && length < rules.minLen) {
      push("min_len");
    }
    if (rules.maxLen !== undefined && length > rules.maxLen) {
      push("max_len");
    } else if (rules.pattern !== "" && scalar === ScalarType.STRING) {
      // A value already too long never reaches the pattern, as in generated code.
      const matcher = matcherOf(rules.pattern);
      if (matcher !== undefined && !matcher.test(value as string)) {
        push("pattern");
      }
    }
    return;
  }
  if (scalar === ScalarType.BOOL || (rules.min === undefined && rules.max === undefined)) {
    return;
  }
  if (scalar !== undefined && INT64_SCALARS.has(scalar)) {
    const n = BigInt(value as bigint | string);
    if (rules.min !== undefined && n < rules.min) {
      push("min");
    }
    if (rules.max !== undefined && n > rules.max) {
      push("max");
    }
    return;
  }
  const n = Number(value);
  if (rules.min !== undefined && n < Number(rules.min)) {
    push("min");
  }
  if (rules.max !== undefined && n > Number(rules.max)) {
    push("max");
  }
}

function checkCount(
  field: DescField,
  rules: FieldRules | undefined,
  count: number,
  path: string,
  out: RuleViolation[],
): void {
  if (rules?.required === true && count === 0) {
    out.push({ path, rule: "required", field });
  }
  if (rules?.minItems !== undefined && count < rules.minItems) {
    out.push({ path, rule: "min_items", field });
  }
  if (rules?.maxItems !== undefined && count > rules.maxItems) {
    out.push({ path, rule: "max_items", field });
  }
}

function checkMessage(
  desc: DescMessage,
  message: Plain,
  prefix: string,
  depth: number,
  out: RuleViolation[],
): void {
  if (depth > MAX_DEPTH) {
    return;
  }
  for (const field of desc.fields) {
    const rules = getFieldRules(field);
    const path = `${prefix}${field.name}`;
    if (field.oneof !== undefined) {
      const group = message[field.oneof.localName] as { case?: string; value?: unknown };
      if (group?.case !== field.localName) {
        continue;
      }
      if (field.message !== undefined) {
        checkMessage(field.message, group.value as Plain, `${path}.`, depth + 1, out);
      } else if (rules !== undefined) {
        checkValue(field, rules, group.value, path, rules.required, out);
      }
      continue;
    }
    const value = message[field.localName];
    switch (field.fieldKind) {
      case "message":
        if (value === undefined) {
          if (rules?.required === true) {
            out.push({ path, rule: "required", field });
          }
        } else {
          checkMessage(field.message, value as Plain, `${path}.`, depth + 1, out);
        }
        break;
      case "list": {
        const list = value as readonly unknown[];
        checkCount(field, rules, list.length, path, out);
        list.forEach((item, i) => {
          if (field.listKind === "message") {
            checkMessage(field.message, item as Plain, `${path}[${i}].`, depth + 1, out);
          } else if (rules !== undefined) {
            checkValue(field, rules, item, `${path}[${i}]`, false, out);
          }
        });
        break;
      }
      case "map": {
        const entries = Object.entries(value as Plain);
        checkCount(field, rules, entries.length, path, out);
        if (field.mapKind === "message") {
          for (const [key, item] of entries) {
            checkMessage(
              field.message,
              item as Plain,
              `${path}[${JSON.stringify(key)}].`,
              depth + 1,
              out,
            );
          }
        }
        break;
      }
      default:
        if (rules !== undefined) {
          checkValue(field, rules, value, path, rules.required, out);
        }
    }
  }
}

/**
 * Every field rule a decoded message breaks under the rules its descriptor
 * declares; empty when valid. A pattern that today's codegen would refuse is
 * not checked (a release made before the refusal may have one).
 */
export function checkRules(desc: DescMessage, message: object): RuleViolation[] {
  const out: RuleViolation[] = [];
  checkMessage(desc, message as Plain, "", 0, out);
  return out;
}
