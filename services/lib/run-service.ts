/**
 * What every checkout service does around its business logic: read its
 * configuration from the environment, open its store (SQLite by default,
 * PostgreSQL by URL), connect to Pub/Sub (emulator or real project), run the
 * outbox relay and retention pruning, start its consumers and servers, log
 * structured lines, and on SIGTERM or SIGINT stop taking work, finish what
 * runs, flush the outbox and close everything. Only for the chaos run,
 * `PROTOEVENTS_FAULT_RATE` makes deliveries fail on purpose
 * (`fault-injection.ts`); unset, nothing changes.
 */
import { readFileSync } from "node:fs";
import type { PubSub } from "@google-cloud/pubsub";
import type {
  ConsumerHealth,
  HealthStatus,
  Logger,
  Store,
  SubscriptionHealth,
} from "@protoevents/runtime";
import {
  Code,
  createPubSub,
  createStore,
  type Migration,
  type OutboxRelay,
  ProtoeventsError,
  type Pruning,
  startHealthServer,
  startOutboxRelay,
  startPruning,
  storeConfigFromEnv,
  storeProblems,
  subscriptionProblems,
  traceFields,
} from "@protoevents/runtime";
import { pino } from "pino";
import { FAULT_RATE_ENV, faultConfigFromEnv, withInjectedFaults } from "./fault-injection.js";

/** Something a service started and must stop on shutdown (a consumer, a server). */
export interface Closable {
  close(): Promise<void>;
  /** A consumer's health; servers have none. */
  health?(): ConsumerHealth;
}

/**
 * Whether `pid` is still this process's parent. A process's children are
 * reparented the moment it dies, even before it is reaped (while signal 0
 * would still reach its zombie), so on Linux the kernel's own view is read;
 * elsewhere whether the process exists at all.
 */
function parentAlive(pid: number): boolean {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    // "pid (comm) state ppid …": comm may hold spaces and parentheses.
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid;
  } catch {
    try {
      process.kill(pid, 0);
      return true;
    } catch (error) {
      return (error as { code?: unknown }).code === "EPERM";
    }
  }
}

/**
 * Environment variable: a supervisor's PID. The service stops gracefully
 * once that process is gone, so a supervisor's services
 * stop with it even when it is killed with SIGKILL (nothing can run in it
 * then). Checked every second.
 */
export const LIFELINE_ENV = "PROTOEVENTS_LIFELINE_PID";

/** How long a service may take to stop before it exits anyway. */
export const STOP_TIMEOUT_MS = 20_000;

/** The exit code of a service whose subscriptions could not stream for too long. */
export const UNHEALTHY_EXIT_CODE = 3;

/** Environment variable: seconds a service may stay unhealthy before it exits. @default 60 */
export const UNHEALTHY_EXIT_ENV = "PROTOEVENTS_UNHEALTHY_EXIT_SECONDS";

/** Environment variable: port of `GET /livez` and `GET /readyz`; unset: no health server. */
export const HEALTH_PORT_ENV = "PROTOEVENTS_HEALTH_PORT";

/** Environment variable: interface of the health server. @default 127.0.0.1 */
export const HEALTH_HOST_ENV = "PROTOEVENTS_HEALTH_HOST";

/** What a service's `start` gets. */
export interface ServiceContext<DB> {
  readonly name: string;
  readonly pubsub: PubSub;
  readonly store: Store<DB>;
  readonly log: Logger;
  readonly env: NodeJS.ProcessEnv;
  /** Directory for files the service writes (e-mails), `PROTOEVENTS_DATA_DIR` or `.data`. */
  readonly dataDir: string;
}

/** A service: its name, its tables, and how it starts. */
export interface ServiceDefinition<DB> {
  /** Also the store's file or schema name and the `service` field of every log line. */
  readonly name: string;
  /** The service's own tables (Kysely migrations, applied in name order at start). */
  readonly migrations: Readonly<Record<string, Migration>>;
  /**
   * Start consumers and servers. Returns what must be closed on shutdown, in
   * the order to close it (servers first, so no new work arrives).
   * May return fields to log with the "service ready" line, e.g. a port.
   */
  start(context: ServiceContext<DB>): Promise<{
    readonly closables: readonly Closable[];
    readonly ready?: Readonly<Record<string, unknown>>;
  }>;
}

/** A running service, for tests that run one in-process. */
export interface RunningService<DB> {
  readonly context: ServiceContext<DB>;
  readonly relay: OutboxRelay;
  readonly ready: Readonly<Record<string, unknown>>;
  /** Whether every consumer's subscriptions can stream; the failing ones otherwise. */
  health(): { readonly healthy: boolean; readonly failing: readonly SubscriptionHealth[] };
  /** Live unless a subscription is in a permanent error (a restart may be what it needs). */
  liveness(): HealthStatus;
  /** Ready while not stopping, every subscription streams and the store answers. */
  readiness(): Promise<HealthStatus>;
  /** Graceful stop; idempotent. */
  stop(): Promise<void>;
}

