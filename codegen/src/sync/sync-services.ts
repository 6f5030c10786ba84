/**
 * `protoevents sync`: keeps the hand-written service implementations in
 * step with the contracts. When an application gains a consumer rpc, the
 * object literal that implements its generated `…Handlers` interface gets a
 * typed stub that throws a clear not-implemented error; handlers whose rpc
 * is gone are reported, never deleted.
 *
 * The implementations are found syntactically with ts-morph (no type
 * checking, so it takes milliseconds): object literals returned from a
 * function declared to return `XHandlers<…>`, assigned to a variable typed
 * `XHandlers<…>`, or checked with `satisfies XHandlers<…>`, where
 * `XHandlers` is imported from a generated `…_pe` module. Edits are text
 * insertions at positions of the original file, so every other byte stays
 * as the user wrote it; a second run finds nothing to add.
 */
import { readFile, writeFile } from "node:fs/promises";
import { dirname, relative, sep } from "node:path";
import {
  type ImportDeclaration,
  Node,
  type ObjectLiteralExpression,
  Project,
  type SourceFile,
  SyntaxKind,
  type TypeNode,
} from "ts-morph";
import type { ContractModel } from "../model.js";

/** One consumer rpc an implementation must handle. */
export interface HandlerRpc {
  /** The handler method, e.g. `chargeOrder`. */
  readonly method: string;
  /** The rpc, e.g. `ChargeOrder`. */
  readonly rpc: string;
  readonly subscription: string;
  /** Full name of the event consumed. */
  readonly event: string;
  /** Its dead-letter topic; undefined when dead-lettering is off. */
  readonly deadLetterTopic: string | undefined;
}

/** The generated handlers interface of one application service and its rpcs. */
export interface HandlerSpec {
  /** e.g. `PaymentServiceHandlers`. */
  readonly interfaceName: string;
  /** Short name of the service, e.g. `PaymentService`. */
  readonly serviceName: string;
  readonly application: string;
  readonly rpcs: readonly HandlerRpc[];
}

/** A stub sync added (or would add, on a dry run). */
export interface StubAdded {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly interfaceName: string;
  readonly rpc: HandlerRpc;
}

/** Something sync reports without changing it. */
export interface SyncNote {
  readonly kind: "handler-without-rpc" | "no-implementation" | "not-edited";
  /** `file:line:column`, when it is about a place in the code. */
  readonly at?: string;
  readonly message: string;
}

/** What a sync did. */
export interface SyncReport {
  readonly added: readonly StubAdded[];
  readonly notes: readonly SyncNote[];
  /** Files written (none on a dry run). */
  readonly filesChanged: readonly string[];
  /** Object literals found implementing a handlers interface. */
  readonly implementations: number;
}

/** Options of {@link syncServices}. */
export interface SyncOptions {
  /** The directory (or directories) of the service implementations, e.g. `services`. */
  readonly servicesDir: string | readonly string[];
  /** Directories under those never searched, e.g. the generated code. */
  readonly exclude?: readonly string[];
  /** The handlers interfaces, from {@link handlerSpecs}. */
  readonly specs: readonly HandlerSpec[];
  /**
   * Where `Code` and `ProtoeventsError` come from when a file imports
   * nothing from the runtime yet: a package name, or an absolute path of the
   * runtime's `index.js` (made relative to each file).
   * @default "@protoevents/runtime"
   */
  readonly runtimeModule?: string;
  /** Find and report, but write nothing. */
  readonly dryRun?: boolean;
  /** Paths in the report are relative to this directory. @default process.cwd() */
  readonly cwd?: string;
}

/** The handlers interface of every application that has consumer rpcs, as the contract model names them. */
export function handlerSpecs(model: ContractModel): HandlerSpec[] {
  return model.applications
    .filter((app) => app.subscriptions.length > 0)
    .map((app) => ({
      interfaceName: app.handlersInterface,
      serviceName: app.service.name,
      application: app.name,
      rpcs: app.subscriptions.map((s) => ({
        method: s.handlerMethod,
        rpc: s.method.name,
        subscription: s.name,
        event: s.event.desc.typeName,
        deadLetterTopic: s.deadLetterIds?.topic,
      })),
    }));
}

/** A module the runtime's `Code` and `ProtoeventsError` can be imported from. */
const RUNTIME_MODULE =
  /(^@protoevents\/runtime(\/errors)?$)|(\/runtime\/src\/(index|errors)(\.[jt]s)?$)/;

/** The runtime package, whose root exports `Code` and `ProtoeventsError`. */
const RUNTIME_PACKAGE = "@protoevents/runtime";

