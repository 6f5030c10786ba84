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

async function runNode(nodeArgs: readonly string[], options: RunOptions): Promise<Run> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, nodeArgs, {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, ...options.env },
      timeout: options.timeoutMs ?? 120_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

/**
 * Run the `protoevents` command as it is installed (`cli/bin/protoevents`,
 * built JavaScript; the run's global setup brings dist/ up to date) and
 * collect what it printed.
 */
export function protoevents(args: readonly string[], options: RunOptions = {}): Promise<Run> {
  return runNode([join(ROOT, "cli", "bin", "protoevents"), ...args], options);
}

/** Run the checkout example's own CLI (`start`, `service`, `demo`). */
export function checkout(args: readonly string[], options: RunOptions = {}): Promise<Run> {
  return runNode([...TS_NODE_ARGS, join(ROOT, "services/supervisor/main.ts"), ...args], options);
}

/** The command line that runs the checkout example's CLI, for tests that watch it run. */
export const CHECKOUT_COMMAND: readonly string[] = [
  ...TS_NODE_ARGS,
  join(ROOT, "services/supervisor/main.ts"),
];
