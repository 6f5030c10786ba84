import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { planPattern, toRe2 } from "../../codegen/src/pattern.js";
import { linearPattern } from "../../runtime/src/pattern.js";

/**
 * Characters where ECMAScript and RE2 disagree or patterns care: the
 * separators of e-mail-like patterns, ASCII and Unicode whitespace, line
 * terminators, a letter outside ASCII and one outside the BMP.
 */
const ALPHABET = [
  "a",
  "b",
  "Z",
  "0",
  "7",
  "_",
  "@",
  ".",
  ",",
  "-",
  " ",
  "\t",
  "\n",
  "\r",
  "\u00a0",
  "\u2028",
  "\u3000",
  "é",
  "😀",
];
const text = fc.array(fc.constantFrom(...ALPHABET), { maxLength: 24 }).map((cs) => cs.join(""));

/** Patterns each engine must agree on, with the plan each gets. */
const PATTERNS = [
  { pattern: "^[A-Z]{3}$", engine: "backtracking" },
  { pattern: "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", engine: "backtracking" },
  { pattern: "^(.*),(.*)$", engine: "linear" },
  { pattern: "^(\\w+\\s?)*$", engine: "linear" },
  { pattern: "^(a|a)*$", engine: "linear" },
  { pattern: "^(?:[a-z]+|\\d+)+@\\S+$", engine: "backtracking" }, // rewritten: ^(?:[a-z]|\d)+@\S+$
  { pattern: "\\b\\d+\\b.*\\s+\\S", engine: "linear" },
  { pattern: "^[^\\s.]+?(\\.\\w{1,3})+$", engine: "backtracking" },
  { pattern: "^\\p{L}+[\\p{Nd}_]*(a+)+$", engine: "linear" },
] as const;

describe("planning a pattern rule", () => {
  it.each(PATTERNS)("should match $pattern with the $engine engine", ({ pattern, engine }) => {
    expect(planPattern(pattern).engine).toBe(engine);
  });

  it("should keep a pattern that cannot backtrack super-linearly as written", () => {
    expect(planPattern("^[A-Z]{3}$")).toEqual({
      engine: "backtracking",
      source: "^[A-Z]{3}$",
      rewritten: false,
    });
  });

  it("should rewrite the checkout's e-mail rule into an equivalent that cannot backtrack", () => {
    const plan = planPattern("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$");
    expect(plan).toEqual({
      engine: "backtracking",
      source: "^[^@\\s]+@[^\\s@][^\\s.@]*\\.[^\\s@]+$",
      rewritten: true,
    });
  });

  it("should match the same values as written, whichever engine it gets (seeded)", () => {
    for (const { pattern } of PATTERNS) {
      const written = new RegExp(pattern, "u");
      const plan = planPattern(pattern);
      if (plan.engine === "refused") {
        throw new Error(`${pattern} was refused`);
      }
      const planned =
        plan.engine === "linear" ? linearPattern(plan.source) : new RegExp(plan.source, "u");
      fc.assert(
        fc.property(text, (value) => planned.test(value) === written.test(value)),
        { seed: 20261202, numRuns: 400 },
      );
    }
  });

  it("should translate ECMAScript's \\s, \\S and . rather than RE2's", () => {
    const space = linearPattern(toRe2("^\\s$"));
    expect(["\u00a0", "\u3000", "\ufeff", "\t"].map((c) => space.test(c))).toEqual([
      true,
      true,
      true,
      true,
    ]);
    const any = linearPattern(toRe2("^.$"));
    expect(["\u2028", "\r", "😀"].map((c) => any.test(c))).toEqual([false, false, true]);
    expect(linearPattern(toRe2("^\\S+$")).test("a\u00a0b")).toBe(false);
  });

  it("should refuse, saying why and how, what neither engine can run safely", () => {
    for (const [pattern, construct] of [
      ["^(a+)+\\1$", "the backreference \\1"],
      ["^(?=.*x)(.*),(.*)$", "the lookahead (?=.*x)"],
      ["^(\\d+)+[\\S]$", "\\S inside a character class"],
      ["^(a+)+b{2000}$", "the repeat count in b{2000} (RE2 allows at most 1000)"],
    ] as const) {
      const plan = planPattern(pattern);
      expect(plan.engine, pattern).toBe("refused");
      if (plan.engine === "refused") {
        expect(plan.reason).toMatch(/^can take time super-linear in the length of a value \(/);
        expect(plan.reason).toContain(`cannot run ${construct}`);
        expect(plan.fix).toContain("no two quantifiers can match the same characters");
      }
    }
  });
});
