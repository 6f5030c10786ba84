/**
 * Prints the checks of field rules on one scalar or enum value: `required`,
 * `min_len`/`max_len`, `pattern`, `min`/`max`. They run on a singular field,
 * a oneof member, or each item of a list; validators.ts decides where, and
 * this file decides what the check looks like.
 */
import { type DescField, ScalarType } from "@bufbuild/protobuf";
import type { Printable } from "@bufbuild/protoplugin";
import { Code, ProtoeventsError } from "@protoevents/runtime/errors";
import type { FieldRules } from "../options.js";
import { planPattern } from "../pattern.js";
import { is64, isExplicitScalar } from "../scalars.js";
import type { FileContext } from "./context.js";
import { patternConstantName } from "./names.js";
import { longAsString } from "./types.js";

/** The lines of a checker function being printed, and the pattern constants they use. */
export class CheckerBody {
  readonly lines: Printable[][] = [];
  /** Module-level constants to print before the checker: name and initializer. */
  readonly patterns: Array<[string, Printable]> = [];

  line(...parts: Printable[]): void {
    this.lines.push(parts);
  }

  /** Append a violation of `rule` at `pathExpr` to `out`. */
  violation(indent: string, pathExpr: string, rule: string, text: string): void {
    this.lines.push([
      `${indent}(out ??= []).push({ path: ${pathExpr}, rule: "${rule}", message: ${JSON.stringify(text)} });`,
    ]);
  }
}

/**
 * Checks on one scalar or enum value `v` (a singular field, a oneof member or
 * a list item), at `indent`, reporting violations at `pathExpr`.
 */
export function valueChecks(
  ctx: FileContext,
  body: CheckerBody,
  field: DescField,
  r: FieldRules,
  v: string,
  pathExpr: string,
  indent: string,
): void {
  const line = (text: string) => body.line(`${indent}${text}`);
  const explicit = isExplicitScalar(field) && field.fieldKind !== "list";
  const scalar =
    field.fieldKind === "enum" || (field.fieldKind === "list" && field.listKind === "enum")
      ? undefined
      : field.scalar;
  const isString = scalar === ScalarType.STRING;
  const isBytes = scalar === ScalarType.BYTES;
  // The value that counts as "not set".
  let empty: string;
  if (explicit) {
    empty = `${v} === undefined`;
  } else if (isString) {
    empty = `${v} === ""`;
  } else if (isBytes) {
    empty = `${v}.length === 0`;
  } else if (scalar === ScalarType.BOOL) {
    empty = `${v} === false`;
  } else if (scalar !== undefined && is64(field)) {
    empty = longAsString(field) ? `${v} === "0"` : `${v} === 0n`;
  } else {
    empty = `${v} === 0`;
  }
  if (r.required) {
    line(`if (${empty}) {`);
    body.violation(`${indent}  `, pathExpr, "required", "is required");
    line("}");
  }
  const textChecks =
    (isString || isBytes) && (r.minLen !== undefined || r.maxLen !== undefined || r.pattern !== "");
  if (textChecks) {
    // Length and pattern rules apply to non-empty values.
    const guard = explicit ? `${v} !== undefined && ${v}.length > 0` : `${v}.length > 0`;
    line(`if (${guard}) {`);
    const length = isString ? ctx.rt("codePointLength") : undefined;
    const unit = isString ? "characters" : "bytes";
    if (r.minLen !== undefined) {
      if (length !== undefined) {
        body.line(`${indent}  if (`, length, `(${v}) < ${r.minLen}) {`);
      } else {
        line(`  if (${v}.length < ${r.minLen}) {`);
      }
      body.violation(
        `${indent}    `,
        pathExpr,
        "min_len",
        `must be at least ${r.minLen} ${unit} long`,
      );
      line("  }");
    }
    if (r.maxLen !== undefined) {
      if (length !== undefined) {
        // The UTF-16 length bounds the code points: count them only when it is over.
        body.line(
          `${indent}  if (${v}.length > ${r.maxLen} && `,
          length,
          `(${v}) > ${r.maxLen}) {`,
        );
      } else {
        line(`  if (${v}.length > ${r.maxLen}) {`);
      }
      body.violation(
        `${indent}    `,
        pathExpr,
        "max_len",
        `must be at most ${r.maxLen} ${unit} long`,
      );
    }
    if (r.pattern !== "") {
      const constant = patternConstantName(ctx.names.shape(field.parent), field.name);
      if (!body.patterns.some(([name]) => name === constant)) {
        body.patterns.push([constant, patternInit(ctx, r.pattern)]);
      }
      // A value already too long never reaches the pattern: length bounds the matching work.
      line(`${r.maxLen !== undefined ? "  } else if" : "  if"} (!${constant}.test(${v})) {`);
      body.violation(`${indent}    `, pathExpr, "pattern", `must match ${r.pattern}`);
    }
    if (r.maxLen !== undefined || r.pattern !== "") {
      line("  }");
    }
    line("}");
  }
  if (
    scalar !== undefined &&
    (r.min !== undefined || r.max !== undefined) &&
    scalar !== ScalarType.STRING &&
    scalar !== ScalarType.BYTES &&
    scalar !== ScalarType.BOOL
  ) {
    const big = is64(field);
    const value = big && longAsString(field) ? `BigInt(${v})` : v;
    const literal = (n: bigint) => (big ? `${n}n` : `${n}`);
    if (explicit) {
      line(`if (${v} !== undefined) {`);
    }
    const inner = explicit ? `${indent}  ` : indent;
    if (r.min !== undefined) {
      body.line(`${inner}if (${value} < ${literal(r.min)}) {`);
      body.violation(`${inner}  `, pathExpr, "min", `must be at least ${r.min}`);
      body.line(`${inner}}`);
    }
    if (r.max !== undefined) {
      body.line(`${inner}if (${value} > ${literal(r.max)}) {`);
      body.violation(`${inner}  `, pathExpr, "max", `must be at most ${r.max}`);
      body.line(`${inner}}`);
    }
    if (explicit) {
      line("}");
    }
  }
}

/**
 * The matcher of a pattern rule: V8's RegExp for a pattern (or its safe
 * rewrite) that cannot backtrack super-linearly, the runtime's linear-time
 * engine otherwise. The model refused every pattern that fits neither.
 */
function patternInit(ctx: FileContext, pattern: string): Printable {
  const plan = planPattern(pattern);
  switch (plan.engine) {
    case "backtracking":
      return `new RegExp(${JSON.stringify(plan.source)}, "u")`;
    case "linear":
      return [ctx.rt("linearPattern"), `(${JSON.stringify(plan.source)})`];
    case "refused":
      throw new ProtoeventsError(
        Code.Internal,
        `pattern ${JSON.stringify(pattern)} ${plan.reason}, but the model let it through`,
      );
  }
}
