/**
 * A local emulator, announced to the other shells of a repository: `npm
 * start` and `protoevents emulator` write where their emulator listens and
 * which project they provisioned, so `protoevents dlq` or `provision` in a
 * second terminal use it without copying environment variables.
 *
 * The note lives in `node_modules/.cache/protoevents/emulator.json` under the
 * repository root: ignored by git wherever `node_modules` is, private to the
 * checkout, and gone with `node_modules`. It is trusted only while the
 * process that wrote it is alive and the emulator answers, and only for a
 * loopback address.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { emulatorAnswers } from "./emulator.js";

/** What a running local emulator's owner announces. */
export interface LocalEmulator {
  /** `host:port` of the emulator, a loopback address. */
  readonly endpoint: string;
  /** The project it was provisioned in. */
  readonly project: string;
  /** PID of the process that owns the emulator (not the JVM's). */
  readonly pid: number;
  /** Who started it, for messages: `npm start`, `protoevents emulator`. */
  readonly owner: string;
}

/** Where the announcement of the repository at `root` is kept. */
export function localEmulatorFile(root: string): string {
  return join(root, "node_modules", ".cache", "protoevents", "emulator.json");
}

/** Largest announcement we read: a few hundred bytes are expected. */
const MAX_FILE_BYTES = 4_096;

const LOOPBACK_ENDPOINT = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[::1\]):\d{1,5}$/;

/**
 * Announce `emulator` for the repository at `root`. Returns the function that
 * withdraws it (only while the note is still ours: a later owner's stays).
 * Does nothing, and withdraws nothing, when the repository has no
 * `node_modules` (nothing is installed there to read it).
 */
export function announceLocalEmulator(root: string, emulator: LocalEmulator): () => void {
  const file = localEmulatorFile(root);
  try {
    if (!statSync(join(root, "node_modules")).isDirectory()) {
      return () => {};
    }
    mkdirSync(join(root, "node_modules", ".cache", "protoevents"), { recursive: true });
    // Write then rename, so a reader never sees half a file.
    const partial = `${file}.${process.pid}.tmp`;
    writeFileSync(partial, `${JSON.stringify(emulator, null, 2)}\n`, { mode: 0o600 });
    renameSync(partial, file);
  } catch {
    // Announcing is a convenience; a read-only checkout just goes without.
    return () => {};
  }
  return () => {
    const current = parse(readNote(file));
    if (current?.pid === emulator.pid && current.endpoint === emulator.endpoint) {
      rmSync(file, { force: true });
    }
  };
}

/**
 * The emulator announced for the repository at `root`, when its owner is
 * still running and it answers; otherwise undefined (a stale note is left
 * for its owner's successor to overwrite).
 */
export async function findLocalEmulator(root: string): Promise<LocalEmulator | undefined> {
  const note = parse(readNote(localEmulatorFile(root)));
  if (note === undefined || !alive(note.pid)) {
    return undefined;
  }
  return (await emulatorAnswers(note.endpoint)) ? note : undefined;
}

function readNote(file: string): string | undefined {
  try {
    if (statSync(file).size > MAX_FILE_BYTES) {
      return undefined;
    }
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

function parse(text: string | undefined): LocalEmulator | undefined {
  if (text === undefined) {
    return undefined;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) {
    return undefined;
  }
  const { endpoint, project, pid, owner } = value as Record<string, unknown>;
  if (
    typeof endpoint !== "string" ||
    !LOOPBACK_ENDPOINT.test(endpoint) ||
    typeof project !== "string" ||
    !/^[A-Za-z0-9._:-]{1,100}$/.test(project) ||
    typeof pid !== "number" ||
    !Number.isSafeInteger(pid) ||
    pid <= 0 ||
    typeof owner !== "string" ||
    owner.length > 100
  ) {
    return undefined;
  }
  return { endpoint, project, pid, owner };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
