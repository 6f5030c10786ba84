import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { DiagnosticSeverity, Parser } from "@asyncapi/parser";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type WrittenCatalog, writeCatalog } from "../../codegen/src/catalog/write-catalog.js";
import { registry } from "../../generated/protoevents_registry.js";

/** Chromium from Debian, driven by playwright-core; never a downloaded browser. */
const CHROMIUM = process.env.PROTOEVENTS_CHROMIUM ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * Without a browser the page test cannot run: outside CI it is skipped with
 * this note, which the run's summary prints (test/helpers/skip-reporter.ts);
 * in CI, which installs Chromium first, a missing browser fails the test.
 */
const NO_CHROMIUM = existsSync(CHROMIUM)
  ? undefined
  : `no Chromium at ${CHROMIUM}: install Debian's (apt-get install chromium) or point PROTOEVENTS_CHROMIUM at one`;

let dir: string;
let written: WrittenCatalog;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "protoevents-catalog-"));
  written = await writeCatalog({ outDir: dir, version: "9.9.9-test" });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const subscriptions = registry.applications.flatMap((a) => a.subscriptions);
const applications = [...new Set(registry.applications.map((a) => a.name))];
const eventTopics = [...new Set(registry.events.map((e) => e.topic))];
const deadLetterTopics = subscriptions.flatMap((s) =>
  s.deadLetter === undefined ? [] : [s.deadLetter.topic],
);

/** The value at a path of plain JSON objects. */
function at(value: unknown, ...path: string[]): unknown {
  return path.reduce<unknown>(
    (current, key) =>
      typeof current === "object" && current !== null
        ? (current as Record<string, unknown>)[key]
        : undefined,
    value,
  );
}

describe("the AsyncAPI document", () => {
  it("should validate with @asyncapi/parser without errors or warnings", async () => {
    const text = await readFile(written.asyncApiPath, "utf8");
    const { document, diagnostics } = await new Parser().parse(text);
    const problems = diagnostics.filter(
      (d) => d.severity === DiagnosticSeverity.Error || d.severity === DiagnosticSeverity.Warning,
    );
    expect(problems.map((d) => `${d.code} ${d.message} at ${d.path.join(".")}`)).toEqual([]);
    expect(document).toBeDefined();
    expect(document?.version()).toBe("3.0.0");
    expect(document?.info().version()).toBe("9.9.9-test");
    expect(
      document
        ?.channels()
        .all()
        .map((c) => c.address())
        .sort(),
    ).toEqual([...eventTopics, ...deadLetterTopics].sort());
    expect(document?.messages().length).toBe(registry.events.length);
    const operations = document?.operations().all() ?? [];
    const receives = operations.filter((o) => o.action() === "receive").map((o) => o.id());
    expect(receives.sort()).toEqual(subscriptions.map((s) => s.name).sort());
    const sends = operations.filter((o) => o.action() === "send").map((o) => o.id());
    expect(sends).toContain("order.publish.OrderPlaced");
    expect(sends).toContain("payment.publish.PaymentProcessed");
    const charge = operations.find((o) => o.id() === "payment.charge-order");
    expect(charge?.channels().all()[0]?.address()).toBe("checkout.order-placed");
    expect(charge?.messages().all()[0]?.name()).toBe("OrderPlaced");
  });

  it("should carry the Pub/Sub bindings, the payload schema with rules and pii marks, and the subscription settings", async () => {
    const doc: unknown = JSON.parse(await readFile(written.asyncApiPath, "utf8"));
    expect(at(doc, "channels", "checkout.order-placed", "bindings", "googlepubsub")).toMatchObject({
      bindingVersion: "0.2.0",
      schemaSettings: { encoding: "binary", name: "checkout.v1.OrderPlaced" },
    });
    expect(at(doc, "channels", "payment.charge-order.dead-letter", "summary")).toBe(
      "Dead letters of subscription payment.charge-order.",
    );
    const message = at(doc, "components", "messages", "checkout.v1.OrderPlaced");
    expect(message).toMatchObject({
      name: "OrderPlaced",
      contentType: "application/protobuf",
      payload: { $ref: "#/components/schemas/checkout.v1.OrderPlaced" },
      "x-protoevents-owners": ["order"],
      "x-protoevents-pii-fields": ["customer_email", "payment_token"],
    });
    expect(at(message, "headers", "properties", "ce-type", "const")).toBe(
      "checkout.v1.OrderPlaced",
    );
    const schema = at(doc, "components", "schemas", "checkout.v1.OrderPlaced");
    expect(at(schema, "description")).toMatch(/^A customer placed an order\./);
    expect(at(schema, "required")).toEqual([
      "orderId",
      "customerId",
      "customerEmail",
      "total",
      "shippingAddress",
      "paymentToken",
      "placedAt",
    ]);
    expect(at(schema, "properties", "customerEmail")).toMatchObject({
      type: "string",
      maxLength: 254,
      pattern: "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$",
      "x-pii": true,
      description: "E-mail address the confirmation and other notices are sent to.",
    });
    expect(at(schema, "properties", "items")).toMatchObject({
      type: "array",
      minItems: 1,
      maxItems: 100,
      items: { $ref: "#/components/schemas/checkout.v1.LineItem" },
    });
    expect(at(schema, "properties", "placedAt")).toMatchObject({
      type: "string",
      format: "date-time",
    });
    expect(
      at(doc, "components", "schemas", "checkout.v1.Money", "properties", "amountMinor"),
    ).toMatchObject({
      type: "string",
      format: "int64",
      "x-protoevents-rules": { min: "0" },
    });
    expect(at(doc, "operations", "payment.charge-order", "x-protoevents-subscription")).toEqual({
      name: "payment.charge-order",
      service: "checkout.v1.PaymentService",
      rpc: "ChargeOrder",
      maxDeliveryAttempts: 10,
      ackDeadlineSeconds: 60,
      minBackoffSeconds: 2,
      maxBackoffSeconds: 120,
      ordered: false,
      filter: "",
      deadLetterTopic: "payment.charge-order.dead-letter",
      deadLetterSubscription: "payment.charge-order.dead-letter",
    });
  });
});