/** Whether a module specifier is the runtime package or one of its modules. */
function isRuntimeSpecifier(specifier: string): boolean {
  return specifier.startsWith(RUNTIME_PACKAGE) || /\/runtime\/src\/[^/]+$/.test(specifier);
}
/** A generated module of protoc-gen-protoevents. */
const GENERATED_MODULE = /_pe(\.[jt]s)?$/;

/** An edit: insert `text` at `pos`, replacing up to `end` when set. */
interface Insertion {
  readonly pos: number;
  readonly end?: number;
  readonly text: string;
  readonly seq: number;
}

/** Biome's line width (biome.json). */
const LINE_WIDTH = 100;

function lineStart(text: string, pos: number): number {
  return text.lastIndexOf("\n", pos - 1) + 1;
}

function indentAt(text: string, pos: number): string {
  return /^[ \t]*/.exec(text.slice(lineStart(text, pos)))?.[0] ?? "";
}

/** The position of the next token after `pos`, skipping whitespace and comments. */
function nextToken(text: string, pos: number): number {
  let i = pos;
  while (i < text.length) {
    if (/\s/.test(text.charAt(i))) {
      i++;
    } else if (text.startsWith("//", i)) {
      const end = text.indexOf("\n", i);
      i = end === -1 ? text.length : end;
    } else if (text.startsWith("/*", i)) {
      const end = text.indexOf("*/", i + 2);
      i = end === -1 ? text.length : end + 2;
    } else {
      return i;
    }
  }
  return i;
}

