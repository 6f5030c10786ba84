/**
 * `protoevents start` (what `npm start` runs): the supervisor of the whole
 * checkout on a laptop. It starts the Pub/Sub emulator (unless one is given),
 * provisions it from the contracts, runs every checkout service as its own
 * process, places demo orders through the order service's Connect API and
 * shows what flows through Pub/Sub, until Ctrl-C stops everything.
 *
 * `protoevents service <name>` runs one service in the foreground with the
 * same defaults.
 */
import { randomBytes } from "node:crypto";
import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  rmSync,
  statSync,
} from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Code as ConnectCode, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import type { PubSub } from "@google-cloud/pubsub";
import type { ContractRegistry } from "@protoevents/runtime";
import {
  announceLocalEmulator,
  Code,
  createPubSub,
  type Emulator,
  ProtoeventsError,
  provision,
  startEmulator,
} from "@protoevents/runtime";
import { execa } from "execa";
import { ProductService } from "../../generated/checkout/v1/catalog_api_pb.js";
import { OrderService } from "../../generated/checkout/v1/order_api_pb.js";
import { TS_NODE_ARGS } from "../lib/node-args.js";
import { LIFELINE_ENV } from "../lib/run-service.js";
import {
  DemoOrders,
  type DemoProduct,
  expectedOutcome,
  LIMITED_SKU,
  PAYMENT_LIMIT_MINOR,
} from "./demo-orders.js";
import {
  createProgressView,
  type ProgressSnapshot,
  PubSubMonitor,
  renderSummary,
} from "./progress.js";
import { readFrom } from "./read-from.js";
import { dropDemoSchemas, markDemoSchemas } from "./schemas.js";

/** Every checkout service, each `services/<name>/main.ts`. */
export const SERVICES = ["catalog", "inventory", "payment", "shipping", "notification", "order"];

/** The PostgreSQL `--store postgres` means: the one on every development and CI machine. */
export const DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/test";
/** The project `start` provisions unless told otherwise. */
export const DEFAULT_START_PROJECT = "protoevents-demo";
export const DEFAULT_ORDER_PORT = 8080;
export const DEFAULT_PRODUCT_PORT = 8081;

/** SIGTERM, then SIGKILL after this long. */
const STOP_GRACE_MS = 10_000;
/** How often the live view is redrawn. */
const REDRAW_MS = 250;
/** How long one order is retried while the order service's catalog view is not there yet. */
const UNKNOWN_PRODUCT_RETRY_MS = 30_000;
/** After every order ended, how long to wait for its e-mails before `--exit-when-done` stops. */
const NOTICE_SETTLE_MS = 20_000;

/** The repository root: services are found under it. */
const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** Thrown inside the run when a stop was asked for; not an error. */
class StopRequested extends Error {}

/** The checkout could not be started or kept running; the message says why and where to look. */
class StartFailed extends Error {}

/** `sqlite`, `postgres` or a postgres URL → the `PROTOEVENTS_STORE_URL` to pass (undefined: SQLite). */
export function storeUrlOf(store: string): string | undefined {
  const value = store.trim();
  if (value === "" || value === "sqlite") {
    return undefined;
  }
  if (value === "postgres") {
    return DEFAULT_POSTGRES_URL;
  }
  if (/^postgres(ql)?:\/\//i.test(value)) {
    return value;
  }
  throw new ProtoeventsError(
    Code.InvalidArgument,
    `--store must be sqlite, postgres or a postgres:// URL, got ${JSON.stringify(value)}`,
  );
}

/** Where a service's log goes under the data directory. */
export function serviceLogFile(dataDir: string, name: string): string {
  return join(dataDir, "logs", `${name}.log`);
}

/** The main file of a service, or a clear error naming the known ones. */
export function serviceMain(name: string): string {
  if (!SERVICES.includes(name)) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `unknown service ${JSON.stringify(name)}; the services are ${SERVICES.join(", ")}`,
    );
  }
  const file = join(ROOT, "services", name, "main.ts");
  if (!existsSync(file)) {
    throw new ProtoeventsError(Code.InvalidArgument, `${shown(file)} is missing`);
  }
  return file;
}

