/**
 * One chaos run: the whole checkout (every service its own process) on its
 * own Pub/Sub emulator and stores, orders placed through the order API while
 * the seeded fault schedule runs, then — once everything settled — the
 * invariants, checked from the stores, the events on the topics and the
 * dead-letter subscriptions.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Code as ConnectCode, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import type { PubSub } from "@google-cloud/pubsub";
import pg from "pg";
import { ProductService } from "../../generated/checkout/v1/catalog_api_pb.js";
import { OrderService } from "../../generated/checkout/v1/order_api_pb.js";
import { registry } from "../../generated/protoevents_registry.js";
import { REPLAY_FOR_ATTRIBUTE } from "../../runtime/src/consumer.js";
import { showDeadLetters } from "../../runtime/src/dead-letters.js";
import { startEmulator } from "../../runtime/src/emulator.js";
import { provision } from "../../runtime/src/provision.js";
import { createPubSub } from "../../runtime/src/pubsub-client.js";
import {
  FAULT_LOG_ENV,
  FAULT_RATE_ENV,
  FAULT_SEED_ENV,
  type FaultLogLine,
} from "../../services/lib/fault-injection.js";
import { DEFAULT_PAYMENT_LIMIT_MINOR } from "../../services/payment/gateway.js";
import {
  type DemoOrderKind,
  type DemoOrderRequest,
  DemoOrders,
  LIMITED_SKU,
  seededRandom,
} from "../../services/supervisor/demo-orders.js";
import { catalogViewReady } from "../helpers/checkout.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";
import { FaultLogs } from "./fault-logs.js";
import {
  awaited,
  checkInvariants,
  type DeadLetterRecord,
  type Expectations,
  type PlacedOrder,
  type PoisonRecord,
  statusOf,
  unclaimed,
} from "./invariants.js";
import { ChaosMonitor } from "./monitor.js";
import type { ChaosOptions } from "./options.js";
import { poisonMessage } from "./poison.js";
import type { ChaosReport, DeliveryCounts, TimelineRecord } from "./report.js";
import {
  consumedTopics,
  hashUnit,
  POISON_KINDS,
  POISON_REASONS,
  type PoisonKind,
  planFaults,
  SERVICES,
  type ServiceName,
  subscriptionsOf,
  type TimelineEvent,
} from "./schedule.js";
import { ServiceProcess } from "./service-process.js";
import { postgresReader, type StoreReader, sqliteReader } from "./stores.js";
import { isStranded, mayBeStranded, RESEND_COPIES } from "./stranded.js";

/** The stock file inventory seeds from by default. */
const STOCK_FILE = fileURLToPath(new URL("../../services/inventory/stock.json", import.meta.url));

