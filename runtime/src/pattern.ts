/**
 * Patterns that a backtracking engine could take super-linear time on (see
 * codegen's pattern analysis) are matched by re2js, an RE2 port whose time
 * is linear in the length of the value. Generated validators create them;
 * re2js is loaded and the pattern compiled on first use.
 */
import { createRequire } from "node:module";
import type { RE2JS } from "re2js";

const require = createRequire(import.meta.url);

/** A compiled pattern: `test` is true when it matches anywhere in the value, like `RegExp.prototype.test`. */
export interface LinearPattern {
  test(value: string): boolean;
}

/** A pattern in RE2 syntax, matched in linear time. Used by generated code. */
export function linearPattern(source: string): LinearPattern {
  let compiled: RE2JS | undefined;
  return {
    test(value: string): boolean {
      compiled ??= (require("re2js") as typeof import("re2js")).RE2JS.compile(source);
      return compiled.test(value);
    },
  };
}