/** Log levels at which a service still prints its "service ready" line. */
const READY_VISIBLE_LEVELS = new Set(["trace", "debug", "info"]);

/** What every service's environment gets. */
export interface ServiceEnvironment {
  readonly emulatorHost?: string | undefined;
  readonly project?: string | undefined;
  readonly dataDir: string;
  readonly storeUrl?: string | undefined;
  readonly orderPort: number;
  readonly productPort: number;
  /** Raise a quieter log level to `info`, so the "service ready" line shows. */
  readonly readyLine?: boolean;
}

/** The environment of a service process: this process's, with the checkout's settings on top. */
export function serviceEnv(
  base: NodeJS.ProcessEnv,
  settings: ServiceEnvironment,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(base)) {
    if (value !== undefined) {
      env[key] = value;
    }
  }
  if (settings.emulatorHost !== undefined) {
    env.PUBSUB_EMULATOR_HOST = settings.emulatorHost;
  }
  if (settings.project !== undefined) {
    env.PUBSUB_PROJECT_ID = settings.project;
  }
  env.PROTOEVENTS_DATA_DIR = settings.dataDir;
  if (settings.storeUrl === undefined) {
    delete env.PROTOEVENTS_STORE_URL;
  } else {
    env.PROTOEVENTS_STORE_URL = settings.storeUrl;
  }
  env.ORDER_API_PORT = String(settings.orderPort);
  env.PRODUCT_API_PORT = String(settings.productPort);
  const level = env.PROTOEVENTS_LOG_LEVEL ?? "info";
  env.PROTOEVENTS_LOG_LEVEL =
    settings.readyLine === true && !READY_VISIBLE_LEVELS.has(level) ? "info" : level;
  return env;
}

/** A path as the user reads it best: relative below the working directory, else absolute. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel === "" ? "." : rel.startsWith("..") ? path : rel;
}

/** Whether a process with this PID exists (zombies count: they are not reaped yet). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** The last `count` lines of a file from `offset` on. */
function tail(file: string, offset: number, count: number): string {
  let text: string;
  try {
    text = readFrom(file, offset);
  } catch {
    return "(no log)";
  }
  const lines = text.split("\n").filter((line) => line.trim() !== "");
  return lines.slice(-count).map(readableLogLine).join("\n") || "(nothing logged)";
}

const LEVEL_NAMES: Readonly<Record<number, string>> = {
  10: "trace",
  20: "debug",
  30: "info",
  40: "warn",
  50: "error",
  60: "fatal",
};

/** A pino JSON line as `  <level> <msg>: <error>`; anything else as it is. */
function readableLogLine(line: string): string {
  try {
    const entry = JSON.parse(line) as {
      level?: unknown;
      msg?: unknown;
      err?: { message?: unknown };
    };
    if (typeof entry.msg !== "string") {
      return `  ${line}`;
    }
    const level = typeof entry.level === "number" ? (LEVEL_NAMES[entry.level] ?? "") : "";
    const error = typeof entry.err?.message === "string" ? `: ${entry.err.message}` : "";
    return `  ${level.padEnd(5)} ${entry.msg}${error}`;
  } catch {
    return `  ${line}`;
  }
}

/** One service process of the supervisor. */
class ServiceProcess {
  readonly pid: number;
  /** The API port its ready line reported, if any. */
  port: number | undefined;
  /** Set once a stop was asked for: its exit is expected from then on. */
  stopping = false;
  readonly exited: Promise<{ code: number | undefined; signal: string | undefined }>;
  private readonly signal: (signal: NodeJS.Signals) => void;
  private readonly logOffset: number;
  private hasExited = false;