/** How long one order may be retried (order service killed, store away) before it counts as refused. */
const ORDER_RETRY_MS = 120_000;
/** How long a restart may take, failed starts (PostgreSQL away) included. */
const RESTART_TIMEOUT_MS = 120_000;
/** After the system drained, how long to let stragglers (late copies, redeliveries) land before judging. */
const SETTLE_MS = 3_000;
/** How long to wait for every poison message to show up in the dead-letter subscriptions. */
const DEAD_LETTER_WAIT_MS = 30_000;
/** What a run needs besides its options. */
export interface RunContext {
  /** Use this emulator (`host:port`) instead of starting one, e.g. the test run's. */
  readonly emulatorHost?: string;
  /** Progress lines. @default written to stdout */
  readonly log?: (line: string) => void;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

let runs = 0;

/** `npm run chaos -- …` with these options: the line that reproduces the run. */
export function commandOf(options: ChaosOptions): string {
  const args = [
    `--orders ${options.orders}`,
    `--rate ${options.rate}`,
    `--seed ${options.seed}`,
    `--store ${options.store}`,
    `--fault-rate ${options.faultRate}`,
    `--duplicate-rate ${options.duplicateRate}`,
    `--delay-rate ${options.delayRate}`,
    `--kills ${options.kills}`,
    `--poison ${options.poisonPerKind}`,
  ];
  return `npm run chaos -- ${args.join(" ")}`;
}

/**
 * The stock the run seeds: `stock.json`'s levels, with every product but
 * `sku-limited` raised to at least the run's whole demand for it, so only
 * `sku-limited` (3 units, 2 per order) can run out and every order's fate
 * follows from the rules (see {@link expectedFates}).
 */
export async function chaosStock(
  requests: readonly DemoOrderRequest[],
): Promise<Map<string, number>> {
  const levels = JSON.parse(await readFile(STOCK_FILE, "utf8")) as Record<string, number>;
  const demand = new Map<string, number>();
  for (const request of requests) {
    for (const line of request.lines ?? []) {
      const id = line.productId ?? "";
      demand.set(id, (demand.get(id) ?? 0) + (line.quantity ?? 0));
    }
  }
  const stock = new Map<string, number>();
  for (const [productId, level] of Object.entries(levels)) {
    stock.set(
      productId,
      productId === LIMITED_SKU ? level : Math.max(level, demand.get(productId) ?? 0),
    );
  }
  return stock;
}

/** A PostgreSQL URL with another database, host or port. */
function withUrl(url: string, change: { database?: string; host?: string; port?: number }): string {
  const parsed = new URL(url);
  if (change.database !== undefined) {
    parsed.pathname = `/${change.database}`;
  }
  if (change.host !== undefined) {
    parsed.hostname = change.host;
  }
  if (change.port !== undefined) {
    parsed.port = String(change.port);
  }
  return parsed.toString();
}

async function adminQuery(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Everything in the dead-letter subscriptions, read without consuming. */
async function readDeadLetters(pubsub: PubSub): Promise<DeadLetterRecord[]> {
  const views = await showDeadLetters(pubsub, registry);
  return views.map((view) => ({
    subscription: view.subscription,
    messageId: view.messageId,
    eventId: view.attributes["ce-id"],
    reason: view.reason,
  }));
}

/** Run the checkout under the fault schedule and judge it. */
export async function runChaos(
  options: ChaosOptions,
  context: RunContext = {},
): Promise<ChaosReport> {
  const log = context.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const startedAt = Date.now();
  runs++;
  const runDir = await mkdtemp(join(tmpdir(), `protoevents-chaos-${options.seed}-`));
  const dataDir = join(runDir, "data");
  const logsDir = join(runDir, "logs");
  const faultsDir = join(runDir, "faults");
  await Promise.all([dataDir, logsDir, faultsDir].map((dir) => mkdir(dir, { recursive: true })));
  const cleanups: Array<() => Promise<unknown>> = [];
  let keep = options.keep;
  try {
    // 1. Pub/Sub: an emulator of the run's own (or the given one), a fresh project, the contracts' topics.
    let emulatorHost = context.emulatorHost;
    if (emulatorHost === undefined) {
      const emulator = await startEmulator({ logFile: join(logsDir, "emulator.log") });
      cleanups.push(() => emulator.stop());
      emulatorHost = emulator.endpoint;
      log(`emulator pid ${emulator.pid} at ${emulatorHost}`);
    }
    const pubsub = createPubSub({
      projectId: `chaos-${options.seed}-${process.pid}-${runs}`,
      emulatorHost,
    });
    cleanups.push(() => pubsub.close());
    await provision(pubsub, registry, { dryRun: false });

    // 2. The stores: SQLite files in the run directory, or a database of the run's own
    //    that the services reach through a proxy the schedule can cut.
    let storeUrl: string | undefined;
    let reader: StoreReader;
    let proxy: TcpProxy | undefined;
    if (options.store === "postgres") {
      const database = `chaos_${options.seed}_${process.pid}_${Date.now().toString(36)}`;
      await adminQuery(options.postgresUrl, `create database "${database}"`);
      cleanups.push(() =>
        adminQuery(options.postgresUrl, `drop database if exists "${database}" with (force)`),
      );
      const direct = withUrl(options.postgresUrl, { database });
      const target = new URL(direct);
      const pgProxy = await startTcpProxy(Number(target.port || 5432), target.hostname);
      proxy = pgProxy;
      cleanups.push(() => pgProxy.down());
      storeUrl = withUrl(direct, { host: "127.0.0.1", port: pgProxy.port });
      reader = postgresReader(direct);
      log(
        `PostgreSQL database ${database}, services connect through a proxy on port ${pgProxy.port}`,
      );
    } else {
      reader = sqliteReader(dataDir);
    }
    cleanups.push(() => reader.close());

    // 3. The orders, decided before anything runs: the seed fixes them.
    const limitMinor = DEFAULT_PAYMENT_LIMIT_MINOR;
    const products = JSON.parse(
      await readFile(
        fileURLToPath(new URL("../../services/catalog/products.json", import.meta.url)),
        "utf8",
      ),
    ) as {
      products: Array<{ productId: string; active: boolean; price: { amountMinor: number } }>;
    };
    const demo = new DemoOrders(
      products.products
        .filter((p) => p.active)
        .map((p) => ({ productId: p.productId, priceMinor: BigInt(p.price.amountMinor) })),
      options.seed,
      `chaos${options.seed}`,
      limitMinor,
    );
    const requests: Array<{ kind: DemoOrderKind; request: DemoOrderRequest }> = [];
    for (let n = 1; n <= options.orders; n++) {
      requests.push(demo.order(n));
    }
    const initialStock = await chaosStock(requests.map((r) => r.request));
    const stockFile = join(runDir, "stock.json");
    await writeFile(stockFile, JSON.stringify(Object.fromEntries(initialStock), null, 2));

    // 4. The run's own subscriptions on every event topic, before any event flows.
    const orderNumbers = new Map<string, number>();
    const eventTopics = [...new Set(registry.events.map((e) => e.topic))].sort();
    const monitor = await ChaosMonitor.start(pubsub, eventTopics, options, (id) =>
      orderNumbers.get(id),
    );
    cleanups.push(() => monitor.close());

    // 5. Every service its own process, with the fault hook on.
    const baseEnv: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (value !== undefined) {
        baseEnv[key] = value;
      }
    }
    for (const key of ["PROTOEVENTS_STORE_URL", "SMTP_URL", "CATALOG_SEED_FILE"]) {
      delete baseEnv[key];
    }
    const unexpectedExits: string[] = [];
    const services = new Map<ServiceName, ServiceProcess>();
    for (const name of SERVICES) {
      const env = (): Record<string, string> => ({
        ...baseEnv,
        PUBSUB_EMULATOR_HOST: emulatorHost,
        PUBSUB_PROJECT_ID: pubsub.projectId,
        PROTOEVENTS_DATA_DIR: dataDir,
        PROTOEVENTS_LOG_LEVEL: options.logLevel,
        ORDER_API_PORT: "0",
        PRODUCT_API_PORT: "0",
        INVENTORY_STOCK_FILE: stockFile,
        PAYMENT_LIMIT_MINOR: String(limitMinor),
        [FAULT_RATE_ENV]: String(options.faultRate),
        [FAULT_SEED_ENV]: String(options.seed),
        [FAULT_LOG_ENV]: join(faultsDir, `${name}.log`),
        ...(storeUrl === undefined ? {} : { PROTOEVENTS_STORE_URL: storeUrl }),
      });
      services.set(
        name,
        new ServiceProcess(name, join(logsDir, `${name}.log`), env, (exit) => {
          unexpectedExits.push(
            `${exit.service} (pid ${exit.pid}) exited by itself (${exit.signal ?? `code ${exit.code}`}); last lines:\n${exit.lastLines}`,
          );
          log(`!! ${exit.service} exited by itself (${exit.signal ?? `code ${exit.code}`})`);
        }),
      );
    }
    const service = (name: ServiceName) => services.get(name) as ServiceProcess;
    cleanups.push(() => Promise.all([...services.values()].map((s) => s.dispose())));
    await Promise.all([...services.values()].map((s) => s.start()));
    const transport = (port: number | undefined) =>
      createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "1.1" });
    const orderApi = createClient(OrderService, transport(service("order").port));
    const productApi = createClient(ProductService, transport(service("catalog").port));
    const listed = (await productApi.listProducts({})).products.map((p) => p.productId);
    await catalogViewReady(orderApi, listed);
    const startupMs = Date.now() - startedAt;
    log(`checkout up in ${(startupMs / 1000).toFixed(1)} s (${options.store}); logs in ${logsDir}`);

