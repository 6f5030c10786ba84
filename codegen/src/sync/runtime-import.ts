/**
 * How `protoevents sync` makes the runtime's `Code` and `ProtoeventsError`
 * available in a file it adds stubs to: the import edit (if any) and the
 * local names the stubs use.
 */
import { dirname, relative, sep } from "node:path";
import type { SourceFile } from "ts-morph";
import {
  boundNames,
  indentAt,
  isRuntimeSpecifier,
  lineStart,
  nextToken,
  RUNTIME_MODULE,
  RUNTIME_PACKAGE,
} from "./source.js";

/** How a file gets the runtime's `Code` and `ProtoeventsError` its stubs throw. */
export interface RuntimeImportPlan {
  /**
   * `reuse`: the file imports both already; `merge`: the missing ones join
   * an import of the runtime; `add`: a new import line.
   */
  readonly kind: "reuse" | "merge" | "add";
  /** The module specifier imported from (the existing one for `reuse` and `merge`). */
  readonly specifier: string;
  /** The import specifiers added, e.g. `Code` or `Code as ProtoeventsCode`; none for `reuse`. */
  readonly added: readonly string[];
  /** The local names the stubs use. */
  readonly code: string;
  readonly error: string;
}

/** Biome's line width (biome.json). */
const LINE_WIDTH = 100;

/** Biome's order of named imports: case-insensitive, then by case. */
function compareNames(a: string, b: string): number {
  const [la, lb] = [a.toLowerCase(), b.toLowerCase()];
  if (la !== lb) {
    return la < lb ? -1 : 1;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Decide how `Code` and `ProtoeventsError` of the runtime become available
 * in the file: reuse imported ones, add them to a value import of the runtime
 * in Biome's order (rewrapping a one-line import the way Biome wraps it when
 * it gets too long), or add an import line next to a type import of the
 * runtime or after the last import.
 */
export function planRuntimeImport(
  file: SourceFile,
  text: string,
  runtimeModule: string,
  edit: (start: number, inserted: string, end?: number) => void,
): RuntimeImportPlan {
  const bound = boundNames(file);
  const local = { Code: "Code", ProtoeventsError: "ProtoeventsError" };
  const missing: Array<{ name: string; spec: string }> = [];
  let reused: string | undefined;
  for (const name of ["Code", "ProtoeventsError"] as const) {
    const fromRuntime = file
      .getImportDeclarations()
      .filter((d) => !d.isTypeOnly() && isRuntimeSpecifier(d.getModuleSpecifierValue()))
      .flatMap((d) => d.getNamedImports().map((n) => ({ n, d })))
      .find(({ n }) => n.getName() === name && !n.isTypeOnly());
    if (fromRuntime !== undefined) {
      local[name] = fromRuntime.n.getAliasNode()?.getText() ?? name;
      reused ??= fromRuntime.d.getModuleSpecifierValue();
      continue;
    }
    const alias = bound.has(name) ? `Protoevents${name}` : name;
    local[name] = alias;
    missing.push({ name, spec: alias === name ? name : `${name} as ${alias}` });
  }
  const names = { code: local.Code, error: local.ProtoeventsError };
  const added = missing.map((m) => m.spec);
  if (missing.length === 0) {
    return { kind: "reuse", specifier: reused ?? RUNTIME_PACKAGE, added, ...names };
  }
  const target = file
    .getImportDeclarations()
    .find(
      (d) =>
        !d.isTypeOnly() &&
        RUNTIME_MODULE.test(d.getModuleSpecifierValue()) &&
        d.getNamedImports().length > 0,
    );
  if (target !== undefined) {
    const merged: RuntimeImportPlan = {
      kind: "merge",
      specifier: target.getModuleSpecifierValue(),
      added,
      ...names,
    };
    const named = target.getNamedImports();
    const first = named[0];
    const multiline =
      first !== undefined && text.slice(target.getStart(), first.getStart()).includes("\n");
    if (!multiline) {
      const bindings = target.getImportClause()?.getNamedBindings();
      if (bindings === undefined) {
        return merged;
      }
      const specs = [
        ...named.map((n) => ({ name: n.getName(), spec: n.getText() })),
        ...missing,
      ].sort((a, b) => compareNames(a.name, b.name));
      const flat = `{ ${specs.map((x) => x.spec).join(", ")} }`;
      const lineFrom = lineStart(text, target.getStart());
      const lineEnd = text.indexOf("\n", target.getEnd());
      const lineLength =
        (lineEnd === -1 ? text.length : lineEnd) -
        lineFrom -
        (bindings.getEnd() - bindings.getStart()) +
        flat.length;
      const indent = indentAt(text, target.getStart());
      edit(
        bindings.getStart(),
        lineLength <= LINE_WIDTH
          ? flat
          : `{\n${specs.map((x) => `${indent}  ${x.spec},\n`).join("")}${indent}}`,
        bindings.getEnd(),
      );
      return merged;
    }
    for (const { name, spec } of missing) {
      const before = named.find((n) => compareNames(name, n.getName()) < 0);
      if (before !== undefined) {
        edit(before.getStart(), `${spec},\n${indentAt(text, before.getStart())}`);
        continue;
      }
      const last = named.at(-1);
      if (last === undefined) {
        continue;
      }
      const after = nextToken(text, last.getEnd());
      if (text.charAt(after) === ",") {
        edit(after + 1, `\n${indentAt(text, last.getStart())}${spec},`);
      } else {
        edit(last.getEnd(), `,\n${indentAt(text, last.getStart())}${spec}`);
      }
    }
    return merged;
  }
  // No value import of the runtime yet: a new line, next to a type import of
  // the runtime (where Biome sorts it), else after the last import.
  const knownDecl = file
    .getImportDeclarations()
    .find((d) => isRuntimeSpecifier(d.getModuleSpecifierValue()));
  const known = knownDecl?.getModuleSpecifierValue();
  let specifier: string;
  if (known?.startsWith(RUNTIME_PACKAGE)) {
    specifier = RUNTIME_PACKAGE;
  } else if (known !== undefined) {
    specifier = known.replace(/[^/]+$/, "index.js");
  } else if (runtimeModule.startsWith("/")) {
    const rel = relative(dirname(file.getFilePath()), runtimeModule).split(sep).join("/");
    specifier = rel.startsWith(".") ? rel : `./${rel}`;
  } else {
    specifier = runtimeModule;
  }
  const line = `import { ${added.join(", ")} } from "${specifier}";`;
  const after =
    knownDecl !== undefined && known === specifier
      ? knownDecl
      : file.getImportDeclarations().at(-1);
  if (after === undefined) {
    edit(0, `${line}\n`);
  } else {
    edit(after.getEnd(), `\n${line}`);
  }
  return { kind: "add", specifier, added, ...names };
}