  constructor(
    readonly name: string,
    readonly logFile: string,
    env: Record<string, string>,
  ) {
    appendFileSync(
      logFile,
      `{"msg":"--- protoevents start: ${name} starting","time":"${new Date().toISOString()}"}\n`,
    );
    this.logOffset = statSync(logFile).size;
    // The service writes its log file itself (the descriptor is handed to
    // it), not through a pipe to this process: its logging, and its stop
    // when the lifeline ends, do not depend on this process being alive.
    // (execa's types list descriptors 3–9 only; any number goes to spawn as is.)
    const log = openSync(logFile, "a") as 3;
    const subprocess = execa(process.execPath, [...TS_NODE_ARGS, serviceMain(name)], {
      cwd: ROOT,
      // The lifeline: once this supervisor is gone (even by SIGKILL) the service stops.
      env: { ...env, [LIFELINE_ENV]: String(process.pid) },
      extendEnv: false,
      stdin: "ignore",
      stdout: log,
      stderr: log,
      reject: false,
      cleanup: true,
      forceKillAfterDelay: STOP_GRACE_MS,
    });
    // The child has its own copy by now.
    closeSync(log);
    this.signal = (signal) => {
      subprocess.kill(signal);
    };
    const pid = subprocess.pid;
    if (pid === undefined) {
      throw new StartFailed(`could not start the ${name} service`);
    }
    this.pid = pid;
    this.exited = subprocess.then((result) => {
      this.hasExited = true;
      return { code: result.exitCode, signal: result.signal };
    });
  }

  get running(): boolean {
    return !this.hasExited;
  }

  /** The last lines it logged in this run. */
  lastLines(count = 15): string {
    return tail(this.logFile, this.logOffset, count);
  }

  /** Resolves once its log has the "service ready" line; rejects if it exits or takes too long. */
  async waitReady(timeoutMs: number, signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (signal.aborted) {
        throw new StopRequested();
      }
      for (const line of readFrom(this.logFile, this.logOffset).split("\n")) {
        if (!line.includes('"service ready"')) {
          continue;
        }
        try {
          const parsed = JSON.parse(line) as { msg?: unknown; port?: unknown };
          if (parsed.msg === "service ready") {
            if (typeof parsed.port === "number") {
              this.port = parsed.port;
            }
            return;
          }
        } catch {
          // Not a JSON line after all.
        }
      }
      if (this.hasExited) {
        const { code, signal: killedBy } = await this.exited;
        throw new StartFailed(
          `the ${this.name} service exited (${killedBy ?? `code ${code}`}) before it was ready; last lines of ${shown(this.logFile)}:\n${this.lastLines()}`,
        );
      }
      if (Date.now() > deadline) {
        throw new StartFailed(
          `the ${this.name} service was not ready within ${timeoutMs / 1000} s; last lines of ${shown(this.logFile)}:\n${this.lastLines()}`,
        );
      }
      await sleep(100, signal);
    }
  }

  /** SIGTERM and wait for the exit (execa sends SIGKILL after 10 s). */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.hasExited) {
      return;
    }
    this.signal("SIGTERM");
    await this.exited;
  }

  kill(): void {
    this.stopping = true;
    if (!this.hasExited) {
      this.signal("SIGKILL");
    }
  }
}

/** Options of `protoevents start`. */
export interface StartOptions {
  /** Orders to place; 0 places until stopped. */
  readonly orders: number;
  /** Orders per second. */
  readonly rate: number;
  readonly seed: number;
  readonly exitWhenDone: boolean;
  /** Seconds `--exit-when-done` waits after the last order for every order to end. */
  readonly doneTimeout: number;
  readonly orderPort: number;
  readonly productPort: number;
  /** `sqlite`, `postgres` or a postgres URL. */
  readonly store: string;
  readonly dataDir: string;
  readonly project: string;
  /** An emulator to use instead of starting one. */
  readonly emulatorHost?: string | undefined;
  /** Keep the services' stores and e-mails of the last run. */
  readonly keepData: boolean;
  /** With PostgreSQL: drop the services' schemas even when npm start did not make them. */
  readonly resetSchemas?: boolean;
  /** Seconds each service may take to log "service ready". */
  readonly readyTimeout: number;
  readonly registry: ContractRegistry;
}

/**
 * Delete what the services kept from the last run: their stores and e-mails
 * (logs stay). In PostgreSQL only schemas npm start made are dropped, unless
 * `resetSchemas`.
 */
