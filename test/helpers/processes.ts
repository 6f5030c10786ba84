import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { TS_NODE_ARGS } from "../../services/lib/node-args.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** A TypeScript file of the repository running in its own Node.js process (through tsx). */
export interface TestProcess {
  readonly child: ChildProcess;
  /** Everything it printed so far. */
  output(): string;
  /** Resolves with its exit code or signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once it printed `line` on a line of its own. */
  waitFor(line: string, timeoutMs?: number): Promise<void>;
  /** Resolves with the first printed line matching `pattern`. */
  waitForMatch(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGTERM, then wait for the exit. */
  stop(): Promise<void>;
}

export function startTsProcess(
  file: string,
  env: Record<string, string>,
  nodeArgs: readonly string[] = [],
  args: readonly string[] = [],
  cwd: string = root,
): TestProcess {
  const child = spawn(process.execPath, [...nodeArgs, ...TS_NODE_ARGS, join(root, file), ...args], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const listeners = new Set<() => void>();
  const collect = (chunk: Buffer) => {
    output += chunk.toString("utf8");
    for (const listener of listeners) {
      listener();
    }
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    // "close", not "exit": by then everything it printed has been read.
    child.once("close", (code, signal) => {
      resolve({ code, signal });
      for (const listener of listeners) {
        listener();
      }
    }),
  );
  function waitForLine(
    match: (line: string) => boolean,
    what: string,
    timeoutMs: number,
  ): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = output.split("\n").find(match);
        if (found !== undefined) {
          listeners.delete(check);
          clearTimeout(timer);
          resolve(found);
        } else if (child.exitCode !== null || child.signalCode !== null) {
          listeners.delete(check);
          clearTimeout(timer);
          reject(new Error(`${file} exited before printing ${what}:\n${output.slice(-4000)}`));
        }
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(
          new Error(
            `${file} did not print ${what} within ${timeoutMs} ms:\n${output.slice(-4000)}`,
          ),
        );
      }, timeoutMs);
      listeners.add(check);
      check();
    });
  }
  return {
    child,
    output: () => output,
    exited,
    waitFor(line, timeoutMs = 30_000) {
      return waitForLine((l) => l === line, `"${line}"`, timeoutMs).then(() => undefined);
    },
    waitForMatch(pattern, timeoutMs = 30_000) {
      return waitForLine((l) => pattern.test(l), String(pattern), timeoutMs);
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
      }
      await exited;
    },
  };
}