    // 6. The schedule and the orders, together.
    const plan = planFaults(options, consumedTopics(registry));
    const placed: PlacedOrder[] = [];
    let refused = 0;
    let apiRetries = 0;
    const timeline: TimelineRecord[] = [];
    const poison: PoisonRecord[] = [];
    /** When each service was first SIGKILLed, Unix ms. */
    const killedAt = new Map<ServiceName, number>();
    log(
      `placing ${options.orders} orders at ${options.rate}/s (${(plan.placingMs / 1000).toFixed(1)} s) under ${plan.timeline.length} scheduled faults, seed ${options.seed}`,
    );
    monitor.copying = true;
    const t0 = Date.now();
    const since = () => Date.now() - t0;

    const placeOne = async (n: number): Promise<void> => {
      await sleep(t0 + ((n - 1) * 1000) / options.rate - Date.now());
      const { kind, request } = requests[n - 1] as (typeof requests)[number];
      const giveUpAt = Date.now() + ORDER_RETRY_MS;
      for (;;) {
        try {
          const { order } = await orderApi.placeOrder(request, { timeoutMs: 10_000 });
          if (order === undefined) {
            throw new Error("PlaceOrder answered without an order");
          }
          orderNumbers.set(order.orderId, n);
          placed.push({
            n,
            orderId: order.orderId,
            kind,
            paymentToken: request.paymentToken ?? "",
            totalMinor: order.total?.amountMinor ?? 0n,
            currency: order.total?.currencyCode ?? "",
            lines: order.items.map((item) => ({
              productId: item.productId,
              quantity: item.quantity,
            })),
          });
          return;
        } catch (error) {
          const e = ConnectError.from(error);
          const final =
            (e.code === ConnectCode.InvalidArgument && !e.rawMessage.includes("unknown product")) ||
            e.code === ConnectCode.AlreadyExists;
          if (final || Date.now() > giveUpAt) {
            refused++;
            log(`!! order ${n} was refused: [${ConnectCode[e.code]}] ${e.rawMessage}`);
            return;
          }
          apiRetries++;
          await sleep(250);
        }
      }
    };