async function resetData(
  dataDir: string,
  storeUrl: string | undefined,
  resetSchemas: boolean,
): Promise<void> {
  rmSync(join(dataDir, "mail"), { recursive: true, force: true });
  if (storeUrl === undefined) {
    for (const name of SERVICES) {
      for (const suffix of ["", "-wal", "-shm", "-journal"]) {
        rmSync(join(dataDir, `${name}.sqlite${suffix}`), { force: true });
      }
    }
    return;
  }
  await dropDemoSchemas(storeUrl, SERVICES, { force: resetSchemas });
}

/** The active products the catalog lists, once it lists `sku-limited` and at least one other. */
async function waitForCatalog(
  port: number,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<DemoProduct[]> {
  const client = createClient(
    ProductService,
    createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "1.1" }),
  );
  const deadline = Date.now() + timeoutMs;
  let last = "it listed no products";
  for (;;) {
    if (signal.aborted) {
      throw new StopRequested();
    }
    try {
      const { products } = await client.listProducts({}, { timeoutMs: 5_000, signal });
      const active = products
        .filter((p) => p.active && p.price !== undefined)
        .map((p) => ({ productId: p.productId, priceMinor: p.price?.amountMinor ?? 0n }));
      if (active.some((p) => p.productId === LIMITED_SKU) && active.length > 1) {
        return active;
      }
      last = `it lists ${active.map((p) => p.productId).join(", ") || "no active products"}`;
    } catch (error) {
      last = (error as Error).message;
    }
    if (Date.now() > deadline) {
      throw new StartFailed(
        `the catalog did not list its products within ${timeoutMs / 1000} s (${last})`,
      );
    }
    await sleep(200, signal);
  }
}

