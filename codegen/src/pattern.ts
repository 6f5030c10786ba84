/**
 * How a `pattern` field rule is matched without letting one crafted value
 * stall a consumer. A backtracking engine (V8's RegExp) takes time
 * super-linear in the length of the value for patterns whose quantifiers can
 * trade characters: `^[^@\s]+@[^@\s]+\.[^@\s]+$` needs about a second on
 * 20,000 characters. Each pattern is analysed once, at generate:
 *
 * 1. No super-linear backtracking (neither scslre nor redos-detector finds
 *    any): V8, as written.
 * 2. Otherwise, when scslre can rewrite it into an equivalent pattern that
 *    both then call safe: V8, with the rewrite.
 * 3. Otherwise a linear-time engine (re2js, an RE2 port) runs it, translated
 *    so that it keeps ECMAScript's meaning (`\s`, `\S` and `.` differ in RE2).
 * 4. A pattern that needs the linear engine but uses what RE2 cannot run
 *    (backreferences, lookaround, some property escapes, repeat counts over
 *    1,000) is refused, with the reason and a way out.
 */
import { type AST, RegExpParser } from "@eslint-community/regexpp";
import { RE2JS } from "re2js";
import { isSafe } from "redos-detector";
import { analyse, type Report } from "scslre";

/** How generated code matches one pattern. */
export type PatternPlan =
  | {
      readonly engine: "backtracking";
      /** The ECMAScript source to compile with the `u` flag: the pattern, or its safe rewrite. */
      readonly source: string;
      /** Whether {@link source} is scslre's rewrite of the pattern. */
      readonly rewritten: boolean;
    }
  | {
      readonly engine: "linear";
      /** RE2 syntax with the pattern's ECMAScript meaning. */
      readonly source: string;
      /** Why the backtracking engine would not do, e.g. `polynomial backtracking on a long run of "."`. */
      readonly reason: string;
    };

/** A pattern that cannot be matched safely. */
export interface UnsafePattern {
  readonly engine: "refused";
  readonly reason: string;
  readonly fix: string;
}

/** The rewrites tried before falling back to the linear engine. */
const MAX_REWRITES = 8;
/**
 * redos-detector's work bound. A pattern it cannot prove safe within it counts
 * as unsafe; a step count (not a timeout) keeps the verdict, and so the
 * generated code, the same on every machine.
 */
const REDOS_MAX_STEPS = 5000;

/** Whitespace as ECMAScript's `\s` means it, in RE2 class syntax (without brackets). */
const ECMASCRIPT_SPACE =
  "\\x{9}-\\x{d}\\x{20}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}\\x{feff}";
/** `.` without the `s` flag: anything but a line terminator. */
const ECMASCRIPT_ANY = "[^\\x{a}\\x{d}\\x{2028}\\x{2029}]";

const plans = new Map<string, PatternPlan | UnsafePattern>();

function parse(source: string): AST.RegExpLiteral {
  return new RegExpParser({ ecmaVersion: 2025 }).parseLiteral(`/${source}/u`);
}

function superLinear(literal: AST.RegExpLiteral): Report[] {
  return analyse(
    { source: literal.pattern.raw, flags: literal.flags.raw },
    { reportTypes: { Move: true, Self: true, Trade: true } },
  ).reports;
}

function describe(report: Report): string {
  const kind = report.exponential ? "exponential" : "polynomial";
  return `${kind} backtracking on a long run of ${JSON.stringify(report.character.pick)}`;
}

/** Thrown by the translation for a construct RE2 cannot run. */
class Untranslatable extends Error {}

function codePoint(value: number): string {
  const char = String.fromCodePoint(value);
  return /^[A-Za-z0-9 ]$/.test(char) ? char : `\\x{${value.toString(16)}}`;
}

function property(set: AST.UnicodePropertyCharacterSet): string {
  const name =
    set.key === "General_Category" || set.key === "gc" || set.value === null
      ? (set.value ?? set.key)
      : set.key === "Script" || set.key === "sc"
        ? set.value
        : undefined;
  if (name === undefined || set.strings) {
    throw new Untranslatable(`the property escape ${set.raw}`);
  }
  return `\\${set.negate ? "P" : "p"}{${name}}`;
}

/** A set inside a character class, in RE2 class syntax. */
function classSet(element: AST.CharacterClassElement): string {
  switch (element.type) {
    case "Character":
      return codePoint(element.value);
    case "CharacterClassRange":
      return `${codePoint(element.min.value)}-${codePoint(element.max.value)}`;
    case "CharacterSet":
      switch (element.kind) {
        case "digit":
          return element.negate ? "\\D" : "\\d";
        case "word":
          return element.negate ? "\\W" : "\\w";
        case "space":
          if (element.negate) {
            throw new Untranslatable("\\S inside a character class");
          }
          return ECMASCRIPT_SPACE;
        case "property":
          return property(element);
      }
      break;
    default:
      break;
  }
  throw new Untranslatable(`the class element ${element.raw}`);
}