    const runFault = async (event: TimelineEvent): Promise<void> => {
      await sleep(t0 + event.atMs - Date.now());
      const atMs = since();
      switch (event.kind) {
        case "kill":
        case "outage": {
          const target = service(event.service);
          if (event.kind === "kill") {
            if (!killedAt.has(event.service)) {
              killedAt.set(event.service, Date.now());
            }
            await target.kill();
          } else {
            await target.stop();
          }
          const downAt = Date.now();
          await sleep(event.downMs);
          try {
            await target.start(RESTART_TIMEOUT_MS);
          } catch (error) {
            unexpectedExits.push(
              `${event.service} could not be restarted: ${(error as Error).message}`,
            );
          }
          timeline.push({
            kind: event.kind === "kill" ? "SIGKILL" : "down (SIGTERM)",
            target: event.service,
            plannedAtMs: event.atMs,
            atMs,
            downMs: event.downMs,
            backAfterMs: Date.now() - downAt,
          });
          return;
        }
        case "postgres-outage": {
          const cut = proxy as TcpProxy;
          await cut.down();
          await sleep(event.downMs);
          await cut.up();
          timeline.push({
            kind: "connections cut",
            target: "PostgreSQL",
            plannedAtMs: event.atMs,
            atMs,
            downMs: event.downMs,
            backAfterMs: since() - atMs,
          });
          return;
        }
        case "poison": {
          const contract = registry.events.find((e) => e.topic === event.topic);
          if (contract === undefined) {
            throw new Error(`no event is published on ${event.topic}`);
          }
          const random = seededRandom(Math.floor(hashUnit(options.seed, event.id) * 2 ** 32));
          const message = poisonMessage(event.poison, contract, event.id, random);
          const messageId = await pubsub.topic(event.topic).publishMessage(message);
          poison.push({
            id: event.id,
            kind: event.poison,
            topic: event.topic,
            subscriptions: subscriptionsOf(registry, event.topic),
            reason: POISON_REASONS[event.poison],
          });
          timeline.push({
            kind: `poison ${event.poison}`,
            target: event.topic,
            plannedAtMs: event.atMs,
            atMs,
            detail: `ce-id ${event.id}, message ${messageId}`,
          });
          return;
        }
      }
    };

