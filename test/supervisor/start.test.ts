import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, inject, it } from "vitest";
import { localEmulatorFile } from "../../runtime/src/local-emulator.js";
import { createPubSub } from "../../runtime/src/pubsub-client.js";
import {
  DECLINED_TOKEN,
  DemoOrders,
  demoOrderKind,
  expectedOutcome,
  LIMITED_SKU,
  PAYMENT_LIMIT_MINOR,
} from "../../services/supervisor/demo-orders.js";
import {
  renderProgress,
  renderProgressLine,
  renderSummary,
} from "../../services/supervisor/progress.js";
import { processExists, serviceEnv, storeUrlOf } from "../../services/supervisor/start.js";
import { CHECKOUT_COMMAND, protoevents } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dataDirs: string[] = [];

afterAll(() => {
  for (const dir of dataDirs) {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** `protoevents start …` in its own process, with its own project and data directory. */
function startCli(args: string[], options: { ownEmulator?: boolean } = {}) {
  const project = `start-${process.pid}-${Date.now()}`;
  const dataDir = mkdtempSync(join(tmpdir(), "protoevents-start-"));
  dataDirs.push(dataDir);
  const env: Record<string, string | undefined> = {
    ...process.env,
    // The test run's emulator, unless the run must start (and own) one itself.
    PUBSUB_EMULATOR_HOST: options.ownEmulator === true ? undefined : inject("emulatorHost"),
    PUBSUB_PROJECT_ID: project,
    PROTOEVENTS_DATA_DIR: dataDir,
    PROTOEVENTS_STORE_URL: undefined,
  };
  const child: ChildProcess = spawn(
    process.execPath,
    [...CHECKOUT_COMMAND, "start", "--order-port", "0", "--product-port", "0", ...args],
    { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  const listeners = new Set<() => void>();
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString("utf8");
    for (const listener of listeners) {
      listener();
    }
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  return {
    child,
    project,
    dataDir,
    exited,
    output: () => `${stdout}\n--- stderr ---\n${stderr}`,
    stdout: () => stdout,
    /** The PIDs it reported with `started <name> pid=<pid>`. */
    pids: () => [...stdout.matchAll(/^started (\S+) pid=(\d+)/gm)].map((m) => Number(m[2])),
    /** Resolves once stdout matches `pattern`. */
    waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${stdout}\n${stderr}`));
        }, timeoutMs);
        function check() {
          const match = stdout.match(pattern);
          if (match !== null) {
            listeners.delete(check);
            clearTimeout(timer);
            resolve(match);
          }
        }
        listeners.add(check);
        check();
      });
    },
  };
}

/** Resolves with the exit code, or fails after `ms` (killing the process group's leader). */
async function exitWithin(run: ReturnType<typeof startCli>, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      run.child.kill("SIGKILL");
      reject(new Error(`protoevents start did not exit within ${ms} ms:\n${run.output()}`));
    }, ms);
  });
  try {
    return await Promise.race([run.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function monitoringSubscriptions(project: string): Promise<string[]> {
  const pubsub = createPubSub({ projectId: project, emulatorHost: inject("emulatorHost") });
  try {
    const [subscriptions] = await pubsub.getSubscriptions();
    return subscriptions
      .map((s) => s.name.slice(s.name.lastIndexOf("/") + 1))
      .filter((name) => name.startsWith("monitor."));
  } finally {
    await pubsub.close();
  }
}

describe("protoevents start", () => {
  it("should run every service, place 30 demo orders and exit 0 once each is confirmed or cancelled", async () => {
    const run = startCli(["--orders", "30", "--rate", "20", "--exit-when-done"]);
    const code = await exitWithin(run, 170_000);
    const out = run.output();
    expect(code, out).toBe(0);

    // Every 7th a declined card (7, 14, 21, 28), every 11th 2 × sku-limited with 3 in stock
    // (11 confirmed, 22 out of stock), every 13th over the payment limit (13, 26).
    expect(expectedOutcome(30)).toEqual({ confirmed: 23, cancelled: 7 });
    expect(out).toMatch(/^summary: 30 placed, 23 confirmed, 7 cancelled, 0 pending, 0 rejected;/m);
    expect(out).toContain("all 30 demo orders placed");
    expect(out).toMatch(/^events: .*order-placed 30, order-confirmed 23, order-cancelled 7/m);

    // The e-mails of the orders (notification writes <order id>-<kind>.eml).
    const mail = readdirSync(join(run.dataDir, "mail"));
    expect(mail.filter((f) => f.endsWith("-confirmation.eml"))).toHaveLength(23);
    expect(mail.filter((f) => f.endsWith("-cancellation.eml"))).toHaveLength(7);
    const logs = readdirSync(join(run.dataDir, "logs")).sort();
    expect(logs).toEqual(
      ["catalog", "inventory", "notification", "order", "payment", "shipping"].map(
        (s) => `${s}.log`,
      ),
    );

    // Every service it started is gone, and so are its monitoring subscriptions.
    const pids = run.pids();
    expect(pids, out).toHaveLength(6);
    expect(pids.filter(processExists)).toEqual([]);
    expect(await monitoringSubscriptions(run.project)).toEqual([]);
  }, 180_000);

  it("should stop every process, the emulator it started too, and exit 0 on SIGHUP while placing orders without end", async () => {
    // SIGHUP (its terminal closed) takes the path of Ctrl-C and SIGTERM.
    const run = startCli(["--orders", "0", "--rate", "10"], { ownEmulator: true });
    // Plain progress lines (stdout is not a terminal): wait until some orders are confirmed.
    await run.waitFor(/^progress .*confirmed ([3-9]|\d{2,})\b/m, 150_000);
    const pids = run.pids();
    // The emulator it started, and six services.
    expect(run.stdout()).toMatch(/^started emulator pid=\d+/m);
    expect(pids).toHaveLength(7);
    expect(pids.every(processExists)).toBe(true);
    // A second terminal finds this run's emulator and project without exported variables.
    const beside = await protoevents(["dlq", "list"], {
      env: {
        PUBSUB_EMULATOR_HOST: undefined,
        PUBSUB_PROJECT_ID: undefined,
        GOOGLE_CLOUD_PROJECT: undefined,
      },
    });
    expect(beside.code, beside.stderr).toBe(0);
    expect(beside.stderr).toMatch(
      new RegExp(
        `^dlq list: npm start \\(pid ${run.child.pid}\\) runs an emulator at 127\\.0\\.0\\.1:\\d+, project ${run.project}; using it`,
        "m",
      ),
    );
    expect(beside.stdout).toMatch(/dead-letter subscriptions$/m);

    run.child.kill("SIGHUP");
    const code = await exitWithin(run, 30_000);
    const out = run.output();
    expect(code, out).toBe(0);
    expect(out).toContain("SIGHUP: stopping everything");
    expect(out).toMatch(/^summary: \d+ placed, \d+ confirmed, \d+ cancelled/m);
    expect(out).toContain("stopped: 7 processes exited");
    expect(pids.filter(processExists), out).toEqual([]);
    expect(existsSync(localEmulatorFile(root))).toBe(false);
  }, 180_000);
});

describe("protoevents start killed", () => {
  it("should leave no emulator JVM and no service behind", async () => {
    const run = startCli(["--orders", "0", "--rate", "5"], { ownEmulator: true });
    await run.waitFor(/^services ready in /m, 150_000);
    const pids = run.pids();
    // The emulator it started, and six services.
    expect(run.stdout()).toMatch(/^started emulator pid=\d+/m);
    expect(pids).toHaveLength(7);
    expect(pids.every(processExists)).toBe(true);
    run.child.kill("SIGKILL");
    await run.exited;
    // Nothing could run in the supervisor: the lifelines do it.
    await waitFor(
      "the emulator and every service to stop",
      () => !pids.some(processExists),
      60_000,
    );
    // Each service stopped itself once its supervisor was gone: gracefully,
    // or, with Pub/Sub gone too (the emulator was the supervisor's), after
    // the stop bound, with what it could not publish left in its outbox.
    const services = [...run.stdout().matchAll(/^started (\S+) pid=/gm)]
      .map((m) => m[1] as string)
      .filter((name) => name !== "emulator");
    expect(services).toHaveLength(6);
    for (const name of services) {
      const log = readFileSync(join(run.dataDir, "logs", `${name}.log`), "utf8");
      const gone = log.indexOf("the supervisor that started this service is gone");
      expect(gone, `${name}.log:\n${log.slice(-3000)}`).toBeGreaterThan(-1);
      expect(log.slice(gone), `${name}.log`).toMatch(
        /"msg":"(service stopped|service did not stop within 20 s; exiting \(unpublished events stay in the outbox\))"/,
      );
    }
  }, 240_000);
});

describe("protoevents start and service options", () => {
  async function cliRun(args: string[]): Promise<{ code: number | null; stderr: string }> {
    const child = spawn(process.execPath, [...CHECKOUT_COMMAND, ...args], {
      cwd: root,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8");
    });
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    return { code, stderr };
  }

  it("should refuse bad options with a clear message", async () => {
    const [orders, rate, store, service] = await Promise.all([
      cliRun(["start", "--orders", "-3"]),
      cliRun(["start", "--rate", "0"]),
      cliRun(["start", "--store", "mysql"]),
      cliRun(["service", "billing"]),
    ]);
    expect(orders.code).not.toBe(0);
    expect(orders.stderr).toContain(
      "option '--orders <n>' argument '-3' is invalid. expected a whole number, 0 or more",
    );
    expect(rate.code).not.toBe(0);
    expect(rate.stderr).toContain("expected a number above 0");
    expect(store.code).not.toBe(0);
    expect(store.stderr).toContain(
      "option '--store <store>' argument 'mysql' is invalid. expected sqlite, postgres or a postgres:// URL",
    );
    expect(service.code).not.toBe(0);
    expect(service.stderr).toContain(
      "value 'billing' is invalid for argument 'name'. Allowed choices are catalog, ",
    );
  });
});

describe("the demo order mix", () => {
  const products = [
    { productId: "sku-keyboard", priceMinor: 7990n },
    { productId: "sku-mouse", priceMinor: 2495n },
    { productId: "sku-monitor", priceMinor: 19900n },
    { productId: "sku-headset", priceMinor: 4900n },
    { productId: "sku-limited", priceMinor: 14900n },
  ];
  const price = (id: string) => products.find((p) => p.productId === id)?.priceMinor ?? 0n;
  const total = (lines: readonly { productId?: string; quantity?: number }[]) =>
    lines.reduce((sum, l) => sum + price(l.productId ?? "") * BigInt(l.quantity ?? 0), 0n);

  it("should follow the documented rules, the same for the same seed", () => {
    const a = new DemoOrders(products, 7, "run");
    const b = new DemoOrders(products, 7, "run");
    for (let n = 1; n <= 100; n++) {
      const { kind, request } = a.order(n);
      expect(b.order(n)).toEqual({ kind, request });
      expect(kind).toBe(demoOrderKind(n));
      expect(request.requestId).toBe(`demo-run-${n}`);
      const lines = request.lines ?? [];
      if (n % 7 === 0) {
        expect(kind).toBe("declined-card");
        expect(request.paymentToken).toBe(DECLINED_TOKEN);
      } else if (n % 11 === 0) {
        expect(lines).toEqual([{ productId: LIMITED_SKU, quantity: 2 }]);
      } else if (n % 13 === 0) {
        expect(total(lines)).toBeGreaterThan(PAYMENT_LIMIT_MINOR);
      } else {
        expect(lines.length).toBeGreaterThanOrEqual(1);
        expect(lines.length).toBeLessThanOrEqual(3);
        expect(lines.map((l) => l.productId)).not.toContain(LIMITED_SKU);
        expect(total(lines)).toBeLessThanOrEqual(PAYMENT_LIMIT_MINOR);
      }
    }
    const other = new DemoOrders(products, 8, "run");
    const baskets = (d: DemoOrders) => [1, 2, 3, 4, 5].map((n) => d.order(n).request.lines);
    expect(baskets(other)).not.toEqual(baskets(new DemoOrders(products, 7, "run")));
  });

  it("should expect only the first sku-limited order to be confirmed", () => {
    expect(expectedOutcome(10)).toEqual({ confirmed: 9, cancelled: 1 });
    expect(expectedOutcome(11)).toEqual({ confirmed: 10, cancelled: 1 });
    expect(expectedOutcome(22)).toEqual({ confirmed: 17, cancelled: 5 });
    expect(expectedOutcome(100)).toEqual({ confirmed: 73, cancelled: 27 });
  });
});

describe("the progress view and the services' environment", () => {
  const snapshot = {
    elapsedMs: 83_000,
    target: 100,
    placed: 42,
    rejected: 0,
    confirmed: 30,
    cancelled: 8,
    events: new Map([
      ["checkout.order-placed", 42],
      ["checkout.order-confirmed", 30],
    ]),
    deadLetters: new Map([
      ["payment.charge-order.dead-letter", 1],
      ["order.on-payment-failed.dead-letter", 0],
    ]),
    status: "placing 100 orders, 5 a second",
    footer: [],
  };

  it("should show orders, events per topic, dead letters per topic and the elapsed time", () => {
    const view = renderProgress(snapshot, 100);
    expect(view).toContain("placed 42/100, confirmed 30, cancelled 8, pending 4, rejected 0");
    expect(view).toMatch(/order-placed\s+42/);
    expect(view).toMatch(/order-confirmed\s+30/);
    expect(view).toContain("Dead letters  1 (2 dead-letter topics watched):");
    expect(view).toMatch(/payment\.charge-order\s+1/);
    expect(view).not.toContain("order.on-payment-failed");
    expect(view).toContain("01:23 · placing 100 orders, 5 a second");
    expect(view.split("\n").every((line) => line.length <= 100)).toBe(true);
    expect(renderProgressLine(snapshot)).toBe(
      "progress 01:23: placed 42/100, confirmed 30, cancelled 8, pending 4, rejected 0; events 72, dead letters 1",
    );
    expect(renderSummary(snapshot)[0]).toBe(
      "summary: 42 placed, 30 confirmed, 8 cancelled, 4 pending, 0 rejected; 72 events, 1 dead letters; 83.0 s",
    );
  });

  it("should give every service the emulator, project, data dir, store and ports", () => {
    const env = serviceEnv(
      { PATH: "/bin", PROTOEVENTS_STORE_URL: "postgres://old", PROTOEVENTS_LOG_LEVEL: "error" },
      {
        emulatorHost: "127.0.0.1:8085",
        project: "p",
        dataDir: "/data",
        storeUrl: undefined,
        orderPort: 0,
        productPort: 8081,
        readyLine: true,
      },
    );
    expect(env).toEqual({
      PATH: "/bin",
      PUBSUB_EMULATOR_HOST: "127.0.0.1:8085",
      PUBSUB_PROJECT_ID: "p",
      PROTOEVENTS_DATA_DIR: "/data",
      ORDER_API_PORT: "0",
      PRODUCT_API_PORT: "8081",
      // Quieter levels would hide the "service ready" line the supervisor waits for.
      PROTOEVENTS_LOG_LEVEL: "info",
    });
    expect(storeUrlOf("sqlite")).toBeUndefined();
    expect(storeUrlOf("postgres")).toBe("postgres://postgres@127.0.0.1:5432/test");
    expect(storeUrlOf("postgresql://u@h/db")).toBe("postgresql://u@h/db");
    expect(() => storeUrlOf("mysql://h")).toThrow(/--store must be sqlite, postgres/);
  });
});
