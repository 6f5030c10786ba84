/**
 * The applying half of `protoevents sync`: carry out a {@link SyncPlan} with
 * ts-morph and save the files, then read every reported position off the
 * edited syntax tree, so the report points at the stubs (and notes) where
 * they are in the files as written.
 */
import { readFile } from "node:fs/promises";
import { Code, ProtoeventsError } from "@protoevents/runtime/errors";
import { type Node, Project, type SourceFile } from "ts-morph";
import type { FileSyncPlan, SyncPlan } from "./plan.js";
import { findImplementations, propertiesByName } from "./source.js";
import type { StubAdded, SyncNote, SyncReport } from "./sync-services.js";

/** Options of {@link applySyncPlan}. */
export interface ApplySyncOptions {
  /**
   * Save the edited files. When false (a dry run) the edits are applied to
   * an in-memory copy only, so the report still says where each stub would go.
   * @default true
   */
  readonly write?: boolean;
}

/** The node an anchor names in a file's implementations, or undefined when it is not there. */
function anchored(
  file: SourceFile,
  implementation: number,
  interfaceName: string | undefined,
  property: string | undefined,
): Node | undefined {
  const found = findImplementations(file)[implementation];
  if (
    found === undefined ||
    (interfaceName !== undefined && found.interfaceName !== interfaceName)
  ) {
    return undefined;
  }
  return property === undefined ? found.literal : propertiesByName(found.literal).get(property);
}

function position(file: SourceFile, shown: string, node: Node): string {
  const { line, column } = file.getLineAndColumnAtPos(node.getStart());
  return `${shown}:${line}:${column}`;
}

/** The edits are planned against `plan.text`; refuse anything else. */
function checkEdits(plan: FileSyncPlan): void {
  let end = 0;
  for (const edit of plan.edits) {
    if (edit.start > edit.end || edit.end > plan.text.length) {
      throw new ProtoeventsError(
        Code.Internal,
        `sync planned an edit of ${plan.file} outside the file (${edit.start}–${edit.end} of ${plan.text.length})`,
      );
    }
  }
  for (const edit of [...plan.edits].sort((a, b) => a.start - b.start)) {
    if (edit.start < end) {
      throw new ProtoeventsError(
        Code.Internal,
        `sync planned overlapping edits of ${plan.file} at ${edit.start}`,
      );
    }
    end = edit.end;
  }
}

/**
 * Apply the plan's edits, file by file, and save the files (unless
 * `write: false`). A file whose text on disk is no longer the one planned
 * against is refused before anything is saved.
 *
 * @throws ProtoeventsError `invalid_argument` when a file changed since it was planned.
 */
export async function applySyncPlan(
  plan: SyncPlan,
  options: ApplySyncOptions = {},
): Promise<SyncReport> {
  const write = options.write ?? true;
  const project = new Project({
    useInMemoryFileSystem: !write,
    skipAddingFilesFromTsConfig: true,
    skipFileDependencyResolution: true,
    skipLoadingLibFiles: true,
  });
  if (write) {
    for (const file of plan.files) {
      if ((await readFile(file.path, "utf8")) !== file.text) {
        throw new ProtoeventsError(
          Code.InvalidArgument,
          `${file.file} changed after sync read it; nothing was written: run sync again`,
        );
      }
    }
  }
  const added: StubAdded[] = [];
  const edited = new Map<string, { file: SourceFile; shown: string }>();
  for (const filePlan of plan.files) {
    checkEdits(filePlan);
    const file = project.createSourceFile(filePlan.path, filePlan.text, { overwrite: true });
    file.applyTextChanges(
      filePlan.edits.map((e) => ({
        span: { start: e.start, length: e.end - e.start },
        newText: e.text,
      })),
    );
    edited.set(filePlan.path, { file, shown: filePlan.file });
    for (const stub of filePlan.stubs) {
      const node = anchored(file, stub.implementation, stub.interfaceName, stub.rpc.method);
      if (node === undefined) {
        throw new ProtoeventsError(
          Code.Internal,
          `sync added ${stub.rpc.method} to ${stub.interfaceName} in ${filePlan.file}, but the edited file has no such member`,
        );
      }
      const { line, column } = file.getLineAndColumnAtPos(node.getStart());
      added.push({
        file: filePlan.file,
        line,
        column,
        interfaceName: stub.interfaceName,
        rpc: stub.rpc,
      });
    }
  }
  // A note about a file that was edited points where the code is now.
  const notes = plan.notes.map(({ anchor, ...note }): SyncNote => {
    const target = anchor === undefined ? undefined : edited.get(anchor.path);
    if (anchor === undefined || target === undefined) {
      return note;
    }
    const node = anchored(target.file, anchor.implementation, undefined, anchor.property);
    if (node === undefined) {
      throw new ProtoeventsError(
        Code.Internal,
        `sync lost track of ${anchor.property ?? "an implementation"} in ${target.shown} while editing it (${note.at ?? ""})`,
      );
    }
    return { ...note, at: position(target.file, target.shown, node) };
  });
  const filesChanged: string[] = [];
  if (write) {
    for (const { file, shown } of edited.values()) {
      await file.save();
      filesChanged.push(shown);
    }
  }
  return { added, notes, filesChanged, implementations: plan.implementations };
}
