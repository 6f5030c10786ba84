/**
 * One checkout service as a process of the chaos run: started with its
 * environment, logging to a file of its own, SIGKILLed or stopped when the
 * schedule says, started again on the same API port.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { appendFileSync, closeSync, openSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { TS_NODE_ARGS } from "../../services/lib/node-args.js";
import { readFrom } from "../../services/supervisor/read-from.js";
import type { ServiceName } from "./schedule.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/**
 * How long a start may take before it counts as failed: a bound, not a
 * guess at how long it takes. The start returns the moment the service logs
 * "service ready". Six services load their modules through tsx at once, and
 * on a busy 2-core machine the last one has printed nothing after 60 s, so
 * the first start gets as long as a restart after a SIGKILL does.
 */
const READY_TIMEOUT_MS = 120_000;
/** SIGTERM, then SIGKILL after this long. */
const STOP_GRACE_MS = 15_000;

/** Every service process running; killed when this process exits, so none outlives the run. */
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) {
    child.kill("SIGKILL");
  }
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** An exit nobody asked for. */
export interface UnexpectedExit {
  readonly service: ServiceName;
  readonly pid: number;
  readonly code: number | null;
  readonly signal: string | null;
  /** The last lines it logged. */
  readonly lastLines: string;
}

/** A service process the run controls. */
export class ServiceProcess {
  /** The API port its first start reported, reused by every restart. */
  port: number | undefined;
  /** Starts, including the first. */
  starts = 0;
  /** Starts that failed (exited before it was ready), e.g. while PostgreSQL was away. */
  failedStarts = 0;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private expectExit = false;

  constructor(
    readonly name: ServiceName,
    readonly logFile: string,
    private readonly env: () => Record<string, string>,
    private readonly onUnexpectedExit: (exit: UnexpectedExit) => void,
  ) {}

  /** Whether the process is alive. */
  get running(): boolean {
    return (
      this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
    );
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Every process of this service that has exited: killed, stopped, or a failed start. */
  get deadPids(): number[] {
    return [...this.startedPids].filter((pid) => !(this.running && pid === this.child?.pid));
  }

  private readonly startedPids = new Set<number>();

  /**
   * Start the process and wait for its "service ready" line; a start that
   * fails (the process exits first) is retried until `timeoutMs` passed.
   */
  async start(timeoutMs = READY_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.disposed) {
        throw new Error(`the ${this.name} service is not started again: the run is over`);
      }
      try {
        await this.startOnce(deadline);
        return;
      } catch (error) {
        this.failedStarts++;
        await this.kill();
        if (Date.now() > deadline) {
          throw error;
        }
        await sleep(500);
      }
    }
  }

  private async startOnce(deadline: number): Promise<void> {
    appendFileSync(
      this.logFile,
      `{"msg":"--- chaos: ${this.name} starting","time":"${new Date().toISOString()}"}\n`,
    );
    const offset = statSync(this.logFile).size;
    const fd = openSync(this.logFile, "a");
    const env = this.env();
    if (this.port !== undefined) {
      env[this.name === "order" ? "ORDER_API_PORT" : "PRODUCT_API_PORT"] = String(this.port);
    }
    let child: ChildProcess;
    try {
      child = spawn(
        process.execPath,
        [...TS_NODE_ARGS, join(ROOT, "services", this.name, "main.ts")],
        {
          cwd: ROOT,
          env,
          stdio: ["ignore", fd, fd],
        },
      );
    } finally {
      closeSync(fd);
    }
    this.starts++;
    this.child = child;
    if (child.pid !== undefined) {
      this.startedPids.add(child.pid);
    }
    running.add(child);
    child.once("exit", () => running.delete(child));
    this.expectExit = false;
    // A start that fails is retried by start(); only a ready process exiting on its own is news.
    let ready = false;
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        if (ready && !this.expectExit && this.child === child) {
          this.onUnexpectedExit({
            service: this.name,
            pid: child.pid ?? 0,
            code,
            signal,
            lastLines: this.lastLines(offset),
          });
        }
        resolve();
      });
    });
    for (;;) {
      for (const line of readFrom(this.logFile, offset).split("\n")) {
        if (line.includes('"msg":"service ready"')) {
          const fields = JSON.parse(line) as { port?: unknown };
          if (typeof fields.port === "number") {
            this.port = fields.port;
          }
          ready = true;
          return;
        }
      }
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `the ${this.name} service exited (${child.signalCode ?? `code ${child.exitCode}`}) before it was ready:\n${this.lastLines(offset)}`,
        );
      }
      if (Date.now() > deadline) {
        throw new Error(
          `the ${this.name} service was not ready in time:\n${this.lastLines(offset)}`,
        );
      }
      await sleep(100);
    }
  }

  /**
   * Stop for good at the end of the run: a fault still sleeping (the run
   * failed early) cannot start the service again afterwards.
   */
  async dispose(): Promise<void> {
    this.disposed = true;
    await this.stop();
  }

  private disposed = false;

  /** SIGKILL: no shutdown, nothing flushed, in-flight deliveries never acked. */
  async kill(): Promise<void> {
    if (!this.running) {
      return;
    }
    this.expectExit = true;
    this.child?.kill("SIGKILL");
    await this.exited;
  }

  /** SIGTERM and wait for the graceful stop (SIGKILL after 15 s). */
  async stop(): Promise<void> {
    if (!this.running) {
      return;
    }
    this.expectExit = true;
    this.child?.kill("SIGTERM");
    const timer = setTimeout(() => this.child?.kill("SIGKILL"), STOP_GRACE_MS);
    await this.exited;
    clearTimeout(timer);
  }

  /** The last lines logged since `offset`. */
  private lastLines(offset: number, count = 20): string {
    try {
      return readFrom(this.logFile, offset).trim().split("\n").slice(-count).join("\n");
    } catch {
      return "(no log)";
    }
  }
}