describe("the HTML catalog in headless Chromium", () => {
  let browser: Browser | undefined;

  beforeAll(async () => {
    if (NO_CHROMIUM === undefined || process.env.CI) {
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    }
  });

  afterAll(async () => {
    await browser?.close();
  });

  it("should load without console errors or requests, show every service and topic in the graph, and render a screenshot", async (context) => {
    if (browser === undefined) {
      return context.skip(NO_CHROMIUM);
    }
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const errors: string[] = [];
    const requests: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error" || message.type() === "warning") {
        errors.push(`${message.type()}: ${message.text()}`);
      }
    });
    page.on("pageerror", (error) => errors.push(`page error: ${error.message}`));
    page.on("request", (request) => requests.push(request.url()));
    const url = pathToFileURL(written.htmlPath).href;
    const response = await page.goto(url, { waitUntil: "load" });
    expect(response?.ok()).toBe(true);
    expect(await page.title()).toBe("protoevents event catalog");

    const graph = page.locator("svg.flow-graph");
    await expect.poll(() => graph.isVisible()).toBe(true);
    const texts = (await graph.locator("text").allTextContents()).map((t) => t.trim());
    for (const name of [...applications, ...eventTopics, ...deadLetterTopics]) {
      expect(texts, `the graph shows ${name}`).toContain(name);
    }
    for (const sub of subscriptions) {
      expect(texts).toContain(sub.name);
    }
    // Producer → topic → subscription → consumer, dead-letter edges included.
    expect(await graph.locator("path.edge.publish").count()).toBeGreaterThan(0);
    expect(await graph.locator("path.edge.dead-letter").count()).toBe(deadLetterTopics.length);
    expect(await graph.locator("path.edge.consume").count()).toBe(subscriptions.length);
    const box = await graph.boundingBox();
    expect(box?.width).toBeGreaterThan(600);

    // Every event with fields, rules, pii and owners; every service.
    const placed = page.locator('[data-event="checkout.v1.OrderPlaced"]');
    await expect.poll(() => placed.count()).toBe(1);
    const email = placed.locator('tr[data-field="customer_email"]');
    expect(await email.locator(".badge.pii").count()).toBe(1);
    expect(await email.textContent()).toContain("E-mail address the confirmation");
    expect(await email.textContent()).toContain("at most 254 characters");
    expect(await placed.textContent()).toContain("Owners (publish it): order");
    expect(await page.locator("[data-event]").count()).toBe(registry.events.length);
    expect(
      (await page.locator("[data-service]").evaluateAll((els) => els.map((e) => e.id))).sort(),
    ).toEqual(applications.map((a) => `service-${a}`).sort());

    const screenshot = join(dir, "catalog.png");
    await page.screenshot({ path: screenshot, fullPage: true });
    const png = await readFile(screenshot);
    expect(png.subarray(0, 8)).toEqual(
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    );
    const width = png.readUInt32BE(16);
    const height = png.readUInt32BE(20);
    expect(width).toBe(1400);
    expect(height).toBeGreaterThan(900); // the whole page, not just the viewport
    expect((await stat(screenshot)).size).toBeGreaterThan(50_000);

    expect(errors).toEqual([]);
    expect(requests).toEqual([url]);
    await page.close();
  });
});