    const progress = setInterval(() => {
      log(`  ${(since() / 1000).toFixed(0)} s: ${placed.length}/${options.orders} orders placed`);
    }, 10_000);
    try {
      await Promise.all([
        ...Array.from({ length: options.orders }, (_, i) => placeOne(i + 1)),
        ...plan.timeline.map(runFault),
      ]);
    } finally {
      clearInterval(progress);
    }
    monitor.copying = false;
    const placingMs = since();
    timeline.sort((a, b) => a.atMs - b.atMs);
    log(
      `schedule done after ${(placingMs / 1000).toFixed(1)} s: ${placed.length} orders placed, ${refused} refused; draining`,
    );

    // 7. Drain: every order decided, every compensation, shipment and e-mail done, outboxes empty.
    const expectations: Expectations = {
      orders: placed,
      initialStock,
      limitMinor,
      poison,
      subscriptions: new Map(
        consumedTopics(registry).map((topic) => [topic, subscriptionsOf(registry, topic)]),
      ),
    };
    // Events the emulator stranded after a SIGKILL (see stranded.ts):
    // re-sent to that one subscription, as `dlq replay` does (same ce-id,
    // protoevents-replay-for), without the ordering key the emulator would
    // hand to the dead stream again; counted.
    const subscriptionContracts = registry.applications.flatMap((a) =>
      a.subscriptions.map((sub) => ({ name: sub.name, topic: sub.event.topic, service: a.name })),
    );
    const resent = new Map<string, { count: number; lastAt: number }>();
    const strandedBySubscription: Record<string, number> = {};
    let resends = 0;
    const faultLogs = new FaultLogs(faultsDir);
    const resendStranded = (snapshot: Awaited<ReturnType<StoreReader["read"]>>): void => {
      const now = Date.now();
      const claimLines = new Map<ServiceName, ReadonlyMap<string, FaultLogLine>>();
      // Killed, stopped, and failed starts alike: whatever they held is nobody's now.
      const deadPids = new Set([...services.values()].flatMap((s) => s.deadPids));
      for (const [subscription, ids] of unclaimed(expectations, snapshot, monitor)) {
        const contract = subscriptionContracts.find((c) => c.name === subscription);
        const service = contract?.service as ServiceName | undefined;
        const killed = service === undefined ? undefined : killedAt.get(service);
        if (contract === undefined || service === undefined || killed === undefined) {
          continue;
        }
        for (const id of ids) {
          const event = monitor.byTopic.get(contract.topic)?.get(id);
          const key = `${subscription}\u0000${id}`;
          const prior = resent.get(key);
          if (event === undefined || !mayBeStranded(now, event.firstSeenAt, killed, prior)) {
            continue;
          }
          let lines = claimLines.get(service);
          if (lines === undefined) {
            lines = faultLogs.lastLines(service);
            claimLines.set(service, lines);
          }
          if (!isStranded({ now, prior, lastClaim: lines.get(key), deadPids })) {
            continue;
          }
          for (let copy = 0; copy < RESEND_COPIES; copy++) {
            monitor.publish(
              contract.topic,
              event.data,
              { ...event.attributes, [REPLAY_FOR_ATTRIBUTE]: subscription },
              undefined,
            );
          }
          if (prior === undefined) {
            strandedBySubscription[subscription] = (strandedBySubscription[subscription] ?? 0) + 1;
          }
          resent.set(key, { count: (prior?.count ?? 0) + 1, lastAt: now });
          resends++;
        }
      }
    };
    const drainStart = Date.now();
    let drained = false;
    let lastWaiting = "";
    let lastLogged = 0;
    while (Date.now() - drainStart < options.drainTimeoutMs) {
      const current = await reader.read();
      const waiting = awaited(expectations, current, monitor);
      if (waiting.length === 0 && monitor.pendingCopies === 0) {
        drained = true;
        break;
      }
      resendStranded(current);
      lastWaiting = waiting.join(", ");
      if (Date.now() - lastLogged > 10_000) {
        lastLogged = Date.now();
        log(
          `  draining ${((Date.now() - drainStart) / 1000).toFixed(0)} s: waiting for ${lastWaiting || "late copies"}`,
        );
      }
      await sleep(500);
    }
    const drainMs = Date.now() - drainStart;
    log(
      drained
        ? `drained in ${(drainMs / 1000).toFixed(1)} s`
        : `did not drain within ${options.drainTimeoutMs / 1000} s: still waiting for ${lastWaiting}`,
    );

