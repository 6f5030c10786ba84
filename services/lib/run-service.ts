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
import type { PubSub } from "@google-cloud/pubsub";
import type { Logger, Store } from "@protoevents/runtime";
import {
  Code,
  createPubSub,
  createStore,
  type Migration,
  type OutboxRelay,
  ProtoeventsError,
  type Pruning,
  startOutboxRelay,
  startPruning,
  storeConfigFromEnv,
} from "@protoevents/runtime";
import { pino } from "pino";
import { FAULT_RATE_ENV, faultConfigFromEnv, withInjectedFaults } from "./fault-injection.js";

/** Something a service started and must stop on shutdown (a consumer, a server). */
export interface Closable {
  close(): Promise<void>;
}

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
  /** Graceful stop; idempotent. */
  stop(): Promise<void>;
}

/** The service's logger: JSON lines on stdout, `PROTOEVENTS_LOG_LEVEL` or info. */
export function serviceLogger(name: string, env: NodeJS.ProcessEnv = process.env): Logger {
  return pino({
    level: env.PROTOEVENTS_LOG_LEVEL ?? "info",
    base: { service: name, pid: process.pid },
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
  const relay = startOutboxRelay(pubsub, store, { logger: log });
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
  return {
    context,
    relay,
    ready,
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
  const stop = (service: RunningService<DB>) => {
    service.stop().then(
      () => process.exit(0),
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
  }
}
