import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import {
  createOrderSagaServicePublisher,
  PaymentServiceSubscriptions,
  ShippingServiceSubscriptions,
} from "../../generated/checkout/v1/applications_pe.js";
import { registry } from "../../generated/protoevents_registry.js";
import { bindHandler, type DeliveryOutcome, startConsumer } from "../../runtime/src/consumer.js";
import type { DeadLetterSummary, DeadLetterView } from "../../runtime/src/dead-letters.js";
import { PermanentError } from "../../runtime/src/errors.js";
import { provision } from "../../runtime/src/provision.js";
import { createPubSub } from "../../runtime/src/pubsub-client.js";
import { afterThisTest, tempDir } from "../helpers/cleanup.js";
import { protoevents as run } from "../helpers/cli.js";
import { validOrderPlaced } from "../helpers/orders.js";
import { waitFor } from "../helpers/wait.js";

const protoevents = (args: string[]) =>
  run(args, { env: { PUBSUB_EMULATOR_HOST: inject("emulatorHost") } });

let projects = 0;
function project(prefix: string): string {
  projects++;
  return `${prefix}-${process.pid}-${projects}`;
}

const deadLetterSubscriptions = registry.applications
  .flatMap((a) => a.subscriptions)
  .filter((s) => s.deadLetter !== undefined).length;

describe("protoevents dlq", () => {
  it("should list, show, dry-run and replay the dead letters of a subscription from the command line", async () => {
    const projectId = project("dlq-cli");
    const pubsub = createPubSub({ projectId, emulatorHost: inject("emulatorHost") });
    afterThisTest(() => pubsub.close());
    await provision(pubsub, registry, { dryRun: false });
    let fixed = false;
    const charged: string[] = [];
    const outcomes: DeliveryOutcome[] = [];
    const consumer = startConsumer(
      pubsub,
      [
        bindHandler(PaymentServiceSubscriptions.chargeOrder, (event) => {
          if (!fixed) {
            throw new PermanentError(`order ${event.orderId} references an unknown customer`);
          }
          charged.push(event.orderId);
        }),
      ],
      { onDelivery: (o) => outcomes.push(o) },
    );
    afterThisTest(() => consumer.close());
    const poison = await createOrderSagaServicePublisher(pubsub).publishOrderPlaced(
      validOrderPlaced("ord-cli"),
    );
    await pubsub.topic("checkout.order-placed").publishMessage({
      data: Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]),
      attributes: { "ce-id": "raw-1", "ce-type": "checkout.v1.OrderPlaced", "ce-source": "raw" },
    });
    await waitFor(
      "two dead letters",
      () => outcomes.filter((o) => o.result === "dead-lettered").length === 2,
    );
    const at = ["--project", projectId];

    const list = await protoevents(["dlq", "list", ...at]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(
      /^payment\.charge-order: 2 dead letters in payment\.charge-order\.dead-letter, oldest \d{4}-/m,
    );
    expect(list.stdout).toMatch(
      /^ {6}1 {2}decode_failed {2}oldest \S+, on delivery 1, checkout\.v1\.OrderPlaced$/m,
    );
    expect(list.stdout).toMatch(
      /^ {6}1 {2}permanent {6}oldest \S+, on delivery 1, checkout\.v1\.OrderPlaced$/m,
    );
    expect(list.stdout).toContain(
      `2 dead letters in 1 of ${deadLetterSubscriptions} dead-letter subscriptions`,
    );

    const listJson = await protoevents(["dlq", "list", "--json", ...at]);
    const summaries = JSON.parse(listJson.stdout) as DeadLetterSummary[];
    expect(summaries).toHaveLength(deadLetterSubscriptions);
    expect(summaries.find((s) => s.subscription === "payment.charge-order")?.count).toBe(2);

    const show = await protoevents([
      "dlq",
      "show",
      "--subscription",
      "payment.charge-order",
      ...at,
    ]);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain("reason:   permanent on delivery 1: order ord-cli references");
    expect(show.stdout).toContain(`event:    checkout.v1.OrderPlaced ${poison.id} from order`);
    expect(show.stdout).toContain('"customerEmail": "[redacted]"');
    expect(show.stdout).toContain("undecodable: payload of checkout.v1.OrderPlaced event raw-1");
    expect(show.stdout).toContain("hex     ffffffff0f01");
    expect(show.stdout).toContain("base64  /////w8B");
    expect(show.stdout).toContain("2 dead letters shown");
    expect(show.stdout).not.toContain("ada@example.com");
    expect(show.stdout).not.toContain("tok_visa_4242");

    const showJson = await protoevents(["dlq", "show", "--json", "--reason", "permanent", ...at]);
    const views = JSON.parse(showJson.stdout) as DeadLetterView[];
    expect(views.map((v) => [v.kind, v.reason, v.attributes["ce-id"]])).toEqual([
      ["decoded", "permanent", poison.id],
    ]);

    const unselected = await protoevents(["dlq", "replay", ...at]);
    expect(unselected.code).toBe(1);
    expect(unselected.stderr).toContain(
      "[invalid_argument] say which dead letters to replay: --all, --reason <reason> or --event-id <id...>",
    );

    const dry = await protoevents(["dlq", "replay", "--reason", "permanent", "--dry-run", ...at]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(
      `would replay  payment.charge-order ${poison.id} checkout.v1.OrderPlaced (permanent) → checkout.order-placed`,
    );
    expect(dry.stdout).toContain(
      "1 would be replayed, 0 skipped; dry run: nothing was published or acked",
    );
    expect(charged).toEqual([]);

    fixed = true;
    const replay = await protoevents(["dlq", "replay", "--event-id", poison.id, "nope", ...at]);
    expect(replay.code).toBe(0);
    expect(replay.stdout).toMatch(
      new RegExp(
        `^replayed {6}payment\\.charge-order ${poison.id} checkout\\.v1\\.OrderPlaced \\(permanent\\) → checkout\\.order-placed as message \\d+$`,
        "m",
      ),
    );
    expect(replay.stdout).toContain("not found     no dead letter with event id nope");
    expect(replay.stdout).toContain("1 replayed, 0 skipped, 0 failed");
    await waitFor("the replay charged", () => charged.length === 1);
    expect(charged).toEqual(["ord-cli"]);

    const after = await protoevents(["dlq", "list", ...at]);
    expect(after.stdout).toContain("payment.charge-order: 1 dead letter in");
    expect(after.stdout).not.toMatch(/ permanent /);
  }, 120_000); // nine CLI runs, each starting Node and tsx
});