/** Run the whole checkout; resolves to the exit code. */
export async function runStart(options: StartOptions): Promise<number> {
  const view = createProgressView();
  const startedAt = Date.now();
  const dataDir = resolve(options.dataDir);
  const storeUrl = storeUrlOf(options.store);
  const runId = randomBytes(3).toString("hex");
  const stop = new AbortController();
  let signals = 0;
  let exitCode = 0;
  let emulator: Emulator | undefined;
  let withdrawEmulator = (): void => {};
  let pubsub: PubSub | undefined;
  let monitor: PubSubMonitor | undefined;
  const services: ServiceProcess[] = [];
  const placedIds = new Set<string>();
  let placed = 0;
  let rejected = 0;
  let status = "starting";
  let ticker: NodeJS.Timeout | undefined;

  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      view.print(`${signal}: stopping everything… (again to kill at once)`);
      stop.abort();
    } else {
      for (const service of services) {
        service.kill();
      }
      if (emulator !== undefined && processExists(emulator.pid)) {
        process.kill(emulator.pid, "SIGKILL");
      }
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("SIGHUP", onSignal);

  const countIn = (ids: ReadonlySet<string>) => {
    let n = 0;
    for (const id of placedIds) {
      if (ids.has(id)) {
        n++;
      }
    }
    return n;
  };
  const snapshot = (): ProgressSnapshot => ({
    elapsedMs: Date.now() - startedAt,
    target: options.orders,
    placed,
    rejected,
    confirmed: monitor === undefined ? 0 : countIn(monitor.confirmed),
    cancelled: monitor === undefined ? 0 : countIn(monitor.cancelled),
    events: monitor?.events ?? new Map(),
    deadLetters: monitor?.deadLetters ?? new Map(),
    status,
    footer: [
      `${"".padEnd(14)}logs in ${shown(join(dataDir, "logs"))}/, e-mails in ${shown(join(dataDir, "mail"))}/`,
    ],
  });
  const pending = () => {
    const s = snapshot();
    return s.placed - s.confirmed - s.cancelled;
  };
  const fail = (message: string) => {
    if (!stop.signal.aborted) {
      view.print(`protoevents: ${message}`);
      exitCode = 1;
      stop.abort();
    }
  };

  try {
    // 1. Pub/Sub: the given emulator, or a new one; then the contracts' topics and subscriptions.
    let endpoint = options.emulatorHost;
    if (endpoint === undefined || endpoint === "") {
      view.print("starting the Pub/Sub emulator…");
      emulator = await startEmulator();
      endpoint = emulator.endpoint;
      view.print(`started emulator pid=${emulator.pid} endpoint=${endpoint}`);
    } else {
      view.print(`using the Pub/Sub emulator at ${endpoint}`);
    }
    if (stop.signal.aborted) {
      throw new StopRequested();
    }
    pubsub = createPubSub({ projectId: options.project, emulatorHost: endpoint });
    const { plan } = await provision(pubsub, options.registry, { dryRun: false });
    const created = plan.actions.filter((a) => a.kind === "create").length;
    view.print(
      `provisioned project ${options.project} from the contracts: ${created} created, ${plan.actions.length - created} already there`,
    );
    monitor = await PubSubMonitor.start(pubsub, options.registry, runId);
    if (stop.signal.aborted) {
      throw new StopRequested();
    }
    // `npm run dlq` and `npm run provision` in another shell find this emulator.
    withdrawEmulator = announceLocalEmulator(ROOT, {
      endpoint,
      project: options.project,
      pid: process.pid,
      owner: "npm start",
    });

    // 2. The services, each its own process, logging to <data dir>/logs/<name>.log.
    mkdirSync(join(dataDir, "logs"), { recursive: true });
    if (!options.keepData) {
      await resetData(dataDir, storeUrl, options.resetSchemas === true);
    }
    const env = serviceEnv(process.env, {
      emulatorHost: endpoint,
      project: options.project,
      dataDir,
      storeUrl,
      orderPort: options.orderPort,
      productPort: options.productPort,
      readyLine: true,
    });
    for (const name of SERVICES) {
      serviceMain(name);
    }
    for (const name of SERVICES) {
      const service = new ServiceProcess(name, serviceLogFile(dataDir, name), env);
      services.push(service);
      view.print(`started ${name} pid=${service.pid}`);
      void service.exited.then(async ({ code, signal }) => {
        // Ctrl-C in a terminal reaches the services too; one may exit before our own handler runs.
        await sleep(500);
        if (!service.stopping && !stop.signal.aborted) {
          fail(
            `the ${name} service exited unexpectedly (${signal ?? `code ${code}`}); last lines of ${shown(service.logFile)}:\n${service.lastLines()}`,
          );
        }
      });
    }
    status = "waiting for the services";
    await Promise.all(services.map((s) => s.waitReady(options.readyTimeout * 1000, stop.signal)));
    if (storeUrl !== undefined && !options.keepData) {
      // The services made their schemas afresh: mark them as npm start's to drop next time.
      await markDemoSchemas(storeUrl, SERVICES);
    }
    const portOf = (name: string, fallback: number) =>
      services.find((s) => s.name === name)?.port ?? fallback;
    const orderPort = portOf("order", options.orderPort);
    const productPort = portOf("catalog", options.productPort);
    view.print(
      `services ready in ${((Date.now() - startedAt) / 1000).toFixed(1)} s: order API http://127.0.0.1:${orderPort}, product API http://127.0.0.1:${productPort}; logs in ${shown(join(dataDir, "logs"))}/`,
    );

    // 3. The catalog seeds its products; the order service learns them from ProductUpdated.
    status = "waiting for the catalog";
    const products = await waitForCatalog(productPort, options.readyTimeout * 1000, stop.signal);
    // The payment service reads the same variable; the over-limit orders follow it.
    const limitEnv = process.env.PAYMENT_LIMIT_MINOR?.trim() ?? "";
    const limit = /^\d+$/.test(limitEnv) ? BigInt(limitEnv) : PAYMENT_LIMIT_MINOR;
    const demo = new DemoOrders(products, options.seed, runId, limit);

    // 4. Demo orders through the order service's Connect API, with live progress.
    const orders = createClient(
      OrderService,
      createConnectTransport({ baseUrl: `http://127.0.0.1:${orderPort}`, httpVersion: "1.1" }),
    );
    ticker = setInterval(() => view.update(snapshot()), REDRAW_MS);
    status =
      options.orders === 0
        ? `placing ${options.rate} orders a second until Ctrl-C`
        : `placing ${options.orders} orders, ${options.rate} a second`;
    const firstAt = Date.now();
    let shownRejections = 0;
    for (let n = 1; options.orders === 0 || n <= options.orders; n++) {
      if (stop.signal.aborted) {
        throw new StopRequested();
      }
      const { request } = demo.order(n);
      const retryUntil = Date.now() + UNKNOWN_PRODUCT_RETRY_MS;
      for (;;) {
        if (stop.signal.aborted) {
          throw new StopRequested();
        }
        try {
          const { order } = await orders.placeOrder(request, {
            timeoutMs: 10_000,
            signal: stop.signal,
          });
          placed++;
          if (order !== undefined) {
            placedIds.add(order.orderId);
          }
          break;
        } catch (error) {
          const e = ConnectError.from(error);
          // The order service's catalog view fills from ProductUpdated events, a moment
          // after the catalog lists them: wait for it (same request id, so no duplicate).
          const notYet =
            (e.code === ConnectCode.InvalidArgument && e.rawMessage.includes("unknown product")) ||
            e.code === ConnectCode.Unavailable;
          if (notYet && Date.now() < retryUntil && !stop.signal.aborted) {
            await sleep(200, stop.signal);
            continue;
          }
          if (stop.signal.aborted) {
            throw new StopRequested();
          }
          rejected++;
          if (shownRejections++ < 5) {
            view.print(`order ${n} was refused: [${ConnectCode[e.code]}] ${e.rawMessage}`);
          }
          break;
        }
      }
      await sleep(firstAt + (n * 1000) / options.rate - Date.now(), stop.signal);
    }

    // 5. Done placing: keep running, or stop once every order ended.
    if (!options.exitWhenDone) {
      status = `all ${options.orders} demo orders placed; Ctrl-C stops everything`;
      view.print(status);
      while (!stop.signal.aborted) {
        await sleep(60_000, stop.signal);
      }
      throw new StopRequested();
    }
    status = `all ${options.orders} demo orders placed; waiting for every one to be confirmed or cancelled`;
    view.print(status);
    const deadline = Date.now() + options.doneTimeout * 1000;
    while (pending() > 0 && Date.now() < deadline && !stop.signal.aborted) {
      await sleep(100, stop.signal);
    }
    if (pending() === 0 && !stop.signal.aborted) {
      // Let the e-mails of the last orders go out before stopping the services.
      status = "every order ended; waiting for its e-mails";
      const settle = Math.min(deadline, Date.now() + NOTICE_SETTLE_MS);
      while (missingNotices(monitor, placedIds) > 0 && Date.now() < settle) {
        await sleep(100, stop.signal);
      }
      const missing = missingNotices(monitor, placedIds);
      if (missing > 0) {
        view.print(`note: ${missing} e-mails were not sent yet when stopping`);
      }
    } else if (pending() > 0 && !stop.signal.aborted) {
      view.print(
        `${pending()} orders were neither confirmed nor cancelled within ${options.doneTimeout} s of the last order`,
      );
    }
  } catch (error) {
    if (!(error instanceof StopRequested)) {
      const message =
        error instanceof ProtoeventsError || error instanceof StartFailed
          ? error.message
          : ((error as Error).stack ?? `${error}`);
      fail(message);
    }
  } finally {
    // Stop: no more orders; SIGTERM every service and wait (SIGKILL after 10 s); delete the
    // monitoring subscriptions; stop the emulator by PID if we started it.
    status = "stopping the services";
    if (ticker !== undefined) {
      view.update(snapshot());
    }
    if (services.length > 0) {
      view.print(`stopping ${services.length} services…`);
    }
    await Promise.all(services.map((s) => s.stop()));
    if (ticker !== undefined) {
      clearInterval(ticker);
      status = "stopped";
      view.update(snapshot());
      view.done();
    }
    const final = snapshot();
    await monitor?.close();
    await pubsub?.close().catch(() => undefined);
    withdrawEmulator();
    await emulator?.stop();
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
    process.removeListener("SIGHUP", onSignal);
    if (ticker !== undefined) {
      for (const line of renderSummary(final)) {
        view.print(line);
      }
      if (!options.keepData && final.rejected === 0) {
        const expected = expectedOutcome(final.placed);
        view.print(
          `expected for this mix: ${expected.confirmed} confirmed, ${expected.cancelled} cancelled (every 7th declined card, every 11th 2 × sku-limited with 3 in stock, every 13th over the payment limit)`,
        );
      }
    }
    if (
      options.exitWhenDone &&
      exitCode === 0 &&
      final.placed - final.confirmed - final.cancelled > 0
    ) {
      exitCode = 1;
    }
    const pids = [...services.map((s) => s.pid), ...(emulator === undefined ? [] : [emulator.pid])];
    const alive = pids.filter(processExists);
    if (alive.length > 0) {
      view.print(`protoevents: processes still running: ${alive.join(", ")}`);
      exitCode = 1;
    } else if (pids.length > 0) {
      view.print(`stopped: ${pids.length} processes exited`);
    }
  }
  return exitCode;
}

