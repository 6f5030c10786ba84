/**
 * What `protoevents sync` reads from the service sources: where they are on
 * disk, and, syntactically (ts-morph without type checking, so it takes
 * milliseconds), which object literals implement a generated `…Handlers`
 * interface and what the file already binds and imports. Nothing here edits.
 */
import { readFile } from "node:fs/promises";
import { sep } from "node:path";
import {
  type ImportDeclaration,
  Node,
  type ObjectLiteralExpression,
  Project,
  type SourceFile,
  SyntaxKind,
  type TypeNode,
} from "ts-morph";
import { isGeneratedModule } from "../emit/names.js";

/** One service source file: its absolute path and its exact bytes as text. */
export interface ServiceSource {
  readonly path: string;
  readonly text: string;
}

/**
 * Every `.ts` file under the directories, except tests, declarations,
 * `node_modules` and the excluded directories, sorted by path, with the exact
 * text on disk (edits are planned against these bytes).
 */
export async function readServiceSources(
  dirs: readonly string[],
  exclude: readonly string[],
): Promise<ServiceSource[]> {
  // ts-morph's file system host globs as `Project.addSourceFilesAtPaths` does, without parsing.
  const fs = new Project({
    skipAddingFilesFromTsConfig: true,
    skipFileDependencyResolution: true,
    skipLoadingLibFiles: true,
  }).getFileSystem();
  const paths = new Set<string>();
  for (const dir of dirs) {
    const pattern = dir.split(sep).join("/");
    for (const path of await fs.glob([
      `${pattern}/**/*.ts`,
      `!${pattern}/**/*.test.ts`,
      `!${pattern}/**/*.d.ts`,
      `!${pattern}/**/node_modules/**`,
      ...exclude.map((e) => `!${e.split(sep).join("/")}/**`),
    ])) {
      paths.add(path);
    }
  }
  const sorted = [...paths].sort((a, b) => (a < b ? -1 : 1));
  return Promise.all(sorted.map(async (path) => ({ path, text: await readFile(path, "utf8") })));
}

/** A module the runtime's `Code` and `ProtoeventsError` can be imported from. */
export const RUNTIME_MODULE =
  /(^@protoevents\/runtime(\/errors)?$)|(\/runtime\/src\/(index|errors)(\.[jt]s)?$)/;

/** The runtime package, whose root exports `Code` and `ProtoeventsError`. */
export const RUNTIME_PACKAGE = "@protoevents/runtime";

/** Whether a module specifier is the runtime package or one of its modules. */
export function isRuntimeSpecifier(specifier: string): boolean {
  return specifier.startsWith(RUNTIME_PACKAGE) || /\/runtime\/src\/[^/]+$/.test(specifier);
}

/** An object literal that implements a generated handlers interface. */
export interface Implementation {
  readonly literal: ObjectLiteralExpression;
  /** The interface's exported name, e.g. `PaymentServiceHandlers` (even when imported under an alias). */
  readonly interfaceName: string;
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

function isFunctionLike(node: Node): boolean {
  return (
    Node.isFunctionDeclaration(node) ||
    Node.isFunctionExpression(node) ||
    Node.isArrowFunction(node) ||
    Node.isMethodDeclaration(node)
  );
}

/**
 * Every object literal of the file that implements a generated handlers
 * interface, in document order: returned from a function declared to return
 * `XHandlers<…>`, assigned to a variable typed `XHandlers<…>`, or checked with
 * `satisfies XHandlers<…>`, where `XHandlers` is imported from a generated
 * `…_pe` module. Adding properties to the literals or imports to the file
 * leaves this list (and its order) as it was, so an index into it names the
 * same literal before and after a sync edits the file.
 */
export function findImplementations(file: SourceFile): Implementation[] {
  const imported = new Map<string, string>();
  for (const decl of file.getImportDeclarations()) {
    if (!isGeneratedModule(decl.getModuleSpecifierValue())) {
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
  const found: Implementation[] = [];
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
        if (ret.getFirstAncestor(isFunctionLike) === node) {
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

/** Names bound by the file's imports and top-level declarations, with the import binding each. */
export function boundNames(file: SourceFile): Map<string, ImportDeclaration | undefined> {
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

/** The name of an object literal member (`a: …`, `a() {}`, `a`, `get a()`, `"a": …`), if it has a static one. */
export function propertyName(node: Node): string | undefined {
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
 * The members of a literal by name; when a name repeats, the last one (the
 * one that wins at run time).
 */
export function propertiesByName(literal: ObjectLiteralExpression): Map<string, Node> {
  const names = new Map<string, Node>();
  for (const p of literal.getProperties()) {
    const name = propertyName(p);
    if (name !== undefined) {
      names.set(name, p);
    }
  }
  return names;
}

/** The start of the line `pos` is on. */
export function lineStart(text: string, pos: number): number {
  return text.lastIndexOf("\n", pos - 1) + 1;
}

/** The whitespace that starts the line `pos` is on. */
export function indentAt(text: string, pos: number): string {
  return /^[ \t]*/.exec(text.slice(lineStart(text, pos)))?.[0] ?? "";
}

/** The position of the next token after `pos`, skipping whitespace and comments. */
export function nextToken(text: string, pos: number): number {
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