    // 8. Judge: let stragglers land, then read everything once more.
    await sleep(SETTLE_MS);
    const snapshot = await reader.read();
    const deadLetterDeadline = Date.now() + DEAD_LETTER_WAIT_MS;
    let deadLetters = await readDeadLetters(pubsub);
    const expectedLetters = poison.reduce((sum, p) => sum + p.subscriptions.length, 0);
    while (
      new Set(deadLetters.map((d) => `${d.subscription} ${d.eventId}`)).size < expectedLetters &&
      Date.now() < deadLetterDeadline
    ) {
      await sleep(1_000);
      deadLetters = await readDeadLetters(pubsub);
    }
    const mailFiles = new Set(
      (await readdir(join(dataDir, "mail")).catch(() => [] as string[])).filter((f) =>
        f.endsWith(".eml"),
      ),
    );
    const invariants = checkInvariants({
      expectations,
      snapshot,
      observed: monitor,
      deadLetters,
      mailFiles,
      unexpectedExits,
      monitorErrors: monitor.errors,
      resentDeliveries: resent.size,
    });
    const passed = invariants.every((i) => i.passed);
    keep ||= !passed;
    const deliveries = Object.fromEntries(
      SERVICES.map((service) => [service, faultLogs.counts(service)]),
    ) as Record<ServiceName, DeliveryCounts>;
    const sum = (key: keyof DeliveryCounts) =>
      Object.values(deliveries).reduce((total, d) => total + d[key], 0);
    const statuses = placed.map((o) => statusOf(snapshot, o.orderId));
    const poisonCounts = Object.fromEntries(
      POISON_KINDS.map((kind) => [kind, poison.filter((p) => p.kind === kind).length]),
    ) as Record<PoisonKind, number>;
    const outages = plan.timeline.filter((e) => e.kind === "outage");
    const pgOutages = plan.timeline.filter((e) => e.kind === "postgres-outage");
    const { reportFile: _file, keep: _keep, postgresUrl: _url, ...shownOptions } = options;
    return {
      seed: options.seed,
      store: options.store,
      command: commandOf(options),
      options: shownOptions,
      startedAt: new Date(startedAt).toISOString(),
      passed,
      orders: {
        planned: options.orders,
        placed: placed.length,
        refused,
        apiRetries,
        confirmed: statuses.filter((s) => s === "confirmed").length,
        cancelled: statuses.filter((s) => s === "cancelled").length,
        open: statuses.filter((s) => s === undefined).length,
      },
      faults: {
        handlerFaults: sum("fault"),
        duplicatesInjected: monitor.injected.duplicates,
        delayedInjected: monitor.injected.delayed,
        kills: timeline.filter((e) => e.kind === "SIGKILL").length,
        notificationOutages: outages.length,
        notificationDownMs: outages.reduce((total, e) => total + ("downMs" in e ? e.downMs : 0), 0),
        postgresOutages: pgOutages.length,
        postgresDownMs: pgOutages.reduce((total, e) => total + ("downMs" in e ? e.downMs : 0), 0),
        poison: poisonCounts,
      },
      deliveries,
      strandedDeliveries: {
        resent: resent.size,
        resends,
        bySubscription: strandedBySubscription,
      },
      duplicatesAbsorbed: sum("duplicate"),
      redeliveries: sum("fault") + sum("failed"),
      deadLetters: deadLetters.length,
      failedStarts: [...services.values()].reduce((total, s) => total + s.failedStarts, 0),
      timings: {
        startupMs,
        placingMs,
        drainMs,
        drained,
        totalMs: Date.now() - startedAt,
      },
      timeline,
      invariants,
      ...(keep ? { runDir } : {}),
    };
  } catch (error) {
    keep = true;
    log(`the run failed; stores, e-mails and logs kept in ${runDir}`);
    throw error;
  } finally {
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error: unknown) => log(`cleanup: ${(error as Error).message}`));
    }
    if (!keep) {
      await rm(runDir, { recursive: true, force: true });
    }
  }
}