/** E-mails the ended orders still wait for: confirmation and shipping, or cancellation. */
function missingNotices(monitor: PubSubMonitor | undefined, ids: ReadonlySet<string>): number {
  if (monitor === undefined) {
    return 0;
  }
  let missing = 0;
  for (const id of ids) {
    const notices = monitor.notices.get(id);
    if (monitor.confirmed.has(id)) {
      missing += (notices?.has("confirmation") ? 0 : 1) + (notices?.has("shipping") ? 0 : 1);
    } else if (monitor.cancelled.has(id)) {
      missing += notices?.has("cancellation") ? 0 : 1;
    }
  }
  return missing;
}

/** Options of `protoevents service`. */
export interface ServiceOptions {
  readonly emulatorHost?: string | undefined;
  readonly project?: string | undefined;
  readonly dataDir: string;
  readonly store: string;
  readonly orderPort: number;
  readonly productPort: number;
}

/** Run one service in the foreground, its log lines on stdout; resolves to its exit code. */
export async function runOneService(name: string, options: ServiceOptions): Promise<number> {
  const main = serviceMain(name);
  const storeUrl = storeUrlOf(options.store);
  const dataDir = resolve(options.dataDir);
  if (options.emulatorHost === undefined || options.emulatorHost === "") {
    process.stderr.write(
      "protoevents: PUBSUB_EMULATOR_HOST is not set, so the service talks to real Pub/Sub. " +
        "For the emulator, run `npm run emulator` in another shell and export the lines it prints.\n",
    );
  }
  const env = serviceEnv(process.env, {
    emulatorHost: options.emulatorHost === "" ? undefined : options.emulatorHost,
    project: options.project,
    dataDir,
    storeUrl,
    orderPort: options.orderPort,
    productPort: options.productPort,
  });
  const subprocess = execa(process.execPath, [...TS_NODE_ARGS, main], {
    cwd: ROOT,
    env,
    extendEnv: false,
    stdio: "inherit",
    reject: false,
    cleanup: true,
    forceKillAfterDelay: STOP_GRACE_MS,
  });
  let stopped = false;
  const onSignal = () => {
    stopped = true;
    subprocess.kill("SIGTERM");
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("SIGHUP", onSignal);
  process.stderr.write(
    `protoevents: running the ${name} service (pid ${subprocess.pid}) on ${env.PUBSUB_EMULATOR_HOST ?? "real Pub/Sub"}, project ${env.PUBSUB_PROJECT_ID ?? "protoevents-local"}, data in ${shown(dataDir)}${storeUrl === undefined ? "" : `, store ${storeUrl.replace(/\/\/[^@/]*@/, "//…@")}`}; Ctrl-C stops it\n`,
  );
  try {
    const result = await subprocess;
    if (result.exitCode !== undefined) {
      return result.exitCode;
    }
    return stopped ? 0 : 1;
  } finally {
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
    process.removeListener("SIGHUP", onSignal);
  }
}