describe("protoevents provision --dry-run", () => {
  it("should print updates and conflicts with the explanation, and refuse to apply a conflict", async () => {
    const projectId = project("plan-cli");
    const pubsub = createPubSub({ projectId, emulatorHost: inject("emulatorHost") });
    afterThisTest(() => pubsub.close());
    await provision(pubsub, registry, { dryRun: false });
    // Drift: an ack deadline changed by hand (updatable in place), and a
    // subscription recreated with a filter (a filter cannot change in place).
    await pubsub.subscription("inventory.reserve-stock").setMetadata({ ackDeadlineSeconds: 45 });
    const shipping = ShippingServiceSubscriptions.prepareShipment;
    await pubsub.subscription(shipping.name).delete();
    await pubsub.createSubscription(shipping.event.topic, shipping.name, {
      filter: 'attributes.region = "eu"',
      ackDeadlineSeconds: shipping.ackDeadlineSeconds,
      retryPolicy: {
        minimumBackoff: { seconds: shipping.minBackoffSeconds },
        maximumBackoff: { seconds: shipping.maxBackoffSeconds },
      },
      deadLetterPolicy: {
        deadLetterTopic: `projects/${projectId}/topics/${shipping.deadLetter?.topic}`,
        maxDeliveryAttempts: shipping.maxDeliveryAttempts,
      },
    });
    const at = ["--project", projectId];

    const plan = await protoevents(["provision", "--dry-run", ...at]);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain(
      "~ subscription inventory.reserve-stock: ackDeadlineSeconds: 45 → 30",
    );
    expect(plan.stdout).toMatch(
      /^! subscription shipping\.prepare-shipment: filter: "attributes\.region = \\"eu\\"" → ""; a filter cannot be changed on an existing subscription: create a new subscription with a new name in the contract, move consumers, then delete the old one$/m,
    );
    expect(plan.stdout).toContain("= topic checkout.order-placed: up to date");
    expect(plan.stdout).toMatch(/0 to create, 1 to update, \d+ unchanged, 1 conflict$/m);
    expect(plan.stdout).toContain("dry run: nothing was changed");

    const apply = await protoevents(["provision", ...at]);
    expect(apply.code).toBe(1);
    expect(apply.stderr).toContain(
      "[provisioning_conflict] Refusing to apply: 1 resource(s) differ in ways Pub/Sub cannot change in place",
    );
    expect(apply.stderr).toContain("subscription shipping.prepare-shipment: filter:");
    // Refused before changing anything: the updatable drift is still there.
    const [metadata] = await pubsub.subscription("inventory.reserve-stock").getMetadata();
    expect(metadata.ackDeadlineSeconds).toBe(45);
  });
});

describe("protoevents catalog", () => {
  it("should write the AsyncAPI document and the HTML page into --out", async () => {
    const out = await tempDir("protoevents-catalog-cli");
    const run = await protoevents(["catalog", "--out", out]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("12 events, 6 services, 12 topics, 15 subscriptions");
    expect(run.stdout).toMatch(/wrote .*asyncapi\.json \(AsyncAPI 3\.0\)/);
    const document = JSON.parse(await readFile(join(out, "asyncapi.json"), "utf8")) as {
      asyncapi: string;
    };
    expect(document.asyncapi).toBe("3.0.0");
    expect(await readFile(join(out, "index.html"), "utf8")).toMatch(/^<!doctype html>/);
  });
});
