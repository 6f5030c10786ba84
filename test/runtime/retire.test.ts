import type { Message } from "@google-cloud/pubsub";
import { describe, expect, it } from "vitest";
import { OrderPlacedEvent } from "../../generated/checkout/v1/order_events_pe.js";
import type { ContractRegistry } from "../../runtime/src/contract.js";
import { Code, isProtoeventsError } from "../../runtime/src/errors.js";
import { provision } from "../../runtime/src/provision.js";
import { retireSubscription } from "../../runtime/src/retire.js";
import { afterThisTest } from "../helpers/cleanup.js";
import { protoevents } from "../helpers/cli.js";
import { testPubSub } from "../helpers/pubsub.js";
import { fastSubscription, registryWith } from "../helpers/test-contracts.js";
import { waitFor } from "../helpers/wait.js";

/** The same application after it removed its `old.charge` consumer, listing it as retired or not. */
function withoutOld(retired: boolean): ContractRegistry {
  const base = registryWith(fastSubscription("keep.charge"));
  return {
    events: base.events,
    applications: base.applications.map((app) =>
      retired ? { ...app, retiredSubscriptions: ["old.charge"] } : app,
    ),
  };
}

async function refusal(work: Promise<unknown>): Promise<string> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isProtoeventsError(error) && error.code).toBe(Code.InvalidArgument);
  return String(error);
}

describe("retiring a subscription", () => {
  it("should delete nothing while it is consumed, unlisted or holding messages, then delete all three parts", async () => {
    const pubsub = testPubSub("retire");
    afterThisTest(() => pubsub.close());
    const before = registryWith(fastSubscription("keep.charge"), fastSubscription("old.charge"));
    await provision(pubsub, before, { dryRun: false });

    expect(
      await refusal(retireSubscription(pubsub, before, "old.charge", { dryRun: false })),
    ).toContain(
      "subscription old.charge is still consumed by rpc checkout.v1.PaymentService.ChargeOrder",
    );
    expect(
      await refusal(retireSubscription(pubsub, withoutOld(false), "old.charge", { dryRun: false })),
    ).toContain("subscription old.charge is not in any application's retired_subscriptions");

    // A message waits in the subscription, and a dead letter in its dead-letter subscription.
    await pubsub.topic(OrderPlacedEvent.topic).publishMessage({ data: Buffer.from("x") });
    await pubsub.topic("old.charge.dead-letter").publishMessage({ data: Buffer.from("y") });
    const retired = withoutOld(true);
    expect(
      await refusal(retireSubscription(pubsub, retired, "old.charge", { dryRun: false })),
    ).toContain(
      "not retiring old.charge: old.charge.dead-letter and old.charge still hold messages",
    );

    // Drained: the consumer handled the backlog, the dead letter was dealt with.
    for (const name of ["old.charge", "old.charge.dead-letter"]) {
      const drained: Message[] = [];
      const sub = pubsub.subscription(name);
      sub.on("message", (m: Message) => {
        m.ack();
        drained.push(m);
      });
      await waitFor(`${name} to be drained`, () => drained.length > 0);
      await sub.close();
    }

    const planned = await retireSubscription(pubsub, retired, "old.charge", { dryRun: true });
    expect(planned).toEqual([
      { resource: "subscription", name: "old.charge.dead-letter" },
      { resource: "subscription", name: "old.charge" },
      { resource: "topic", name: "old.charge.dead-letter" },
    ]);
    expect((await pubsub.subscription("old.charge").exists())[0]).toBe(true);

    expect(await retireSubscription(pubsub, retired, "old.charge", { dryRun: false })).toEqual(
      planned,
    );
    for (const name of ["old.charge", "old.charge.dead-letter"]) {
      expect((await pubsub.subscription(name).exists())[0], name).toBe(false);
    }
    expect((await pubsub.topic("old.charge.dead-letter").exists())[0]).toBe(false);
    // The subscription that stays is untouched, and provisioning does not bring the old one back.
    expect((await pubsub.subscription("keep.charge").exists())[0]).toBe(true);
    const { plan } = await provision(pubsub, retired, { dryRun: true });
    expect(plan.actions.every((a) => a.kind === "unchanged")).toBe(true);
  });

  it("should refuse, through the CLI, a subscription the checkout still consumes", async () => {
    const run = await protoevents(["retire", "payment.charge-order", "--dry-run"], {
      env: { PUBSUB_EMULATOR_HOST: "127.0.0.1:1", PUBSUB_PROJECT_ID: "retire-cli" },
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      "subscription payment.charge-order is still consumed by rpc checkout.v1.PaymentService.ChargeOrder",
    );
  });
});
