import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import type { PubSub } from "@google-cloud/pubsub";
import { ProductService } from "../../generated/checkout/v1/catalog_api_pb.js";
import { OrderService } from "../../generated/checkout/v1/order_api_pb.js";
import { registry } from "../../generated/protoevents_registry.js";
import { provision } from "../../runtime/src/provision.js";
import { createPubSub } from "../../runtime/src/pubsub-client.js";
import { startTsProcess, type TestProcess } from "./processes.js";
import { waitFor } from "./wait.js";

/** The checkout's services, in the order they start. */
export const SERVICES = [
  "catalog",
  "inventory",
  "payment",
  "shipping",
  "notification",
  "order",
] as const;
export type ServiceName = (typeof SERVICES)[number];

/** The whole checkout, each service its own process, on the test run's emulator. */
export interface Checkout {
  readonly pubsub: PubSub;
  readonly dataDir: string;
  readonly orders: Client<typeof OrderService>;
  readonly products: Client<typeof ProductService>;
  readonly processes: ReadonlyMap<ServiceName, TestProcess>;
  /** Start a service (again). */
  start(name: ServiceName): Promise<void>;
  /** Stop a service gracefully (SIGTERM). */
  stop(name: ServiceName): Promise<void>;
  /** The e-mails notification wrote, by file name. */
  mails(): Promise<Map<string, string>>;
  /** Stop every service, close the client, remove the data directory. */
  close(): Promise<void>;
}

function readyFields(line: string): { port?: number } {
  return JSON.parse(line) as { port?: number };
}

/**
 * Wait until the order service's catalog view knows every product: the
 * catalog's seed reaches it as ProductUpdated events, eventually. The probe
 * is a request that fails validation on its quantities (so nothing is
 * placed) and names unknown products while there are some.
 */
export async function catalogViewReady(
  orders: Client<typeof OrderService>,
  productIds: readonly string[],
): Promise<void> {
  await waitFor(
    "the order service's catalog view to know every product",
    async () => {
      const error = await orders
        .placeOrder({ lines: productIds.map((productId) => ({ productId, quantity: 0 })) })
        .then(
          () => new Error("the catalog probe placed an order"),
          (e: unknown) => e as Error,
        );
      return !error.message.includes("unknown product");
    },
    60_000,
    100,
  );
}

let projects = 0;

/**
 * Start the checkout on an emulator: provision a fresh project, start every
 * service, connect API clients. `env` adds to the services' environment.
 */
export async function startCheckout(
  emulatorHost: string,
  env: Record<string, string> = {},
  nodeArgs: readonly string[] = [],
): Promise<Checkout> {
  projects++;
  const pubsub = createPubSub({ projectId: `checkout-${process.pid}-${projects}`, emulatorHost });
  await provision(pubsub, registry, { dryRun: false });
  const dataDir = await mkdtemp(join(tmpdir(), "protoevents-checkout-"));
  const processes = new Map<ServiceName, TestProcess>();
  const ports = new Map<ServiceName, number>();
  const start = async (name: ServiceName) => {
    const child = startTsProcess(
      `services/${name}/main.ts`,
      {
        PUBSUB_EMULATOR_HOST: emulatorHost,
        PUBSUB_PROJECT_ID: pubsub.projectId,
        PROTOEVENTS_DATA_DIR: dataDir,
        PROTOEVENTS_LOG_LEVEL: process.env.PROTOEVENTS_LOG_LEVEL ?? "info",
        ORDER_API_PORT: String(ports.get("order") ?? 0),
        PRODUCT_API_PORT: String(ports.get("catalog") ?? 0),
        ...env,
      },
      nodeArgs,
    );
    processes.set(name, child);
    const line = await child.waitForMatch(/"msg":"service ready"/, 60_000);
    const port = readyFields(line).port;
    if (port !== undefined) {
      ports.set(name, port);
    }
  };
  const transport = (port: number | undefined) =>
    createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "1.1" });
  let orders: Client<typeof OrderService>;
  let products: Client<typeof ProductService>;
  try {
    for (const name of SERVICES) {
      await start(name);
    }
    orders = createClient(OrderService, transport(ports.get("order")));
    products = createClient(ProductService, transport(ports.get("catalog")));
    await catalogViewReady(
      orders,
      (await products.listProducts({})).products.map((p) => p.productId),
    );
  } catch (error) {
    // Nothing must outlive a failed start.
    await Promise.all([...processes.values()].map((p) => p.stop()));
    await pubsub.close();
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    pubsub,
    dataDir,
    orders,
    products,
    processes,
    start,
    async stop(name) {
      await processes.get(name)?.stop();
    },
    async mails() {
      const dir = join(dataDir, "mail");
      const files = await readdir(dir).catch(() => [] as string[]);
      const mails = new Map<string, string>();
      for (const file of files.filter((f) => f.endsWith(".eml"))) {
        mails.set(file, await readFile(join(dir, file), "utf8"));
      }
      return mails;
    },
    async close() {
      await Promise.all([...processes.values()].map((p) => p.stop()));
      await pubsub.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