function quantifier(node: AST.Quantifier): string {
  if (node.min > 1000 || (Number.isFinite(node.max) && node.max > 1000)) {
    throw new Untranslatable(`the repeat count in ${node.raw} (RE2 allows at most 1000)`);
  }
  const count =
    node.min === 0 && node.max === Number.POSITIVE_INFINITY
      ? "*"
      : node.min === 1 && node.max === Number.POSITIVE_INFINITY
        ? "+"
        : node.min === 0 && node.max === 1
          ? "?"
          : node.max === Number.POSITIVE_INFINITY
            ? `{${node.min},}`
            : node.min === node.max
              ? `{${node.min}}`
              : `{${node.min},${node.max}}`;
  return `(?:${element(node.element)})${count}${node.greedy ? "" : "?"}`;
}

function alternatives(list: readonly AST.Alternative[]): string {
  return list.map((a) => a.elements.map(element).join("")).join("|");
}

function element(node: AST.Element): string {
  switch (node.type) {
    case "Character":
      return codePoint(node.value);
    case "CharacterClass":
      if (node.unicodeSets) {
        throw new Untranslatable(`the set notation ${node.raw}`);
      }
      return `[${node.negate ? "^" : ""}${node.elements.map(classSet).join("")}]`;
    case "CharacterSet":
      switch (node.kind) {
        case "any":
          return ECMASCRIPT_ANY;
        case "digit":
          return node.negate ? "\\D" : "\\d";
        case "word":
          return node.negate ? "\\W" : "\\w";
        case "space":
          return `[${node.negate ? "^" : ""}${ECMASCRIPT_SPACE}]`;
        case "property":
          return property(node);
      }
      break;
    case "Assertion":
      switch (node.kind) {
        case "start":
          return "^";
        case "end":
          return "$";
        case "word":
          return node.negate ? "\\B" : "\\b";
        default:
          throw new Untranslatable(`the ${node.kind} ${node.raw}`);
      }
    case "Quantifier":
      return quantifier(node);
    case "Group":
    case "CapturingGroup":
      return `(?:${alternatives(node.alternatives)})`;
    case "Backreference":
      throw new Untranslatable(`the backreference ${node.raw}`);
    default:
      break;
  }
  throw new Untranslatable(`${node.raw}`);
}

/** The pattern in RE2 syntax with its ECMAScript (`u` flag) meaning. */
export function toRe2(pattern: string): string {
  return alternatives(parse(pattern).pattern.alternatives);
}

/** Whether redos-detector proves the pattern free of super-linear backtracking. */
function provenSafe(source: string): boolean {
  try {
    return isSafe(new RegExp(source, "u"), { maxSteps: REDOS_MAX_STEPS }).safe;
  } catch {
    // A construct it does not support (e.g. lookbehind): not proven safe.
    return false;
  }
}

/** The pattern, or scslre's equivalent rewrite, when it has no super-linear backtracking left. */
function safeSource(pattern: string, reports: readonly Report[]): string | undefined {
  let source = pattern;
  let left = reports;
  for (let round = 0; round < MAX_REWRITES && left.length > 0; round++) {
    const fixed = (left[0] as Report).fix();
    if (fixed === undefined) {
      return undefined;
    }
    source = fixed.source;
    left = superLinear(parse(source));
  }
  return left.length === 0 && provenSafe(source) ? source : undefined;
}

function plan(pattern: string): PatternPlan | UnsafePattern {
  const reports = superLinear(parse(pattern));
  const safe = safeSource(pattern, reports);
  if (safe !== undefined) {
    return { engine: "backtracking", source: safe, rewritten: safe !== pattern };
  }
  const reason =
    reports[0] === undefined
      ? `backtracking redos-detector cannot bound within ${REDOS_MAX_STEPS} steps`
      : describe(reports[0]);
  try {
    const source = toRe2(pattern);
    RE2JS.compile(source);
    return { engine: "linear", source, reason };
  } catch (error) {
    const construct =
      error instanceof Untranslatable ? error.message : `it (${(error as Error).message})`;
    return {
      engine: "refused",
      reason: `can take time super-linear in the length of a value (${reason}), and the linear-time engine that would run it instead cannot run ${construct}`,
      fix: "rewrite it so that no two quantifiers can match the same characters (e.g. `[^@.]+(\\.[^@.]+)*` rather than `[^@]+\\.[^@]+`), or drop the construct",
    };
  }
}

/** How to match `pattern` (a valid ECMAScript pattern with the `u` flag); the same answer for the same pattern. */
export function planPattern(pattern: string): PatternPlan | UnsafePattern {
  let known = plans.get(pattern);
  if (known === undefined) {
    known = plan(pattern);
    plans.set(pattern, known);
  }
  return known;
}
