/**
 * The planning half of `protoevents sync`: from the handler specs of the
 * contracts and the text of the service sources, decide which stubs and
 * imports each file needs, as exact text edits, and what to report. It reads
 * the sources with ts-morph in memory and never touches the disk, so it is a
 * pure function of its input; {@link applySyncPlan} carries the plan out.
 */
import { relative, sep } from "node:path";
import { Node, Project } from "ts-morph";
import { planRuntimeImport, type RuntimeImportPlan } from "./runtime-import.js";
import {
  findImplementations,
  indentAt,
  lineStart,
  nextToken,
  propertiesByName,
  RUNTIME_PACKAGE,
  type ServiceSource,
} from "./source.js";
import type { HandlerRpc, HandlerSpec, SyncNote } from "./sync-services.js";

/** Replace `[start, end)` of the planned text with `text`; an insertion when `start === end`. */
export interface SyncEdit {
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

/** A stub the plan adds. */
export interface PlannedStub {
  readonly interfaceName: string;
  readonly rpc: HandlerRpc;
  /** Index of the literal it goes into, in {@link findImplementations} of the file. */
  readonly implementation: number;
}

/** The edits of one file. */
export interface FileSyncPlan {
  /** Absolute path. */
  readonly path: string;
  /** The path as reports show it (relative to the working directory). */
  readonly file: string;
  /** The text the edits were planned against. */
  readonly text: string;
  readonly stubs: readonly PlannedStub[];
  readonly runtimeImport: RuntimeImportPlan;
  /** Non-overlapping; edits at the same position apply in this order. */
  readonly edits: readonly SyncEdit[];
}

/** The code a note is about: a literal, or one of its members. */
export interface NoteAnchor {
  /** Absolute path. */
  readonly path: string;
  readonly implementation: number;
  /** The member's name, when the note is about one. */
  readonly property?: string;
}

/** A note, with what it points at so the position can be found again after edits. */
export interface PlannedNote extends SyncNote {
  readonly anchor?: NoteAnchor;
}

/** What a sync would do. */
export interface SyncPlan {
  /** Files that get edits, by path. */
  readonly files: readonly FileSyncPlan[];
  /** Positions (`at`) are in the planned texts. */
  readonly notes: readonly PlannedNote[];
  /** Object literals found implementing a handlers interface. */
  readonly implementations: number;
}

/** Input of {@link planSync}. */
export interface PlanSyncInput {
  /** The service sources, e.g. from {@link readServiceSources}. */
  readonly sources: readonly ServiceSource[];
  /** The handlers interfaces, from {@link handlerSpecs}. */
  readonly specs: readonly HandlerSpec[];
  /** Where `Code` and `ProtoeventsError` come from when a file imports nothing from the runtime. @default "@protoevents/runtime" */
  readonly runtimeModule?: string;
  /** The directories searched, named in the note about an interface nobody implements. */
  readonly servicesDirs: readonly string[];
  /** Paths in the plan are shown relative to this directory. */
  readonly cwd: string;
}

const shownPath = (cwd: string, path: string) => relative(cwd, path).split(sep).join("/");

/** The stub of one rpc: a method that throws a retryable not-implemented error. */
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

/**
 * Plan a sync: for every literal implementing a handlers interface of the
 * specs, a stub for each consumer rpc it lacks (inserted before its closing
 * brace, indented like its members, after a comma the last member may lack),
 * and once per file the runtime import the stubs need; notes for handlers
 * whose rpc is gone, literals sync cannot read (a spread), and interfaces
 * nobody implements. Writes nothing.
 */
export function planSync(input: PlanSyncInput): SyncPlan {
  const project = new Project({
    useInMemoryFileSystem: true,
    skipAddingFilesFromTsConfig: true,
    skipFileDependencyResolution: true,
    skipLoadingLibFiles: true,
  });
  const specs = new Map(input.specs.map((s) => [s.interfaceName, s]));
  const implemented = new Set<string>();
  const files: FileSyncPlan[] = [];
  const notes: PlannedNote[] = [];
  let implementations = 0;

  for (const source of [...input.sources].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    const { path, text } = source;
    const file = project.createSourceFile(path, text, { overwrite: true });
    const found = findImplementations(file);
    if (found.length === 0) {
      continue;
    }
    const shown = shownPath(input.cwd, path);
    const edits: SyncEdit[] = [];
    const edit = (start: number, inserted: string, end = start) => {
      edits.push({ start, end, text: inserted });
    };
    const stubs: PlannedStub[] = [];
    let runtimeImport: RuntimeImportPlan | undefined;
    for (const [implementation, { literal, interfaceName }] of found.entries()) {
      implementations++;
      const note = (kind: SyncNote["kind"], node: Node, message: string, property?: string) => {
        const { line, column } = file.getLineAndColumnAtPos(node.getStart());
        notes.push({
          kind,
          at: `${shown}:${line}:${column}`,
          message,
          anchor: { path, implementation, ...(property === undefined ? {} : { property }) },
        });
      };
      const spec = specs.get(interfaceName);
      if (spec === undefined) {
        note(
          "handler-without-rpc",
          literal,
          `implements ${interfaceName}, but no application of the contracts has consumer rpcs under that name any more (was the service renamed, or were all its rpcs removed?); sync leaves it as it is`,
        );
        continue;
      }
      implemented.add(interfaceName);
      const properties = literal.getProperties();
      const spread = properties.find((p) => Node.isSpreadAssignment(p));
      const names = propertiesByName(literal);
      if (spread === undefined) {
        const rpcMethods = new Set(spec.rpcs.map((r) => r.method));
        for (const [name, node] of names) {
          if (!rpcMethods.has(name)) {
            note(
              "handler-without-rpc",
              node,
              `handler ${name} of ${interfaceName} has no rpc in ${spec.serviceName} any more: delete it once the subscription it served has drained (sync never deletes code)`,
              name,
            );
          }
        }
      }
      const missing = spec.rpcs.filter((r) => !names.has(r.method));
      if (missing.length === 0) {
        continue;
      }
      if (spread !== undefined) {
        note(
          "not-edited",
          literal,
          `implements ${interfaceName} with a spread (${spread.getText()}), so sync cannot tell which handlers it has; add ${missing.map((r) => r.method).join(", ")} yourself if it lacks them`,
        );
        continue;
      }
      runtimeImport ??= planRuntimeImport(file, text, input.runtimeModule ?? RUNTIME_PACKAGE, edit);
      const imports = runtimeImport;
      const close = literal.getEnd() - 1;
      const last = properties.at(-1);
      const closeLine = lineStart(text, close);
      const closeOnOwnLine = text.slice(closeLine, close).trim() === "";
      const indent =
        last !== undefined && text.slice(literal.getStart(), last.getStart()).includes("\n")
          ? indentAt(text, last.getStart())
          : closeOnOwnLine
            ? `${indentAt(text, close)}  `
            : `${indentAt(text, literal.getStart())}  `;
      if (last !== undefined && text.charAt(nextToken(text, last.getEnd())) !== ",") {
        edit(last.getEnd(), ",");
      }
      const texts = missing.map((rpc) => stubText(spec, rpc, indent, imports));
      if (closeOnOwnLine) {
        edit(closeLine, `${texts.join("\n")}\n`);
      } else {
        edit(close, `\n${texts.join("\n")}\n${indentAt(text, close)}`);
      }
      stubs.push(...missing.map((rpc) => ({ interfaceName, rpc, implementation })));
    }
    if (runtimeImport !== undefined) {
      files.push({ path, file: shown, text, stubs, runtimeImport, edits });
    }
  }

  for (const spec of input.specs) {
    if (!implemented.has(spec.interfaceName)) {
      const dirs = input.servicesDirs.map((d) => shownPath(input.cwd, d) || ".").join(", ");
      notes.push({
        kind: "no-implementation",
        message: `no object literal in ${dirs || "(no handler directory)"} implements ${spec.interfaceName} (application ${spec.application}: ${spec.rpcs.map((r) => r.rpc).join(", ")}); write one, e.g. a function returning ${spec.interfaceName} with one method per rpc`,
      });
    }
  }
  return { files, notes, implementations };
}