/** Biome's order of named imports: case-insensitive, then by case. */
function compareNames(a: string, b: string): number {
  const [la, lb] = [a.toLowerCase(), b.toLowerCase()];
  if (la !== lb) {
    return la < lb ? -1 : 1;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The name of a `…Handlers` interface a type node refers to, if it is one imported from generated code. */
function handlersName(type: TypeNode | undefined, imported: ReadonlyMap<string, string>) {
  if (type === undefined || !Node.isTypeReference(type)) {
    return undefined;
  }
  return imported.get(type.getTypeName().getText());
}

/** Unwrap `( … )`, `… as T` and `… satisfies T` down to an object literal. */
function objectLiteral(node: Node | undefined): ObjectLiteralExpression | undefined {
  let current = node;
  while (
    current !== undefined &&
    (Node.isParenthesizedExpression(current) ||
      Node.isAsExpression(current) ||
      Node.isSatisfiesExpression(current))
  ) {
    current = current.getExpression();
  }
  return current !== undefined && Node.isObjectLiteralExpression(current) ? current : undefined;
}

/** Every object literal of the file that implements a generated handlers interface. */
function findImplementations(
  file: SourceFile,
): Array<{ literal: ObjectLiteralExpression; interfaceName: string }> {
  const imported = new Map<string, string>();
  for (const decl of file.getImportDeclarations()) {
    if (!GENERATED_MODULE.test(decl.getModuleSpecifierValue())) {
      continue;
    }
    for (const named of decl.getNamedImports()) {
      const name = named.getName();
      if (name.endsWith("Handlers")) {
        imported.set(named.getAliasNode()?.getText() ?? name, name);
      }
    }
  }
  if (imported.size === 0) {
    return [];
  }
  const found: Array<{ literal: ObjectLiteralExpression; interfaceName: string }> = [];
  const add = (node: Node | undefined, interfaceName: string | undefined) => {
    const literal = objectLiteral(node);
    if (
      literal !== undefined &&
      interfaceName !== undefined &&
      !found.some((f) => f.literal === literal)
    ) {
      found.push({ literal, interfaceName });
    }
  };
  file.forEachDescendant((node) => {
    if (
      Node.isFunctionDeclaration(node) ||
      Node.isFunctionExpression(node) ||
      Node.isArrowFunction(node) ||
      Node.isMethodDeclaration(node)
    ) {
      const name = handlersName(node.getReturnTypeNode(), imported);
      if (name === undefined) {
        return;
      }
      const body = node.getBody();
      if (body !== undefined && !Node.isBlock(body)) {
        add(body, name);
        return;
      }
      for (const ret of body?.getDescendantsOfKind(SyntaxKind.ReturnStatement) ?? []) {
        const owner = ret.getFirstAncestor(
          (a) =>
            Node.isFunctionDeclaration(a) ||
            Node.isFunctionExpression(a) ||
            Node.isArrowFunction(a) ||
            Node.isMethodDeclaration(a),
        );
        if (owner === node) {
          add(ret.getExpression(), name);
        }
      }
    } else if (Node.isVariableDeclaration(node)) {
      add(node.getInitializer(), handlersName(node.getTypeNode(), imported));
    } else if (Node.isSatisfiesExpression(node)) {
      add(node.getExpression(), handlersName(node.getTypeNode(), imported));
    }
  });
  return found;
}

/** Names bound by the file's imports and top-level declarations. */
function boundNames(file: SourceFile): Map<string, ImportDeclaration | undefined> {
  const names = new Map<string, ImportDeclaration | undefined>();
  for (const decl of file.getImportDeclarations()) {
    const def = decl.getDefaultImport();
    if (def !== undefined) {
      names.set(def.getText(), decl);
    }
    const ns = decl.getNamespaceImport();
    if (ns !== undefined) {
      names.set(ns.getText(), decl);
    }
    for (const named of decl.getNamedImports()) {
      names.set(named.getAliasNode()?.getText() ?? named.getName(), decl);
    }
  }
  for (const statement of file.getStatements()) {
    if (Node.isVariableStatement(statement)) {
      for (const d of statement.getDeclarations()) {
        names.set(d.getName(), undefined);
      }
    } else if (
      Node.isFunctionDeclaration(statement) ||
      Node.isClassDeclaration(statement) ||
      Node.isEnumDeclaration(statement)
    ) {
      const name = statement.getName();
      if (name !== undefined) {
        names.set(name, undefined);
      }
    }
  }
  return names;
}

/**
 * Make `Code` and `ProtoeventsError` of the runtime available in the file:
 * reuse imported ones, add them to an import of the runtime in Biome's
 * order, or add an import line after the last import. Returns the local
 * names to use.
 */
function ensureRuntimeImports(
  file: SourceFile,
  text: string,
  runtimeModule: string,
  insert: (pos: number, text: string, end?: number) => void,
): { code: string; error: string } {
  const bound = boundNames(file);
  const local: Record<"Code" | "ProtoeventsError", string> = {
    Code: "Code",
    ProtoeventsError: "ProtoeventsError",
  };
  const missing: Array<{ name: string; spec: string }> = [];
  for (const name of ["Code", "ProtoeventsError"] as const) {
    const fromRuntime = file
      .getImportDeclarations()
      .filter((d) => !d.isTypeOnly() && isRuntimeSpecifier(d.getModuleSpecifierValue()))
      .flatMap((d) => d.getNamedImports())
      .find((n) => n.getName() === name && !n.isTypeOnly());
    if (fromRuntime !== undefined) {
      local[name] = fromRuntime.getAliasNode()?.getText() ?? name;
      continue;
    }
    const alias = bound.has(name) ? `Protoevents${name}` : name;
    local[name] = alias;
    missing.push({ name, spec: alias === name ? name : `${name} as ${alias}` });
  }
  if (missing.length === 0) {
    return { code: local.Code, error: local.ProtoeventsError };
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
    const named = target.getNamedImports();
    const first = named[0];
    const multiline =
      first !== undefined && text.slice(target.getStart(), first.getStart()).includes("\n");
    if (!multiline) {
      // One line: rewrite the braces, wrapped the way Biome wraps them when the line gets too long.
      const bindings = target.getImportClause()?.getNamedBindings();
      if (bindings === undefined) {
        return { code: local.Code, error: local.ProtoeventsError };
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
      insert(
        bindings.getStart(),
        lineLength <= LINE_WIDTH
          ? flat
          : `{\n${specs.map((x) => `${indent}  ${x.spec},\n`).join("")}${indent}}`,
        bindings.getEnd(),
      );
      return { code: local.Code, error: local.ProtoeventsError };
    }
    for (const { name, spec } of missing) {
      const before = named.find((n) => compareNames(name, n.getName()) < 0);
      if (before !== undefined) {
        insert(before.getStart(), `${spec},\n${indentAt(text, before.getStart())}`);
        continue;
      }
      const last = named.at(-1);
      if (last === undefined) {
        continue;
      }
      const after = nextToken(text, last.getEnd());
      if (text.charAt(after) === ",") {
        insert(after + 1, `\n${indentAt(text, last.getStart())}${spec},`);
      } else {
        insert(last.getEnd(), `,\n${indentAt(text, last.getStart())}${spec}`);
      }
    }
    return { code: local.Code, error: local.ProtoeventsError };
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
  const line = `import { ${missing.map((m) => m.spec).join(", ")} } from "${specifier}";`;
  const lastImport =
    knownDecl !== undefined && knownDecl.getModuleSpecifierValue() === specifier
      ? knownDecl
      : file.getImportDeclarations().at(-1);
  if (lastImport === undefined) {
    insert(0, `${line}\n`);
  } else {
    insert(lastImport.getEnd(), `\n${line}`);
  }
  return { code: local.Code, error: local.ProtoeventsError };
}

function stubText(
  spec: HandlerSpec,
  rpc: HandlerRpc,
  indent: string,
  names: { code: string; error: string },
): string {
  const message =
    `not implemented: ${spec.serviceName}.${rpc.rpc} (subscription ${rpc.subscription}, event ${rpc.event}) has no handler yet. ` +
    `protoevents sync added this stub when the contract gained the rpc: implement it; until then every delivery fails and is retried` +
    (rpc.deadLetterTopic === undefined ? "." : `, then dead-lettered to ${rpc.deadLetterTopic}.`);
  return [
    `${indent}async ${rpc.method}(_event, _context) {`,
    `${indent}  throw new ${names.error}(`,
    `${indent}    ${names.code}.HandlerFailed,`,
    `${indent}    ${JSON.stringify(message)},`,
    `${indent}  );`,
    `${indent}},`,
  ].join("\n");
}

function propertyName(node: Node): string | undefined {
  if (
    Node.isPropertyAssignment(node) ||
    Node.isMethodDeclaration(node) ||
    Node.isShorthandPropertyAssignment(node) ||
    Node.isGetAccessorDeclaration(node)
  ) {
    const name = node.getNameNode();
    if (Node.isIdentifier(name)) {
      return name.getText();
    }
    if (Node.isStringLiteral(name) || Node.isNoSubstitutionTemplateLiteral(name)) {
      return name.getLiteralText();
    }
  }
  return undefined;
}

/**
 * Add a stub for every consumer rpc an implementation lacks, and report
 * handlers whose rpc is gone and interfaces nobody implements.
 */
export async function syncServices(options: SyncOptions): Promise<SyncReport> {
  const cwd = options.cwd ?? process.cwd();
  const project = new Project({
    skipAddingFilesFromTsConfig: true,
    skipFileDependencyResolution: true,
    skipLoadingLibFiles: true,
  });
  const dirs =
    typeof options.servicesDir === "string" ? [options.servicesDir] : options.servicesDir;
  for (const dir of dirs) {
    const pattern = dir.split(sep).join("/");
    project.addSourceFilesAtPaths([
      `${pattern}/**/*.ts`,
      `!${pattern}/**/*.test.ts`,
      `!${pattern}/**/*.d.ts`,
      `!${pattern}/**/node_modules/**`,
      ...(options.exclude ?? []).map((e) => `!${e.split(sep).join("/")}/**`),
    ]);
  }
  const specs = new Map(options.specs.map((s) => [s.interfaceName, s]));
  const implemented = new Set<string>();
  const added: StubAdded[] = [];
  const notes: SyncNote[] = [];
  const filesChanged: string[] = [];
  let implementations = 0;

  for (const file of project
    .getSourceFiles()
    .sort((a, b) => (a.getFilePath() < b.getFilePath() ? -1 : 1))) {
    const found = findImplementations(file);
    if (found.length === 0) {
      continue;
    }
    const path = file.getFilePath();
    const shown = relative(cwd, path).split(sep).join("/");
    // The exact bytes on disk: ts-morph's text is the same, but edits go to these.
    const text = await readFile(path, "utf8");
    const insertions: Insertion[] = [];
    const insert = (pos: number, inserted: string, end?: number) => {
      insertions.push({
        pos,
        text: inserted,
        seq: insertions.length,
        ...(end === undefined ? {} : { end }),
      });
    };
    let runtimeNames: { code: string; error: string } | undefined;
    for (const { literal, interfaceName } of found) {
      implementations++;
      const where = (node: Node) => {
        const { line, column } = file.getLineAndColumnAtPos(node.getStart());
        return `${shown}:${line}:${column}`;
      };
      const spec = specs.get(interfaceName);
      if (spec === undefined) {
        notes.push({
          kind: "handler-without-rpc",
          at: where(literal),
          message: `implements ${interfaceName}, but no application of the contracts has consumer rpcs under that name any more (was the service renamed, or were all its rpcs removed?); sync leaves it as it is`,
        });
        continue;
      }
      implemented.add(interfaceName);
      const properties = literal.getProperties();
      const spread = properties.find((p) => Node.isSpreadAssignment(p));
      const names = new Map<string, Node>();
      for (const p of properties) {
        const name = propertyName(p);
        if (name !== undefined) {
          names.set(name, p);
        }
      }
      if (spread === undefined) {
        const rpcMethods = new Set(spec.rpcs.map((r) => r.method));
        for (const [name, node] of names) {
          if (!rpcMethods.has(name)) {
            notes.push({
              kind: "handler-without-rpc",
              at: where(node),
              message: `handler ${name} of ${interfaceName} has no rpc in ${spec.serviceName} any more: delete it once the subscription it served has drained (sync never deletes code)`,
            });
          }
        }
      }
      const missing = spec.rpcs.filter((r) => !names.has(r.method));
      if (missing.length === 0) {
        continue;
      }
      if (spread !== undefined) {
        notes.push({
          kind: "not-edited",
          at: where(literal),
          message: `implements ${interfaceName} with a spread (${spread.getText()}), so sync cannot tell which handlers it has; add ${missing.map((r) => r.method).join(", ")} yourself if it lacks them`,
        });
        continue;
      }
      runtimeNames ??= ensureRuntimeImports(
        file,
        text,
        options.runtimeModule ?? RUNTIME_PACKAGE,
        insert,
      );
      const close = literal.getEnd() - 1;
      const last = properties.at(-1);
      const closeLine = lineStart(text, close);
      const closeOnOwnLine = text.slice(closeLine, close).trim() === "";
      const baseIndent = indentAt(text, literal.getStart());
      const indent =
        last !== undefined && text.slice(literal.getStart(), last.getStart()).includes("\n")
          ? indentAt(text, last.getStart())
          : closeOnOwnLine
            ? `${indentAt(text, close)}  `
            : `${baseIndent}  `;
      if (last !== undefined && text.charAt(nextToken(text, last.getEnd())) !== ",") {
        insert(last.getEnd(), ",");
      }
      const stubs = missing.map((rpc) =>
        stubText(spec, rpc, indent, runtimeNames ?? { code: "Code", error: "ProtoeventsError" }),
      );
      if (closeOnOwnLine) {
        insert(closeLine, `${stubs.join("\n")}\n`);
      } else {
        insert(close, `\n${stubs.join("\n")}\n${indentAt(text, close)}`);
      }
      for (const rpc of missing) {
        added.push({ file: shown, line: 0, column: indent.length + 1, interfaceName, rpc });
      }
    }
    if (insertions.length === 0) {
      continue;
    }
    let edited = text;
    for (const ins of [...insertions].sort((a, b) => b.pos - a.pos || b.seq - a.seq)) {
      edited = edited.slice(0, ins.pos) + ins.text + edited.slice(ins.end ?? ins.pos);
    }
    // Report each stub at its line in the edited file.
    for (const [i, a] of added.entries()) {
      if (a.file === shown && a.line === 0) {
        const at = edited.indexOf(`async ${a.rpc.method}(_event, _context) {`);
        added[i] = { ...a, line: edited.slice(0, at).split("\n").length };
      }
    }
    if (options.dryRun !== true) {
      await writeFile(path, edited);
      filesChanged.push(shown);
    }
  }

  for (const spec of options.specs) {
    if (!implemented.has(spec.interfaceName)) {
      notes.push({
        kind: "no-implementation",
        message: `no object literal in ${dirs.map((d) => relative(cwd, d).split(sep).join("/") || ".").join(", ") || "(no handler directory)"} implements ${spec.interfaceName} (application ${spec.application}: ${spec.rpcs.map((r) => r.rpc).join(", ")}); write one, e.g. a function returning ${spec.interfaceName} with one method per rpc`,
      });
    }
  }
  return { added, notes, filesChanged, implementations };
}

/** What a sync did, as lines for the terminal. */
export function formatSyncReport(report: SyncReport, dryRun = false): string {
  const lines: string[] = [];
  for (const a of report.added) {
    lines.push(
      `${a.file}:${a.line}:${a.column}: ${dryRun ? "would add" : "added"} stub ${a.rpc.method} to ${a.interfaceName} for rpc ${a.rpc.rpc} (subscription ${a.rpc.subscription}): implement it`,
    );
  }
  for (const n of report.notes) {
    lines.push(`${n.at === undefined ? "" : `${n.at}: `}${n.kind}: ${n.message}`);
  }
  const stubs = report.added.length;
  lines.push(
    stubs === 0
      ? `sync: ${report.implementations} implementation${report.implementations === 1 ? "" : "s"} up to date with the contracts`
      : `sync: ${dryRun ? "would add" : "added"} ${stubs} stub${stubs === 1 ? "" : "s"}${dryRun ? "" : ` in ${report.filesChanged.join(", ")}`}`,
  );
  return lines.join("\n");
}