/** The service's logger: JSON lines on stdout, `PROTOEVENTS_LOG_LEVEL` or info. */
export function serviceLogger(name: string, env: NodeJS.ProcessEnv = process.env): Logger {
  return pino({
    level: env.PROTOEVENTS_LOG_LEVEL ?? "info",
    base: { service: name, pid: process.pid },
    // trace_id and span_id inside a span, so logs and traces join.
    mixin: traceFields,
  });
}

/**
 * Start a service in this process and return it running. `main` files call
 * {@link runServiceMain}, which also handles signals and exit codes.
 */
export async function startService<DB>(
  definition: ServiceDefinition<DB>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<RunningService<DB>> {
  const log = serviceLogger(definition.name, env);
  // Read first: a malformed setting must fail the start before anything opens.
  const faults = faultConfigFromEnv(env);
  const opened = await createStore<DB>(storeConfigFromEnv(definition.name, env), {
    migrations: definition.migrations,
  });
  // Only the chaos run sets PROTOEVENTS_FAULT_RATE (see fault-injection.ts).
  const store = faults === undefined ? opened : withInjectedFaults(opened, faults);
  if (faults !== undefined) {
    log.warn(
      { op: "start", faultRate: faults.rate, faultSeed: faults.seed },
      `fault injection is on (${FAULT_RATE_ENV}): deliveries fail on purpose`,
    );
  }
  const pubsub = createPubSub({
    ...(env.PUBSUB_PROJECT_ID === undefined ? {} : { projectId: env.PUBSUB_PROJECT_ID }),
    ...(env.PUBSUB_EMULATOR_HOST === undefined ? {} : { emulatorHost: env.PUBSUB_EMULATOR_HOST }),
  });
  const relay = startOutboxRelay(pubsub, store, { logger: log, storeName: definition.name });
  const pruning: Pruning = startPruning(store, { logger: log });
  const context: ServiceContext<DB> = {
    name: definition.name,
    pubsub,
    store,
    log,
    env,
    dataDir: env.PROTOEVENTS_DATA_DIR ?? ".data",
  };
  let started: Awaited<ReturnType<ServiceDefinition<DB>["start"]>>;
  try {
    started = await definition.start(context);
  } catch (error) {
    pruning.stop();
    await relay.stop();
    await pubsub.close();
    await store.close();
    throw error;
  }
  const ready = started.ready ?? {};
  // Supervisors and tests wait for this line, so it is written at any level
  // but "silent" (which asks for no output at all).
  if (log.level !== "silent") {
    log
      .child({}, { level: "info" })
      .info({ op: "ready", store: store.dialect, ...ready }, "service ready");
  }
  let stopping: Promise<void> | undefined;
  const consumers = started.closables.flatMap((c) =>
    c.health === undefined ? [] : [{ health: c.health.bind(c) }],
  );
  const subscriptions = (): SubscriptionHealth[] =>
    consumers.flatMap((c) => c.health().subscriptions);
  return {
    context,
    relay,
    ready,
    health() {
      const failing = subscriptions().filter((s) => s.state === "failing");
      return { healthy: failing.length === 0, failing };
    },
    liveness() {
      const reasons = subscriptionProblems(consumers, ["failing"]);
      return { ok: reasons.length === 0, reasons };
    },
    async readiness() {
      if (stopping !== undefined) {
        return { ok: false, reasons: ["stopping"] };
      }
      const reasons = [
        ...subscriptionProblems(consumers),
        ...(await storeProblems(store, `${store.dialect} store of ${definition.name}`)),
      ];
      return { ok: reasons.length === 0, reasons };
    },
    stop() {
      stopping ??= (async () => {
        log.info({ op: "stop" }, "service stopping");
        for (const closable of started.closables) {
          await closable.close();
        }
        pruning.stop();
        await relay.drain();
        await relay.stop();
        await pubsub.close();
        await store.close();
        log.info({ op: "stop" }, "service stopped");
        log.flush();
      })();
      return stopping;
    },
  };
}

/**
 * Run a service as the main of its process: start it, stop it gracefully on
 * SIGTERM or SIGINT, exit non-zero with a structured error line if it cannot
 * start.
 */
export async function runServiceMain<DB>(definition: ServiceDefinition<DB>): Promise<void> {
  // Listen before starting: consumers pull during start, and a signal then
  // must still stop the service gracefully (once it has started).
  let signalled = false;
  let running: RunningService<DB> | undefined;
  const stop = (service: RunningService<DB>, code = 0) => {
    // A stop must end: with Pub/Sub or the store gone, closing and draining
    // the outbox could wait for minutes. What was not published stays in the
    // outbox for the next start.
    const deadline = setTimeout(() => {
      service.context.log.error(
        { op: "stop", timeoutMs: STOP_TIMEOUT_MS },
        `service did not stop within ${STOP_TIMEOUT_MS / 1000} s; exiting (unpublished events stay in the outbox)`,
      );
      service.context.log.flush();
      process.exit(1);
    }, STOP_TIMEOUT_MS);
    deadline.unref();
    service.stop().then(
      () => process.exit(code),
      (error: unknown) => {
        service.context.log.error(
          { op: "stop", err: ProtoeventsError.from(error) },
          "service did not stop cleanly",
        );
        process.exit(1);
      },
    );
  };
  const onSignal = () => {
    signalled = true;
    if (running !== undefined) {
      stop(running);
    }
  };
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  const supervisor = Number(process.env[LIFELINE_ENV] ?? "");
  if (Number.isSafeInteger(supervisor) && supervisor > 0) {
    const watch = setInterval(() => {
      // (process.ppid is read once at start in Node 20: ask the kernel.)
      if (!parentAlive(supervisor)) {
        clearInterval(watch);
        // Whoever started this service is gone: stop as on SIGTERM.
        running?.context.log.warn(
          { op: "stop", supervisorPid: supervisor },
          "the supervisor that started this service is gone; stopping",
        );
        onSignal();
      }
    }, 1000);
    watch.unref();
  }
  await serveHealth(definition.name, () => running);
  try {
    running = await startService(definition);
  } catch (error) {
    const log = serviceLogger(definition.name);
    log.fatal(
      { op: "start", err: ProtoeventsError.from(error, Code.Internal) },
      "service failed to start",
    );
    log.flush();
    process.exit(1);
  }
  if (signalled) {
    stop(running);
    return;
  }
  watchHealth(running, stop);
}

/**
 * With PROTOEVENTS_HEALTH_PORT set, answer `GET /livez` and `GET /readyz`
 * from the start: live and not ready while the service starts (migrations
 * may take a while), then as the running service says. Exits the process
 * with a structured line when the port is bad or taken.
 */
async function serveHealth<DB>(
  name: string,
  running: () => RunningService<DB> | undefined,
): Promise<void> {
  const raw = process.env[HEALTH_PORT_ENV]?.trim() ?? "";
  if (raw === "") {
    return;
  }
  const host = process.env[HEALTH_HOST_ENV]?.trim() || "127.0.0.1";
  try {
    if (!/^\d+$/.test(raw)) {
      throw new ProtoeventsError(
        Code.InvalidArgument,
        `${HEALTH_PORT_ENV} must be a port number (0 to 65535), got ${JSON.stringify(raw)}`,
      );
    }
    const server = await startHealthServer(
      {
        live: () => running()?.liveness() ?? { ok: true, reasons: [] },
        ready: () => running()?.readiness() ?? { ok: false, reasons: ["starting"] },
      },
      { port: Number(raw), host },
    );
    serviceLogger(name).info(
      { op: "health", host: server.host, port: server.port },
      "health checks on GET /livez and GET /readyz",
    );
  } catch (error) {
    const log = serviceLogger(name);
    log.fatal(
      { op: "start", err: ProtoeventsError.from(error, Code.Internal) },
      "service failed to start",
    );
    log.flush();
    process.exit(1);
  }
}

/**
 * Exit with {@link UNHEALTHY_EXIT_CODE} once a subscription has not been able
 * to stream (missing, or not readable with these credentials) for longer
 * than PROTOEVENTS_UNHEALTHY_EXIT_SECONDS: a service that keeps retrying in
 * silence looks alive while its events pile up.
 */
function watchHealth<DB>(
  service: RunningService<DB>,
  stop: (service: RunningService<DB>, code?: number) => void,
): void {
  const raw = process.env[UNHEALTHY_EXIT_ENV]?.trim() ?? "";
  const limitS = raw === "" ? 60 : Number(raw);
  if (!Number.isFinite(limitS) || limitS <= 0) {
    service.context.log.warn(
      { op: "health", [UNHEALTHY_EXIT_ENV]: raw },
      `${UNHEALTHY_EXIT_ENV} is not a number of seconds above 0; using 60`,
    );
  }
  const limitMs = (Number.isFinite(limitS) && limitS > 0 ? limitS : 60) * 1000;
  let unhealthySince: number | undefined;
  const timer = setInterval(() => {
    const { healthy, failing } = service.health();
    if (healthy) {
      unhealthySince = undefined;
      return;
    }
    unhealthySince ??= Date.now();
    if (Date.now() - unhealthySince >= limitMs) {
      clearInterval(timer);
      service.context.log.fatal(
        {
          op: "health",
          failing: failing.map((f) => ({
            subscription: f.subscription,
            error: f.error?.rawMessage,
          })),
        },
        `unhealthy for ${limitMs / 1000} s: ${failing.map((f) => f.subscription).join(", ")} cannot stream; exiting with code ${UNHEALTHY_EXIT_CODE}`,
      );
      stop(service, UNHEALTHY_EXIT_CODE);
    }
  }, 1000);
  timer.unref();
}
