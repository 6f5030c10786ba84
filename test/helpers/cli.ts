import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { TS_NODE_ARGS } from "../../services/lib/node-args.js";

/** The repository root. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** A finished command. */
export interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of {@link protoevents} and {@link checkout}. */
export interface RunOptions {
  /** @default the repository root */
  readonly cwd?: string;
  /** Added to this process's environment. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** @default 120 s */
  readonly timeoutMs?: number;
}

async function runTs(file: string, args: readonly string[], options: RunOptions): Promise<Run> {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [...TS_NODE_ARGS, join(ROOT, file), ...args],
      {
        cwd: options.cwd ?? ROOT,
        env: { ...process.env, ...options.env },
        timeout: options.timeoutMs ?? 120_000,
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

/** Run the `protoevents` CLI (from its sources) and collect what it printed. */
export function protoevents(args: readonly string[], options: RunOptions = {}): Promise<Run> {
  return runTs("test/helpers/protoevents-main.ts", args, options);
}

/** Run the checkout example's own CLI (`start`, `service`, `demo`). */
export function checkout(args: readonly string[], options: RunOptions = {}): Promise<Run> {
  return runTs("services/supervisor/main.ts", args, options);
}

/** The command line that runs the checkout example's CLI, for tests that watch it run. */
export const CHECKOUT_COMMAND: readonly string[] = [
  ...TS_NODE_ARGS,
  join(ROOT, "services/supervisor/main.ts"),
];
