import type { PubSub } from "@google-cloud/pubsub";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { registry } from "../../generated/protoevents_registry.js";
import type { ContractRegistry, SubscriptionContract } from "../../runtime/src/contract.js";
import { startEmulator } from "../../runtime/src/emulator.js";
import { Code, isProtoeventsError } from "../../runtime/src/errors.js";
import {
  applyPlan,
  formatPlan,
  type ProvisioningPlan,
  planProvisioning,
  provision,
} from "../../runtime/src/provision.js";
import { createPubSub } from "../../runtime/src/pubsub-client.js";

/**
 * The emulator for this file: the run's shared one when the global setup
 * provides it, else one of our own. Tests isolate by project id.
 */
async function useEmulator(): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  const shared = inject("emulatorHost");
  if (typeof shared === "string" && shared !== "") {
    return { endpoint: shared, stop: async () => {} };
  }
  return startEmulator();
}

let emulator: { endpoint: string; stop: () => Promise<void> };
const clients: PubSub[] = [];
const runId = Date.now().toString(36);
let projects = 0;

/** A client on a project of its own, so no test sees another's resources. */
function freshProject(): PubSub {
  projects += 1;
  const client = createPubSub({
    projectId: `prov-${runId}-${projects}`,
    emulatorHost: emulator.endpoint,
  });
  clients.push(client);
  return client;
}

beforeAll(async () => {
  emulator = await useEmulator();
});

afterAll(async () => {
  await Promise.all(clients.map((client) => client.close()));
  await emulator?.stop();
});

/** A copy of the registry with one subscription's contract changed. */
function withSubscription(
  name: string,
  patch: Partial<Omit<SubscriptionContract, "kind">>,
): ContractRegistry {
  return {
    events: registry.events,
    applications: registry.applications.map((app) => ({
      ...app,
      subscriptions: app.subscriptions.map((sub) =>
        sub.name === name ? { ...sub, ...patch } : sub,
      ),
    })),
  };
}

const subscriptionContracts = registry.applications.flatMap((app) => app.subscriptions);
const eventTopics = new Set(registry.events.map((event) => event.topic));
const deadLetterTopics = subscriptionContracts.flatMap((sub) =>
  sub.deadLetter === undefined ? [] : [sub.deadLetter.topic],
);
const deadLetterSubscriptions = subscriptionContracts.flatMap((sub) =>
  sub.deadLetter === undefined ? [] : [sub.deadLetter.subscription],
);
/**
 * Every resource the contracts need: each event topic, and per subscription
 * (every one dead-letters) the subscription, its dead-letter topic and the
 * subscription on that. Derived, so a regenerated registry keeps the tests valid.
 */
const total = eventTopics.size + 3 * subscriptionContracts.length;

function names(plan: ProvisioningPlan, resource: "topic" | "subscription"): string[] {
  return plan.actions.filter((a) => a.resource === resource).map((a) => a.name);
}

function shortNames(resources: ReadonlyArray<{ name: string }>): string[] {
  return resources.map((r) => r.name.slice(r.name.lastIndexOf("/") + 1)).sort();
}

/** An IAM policy as the fake keeps it. */
interface FakePolicy {
  bindings: Array<{ role: string; members: string[] }>;
  etag?: string;
}

/**
 * A fake of real Pub/Sub over the emulator, for what the emulator lacks: it
 * reports itself as real Pub/Sub, records subscription updates in `sent`
 * instead of sending them (the emulator refuses to update an expiration
 * policy), keeps IAM policies in `policies` (the emulator answers every IAM
 * call UNIMPLEMENTED), and fails the project-number lookup as a machine
 * without network would. Everything else goes to the emulator.
 */
function realPubSubFake(
  pubsub: PubSub,
  fakes: {
    sent?: Array<{ name: string; metadata: unknown }>;
    policies?: Map<string, FakePolicy>;
  },
): PubSub {
  const iam = (key: string) => ({
    getPolicy: async () => [structuredClone(fakes.policies?.get(key) ?? { bindings: [] })],
    setPolicy: async (policy: FakePolicy) => {
      fakes.policies?.set(key, structuredClone(policy));
      return [policy];
    },
  });
  const wrap = <T extends object>(target: T, key: string, overrides: Record<string, unknown>): T =>
    new Proxy(target, {
      get(inner, property) {
        if (property === "iam") {
          return iam(key);
        }
        if (typeof property === "string" && property in overrides) {
          return overrides[property];
        }
        const value = Reflect.get(inner, property);
        return typeof value === "function" ? value.bind(inner) : value;
      },
    });
  return new Proxy(pubsub, {
    get(target, property) {
      if (property === "isEmulator") {
        return false;
      }
      if (property === "auth") {
        return {
          request: async () => {
            throw new Error("getaddrinfo ENOTFOUND cloudresourcemanager.googleapis.com");
          },
        };
      }
      if (property === "topic") {
        return (name: string) => wrap(target.topic(name), `topic ${name}`, {});
      }
      if (property === "subscription") {
        return (name: string) =>
          wrap(target.subscription(name), `subscription ${name}`, {
            setMetadata: async (metadata: unknown) => {
              fakes.sent?.push({ name, metadata });
              return [{}];
            },
          });
      }
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

describe("planProvisioning and applyPlan", () => {
  it("should create every topic and subscription on an empty project", async () => {
    const pubsub = freshProject();
    expect(eventTopics.size).toBe(12);
    expect(deadLetterTopics).toHaveLength(subscriptionContracts.length);

    const plan = await planProvisioning(pubsub, registry);
    expect(plan.actions.every((a) => a.kind === "create")).toBe(true);
    const topics = [...eventTopics, ...deadLetterTopics].sort();
    const subscriptions = [
      ...subscriptionContracts.map((sub) => sub.name),
      ...deadLetterSubscriptions,
    ].sort();
    expect(names(plan, "topic").sort()).toEqual(topics);
    expect(names(plan, "subscription").sort()).toEqual(subscriptions);
    expect(plan.actions).toHaveLength(total);

    const result = await applyPlan(pubsub, plan);
    expect(result.created).toHaveLength(total);
    expect(result.alreadyExisted).toEqual([]);
    const [existingTopics] = await pubsub.getTopics();
    const [existingSubscriptions] = await pubsub.getSubscriptions();
    expect(shortNames(existingTopics)).toEqual(topics);
    expect(shortNames(existingSubscriptions)).toEqual(subscriptions);

    const [metadata] = await pubsub.subscription("order.on-payment-processed").getMetadata();
    expect(metadata.topic).toBe(`projects/${pubsub.projectId}/topics/checkout.payment-processed`);
    expect(metadata.deadLetterPolicy).toEqual({
      deadLetterTopic: `projects/${pubsub.projectId}/topics/order.on-payment-processed.dead-letter`,
      maxDeliveryAttempts: 10,
    });
    expect(metadata.retryPolicy?.minimumBackoff?.seconds).toBe("1");
    expect(metadata.retryPolicy?.maximumBackoff?.seconds).toBe("60");
    expect(metadata.enableMessageOrdering).toBe(false);
    expect(metadata.ackDeadlineSeconds).toBe(30);

    const [deadLetters] = await pubsub
      .subscription("order.on-payment-processed.dead-letter")
      .getMetadata();
    expect(deadLetters.topic).toBe(
      `projects/${pubsub.projectId}/topics/order.on-payment-processed.dead-letter`,
    );
    expect(deadLetters.deadLetterPolicy).toBeNull();
    expect(deadLetters.messageRetentionDuration?.seconds).toBe(String(7 * 24 * 3600));
  });

  it("should create every subscription, dead-letter ones included, without expiry", async () => {
    const pubsub = freshProject();
    const { plan } = await provision(pubsub, registry, { dryRun: false });
    const subscriptions = names(plan, "subscription");
    expect(subscriptions).toHaveLength(2 * subscriptionContracts.length);
    for (const name of subscriptions) {
      const [metadata] = await pubsub.subscription(name).getMetadata();
      // A policy without a ttl is "never"; no policy would be Pub/Sub's 31 days.
      expect(metadata.expirationPolicy, name).toEqual({ ttl: null });
      expect(metadata.retainAckedMessages, name).toBe(false);
      expect(metadata.messageRetentionDuration?.seconds, name).toBe(String(7 * 24 * 3600));
    }
    const line = formatPlan(plan)
      .split("\n")
      .find((l) => l.startsWith("+ subscription payment.charge-order:"));
    expect(line).toContain("keeps messages 7 days, never expires");
  });

  it("should create and repair expiry, retention and retained acks the contract declares", async () => {
    const pubsub = freshProject();
    const declared = withSubscription("payment.charge-order", {
      expirationTtlDays: 30,
      messageRetentionSeconds: 3_600,
      retainAckedMessages: true,
    });
    const { plan } = await provision(pubsub, declared, { dryRun: false });
    expect(formatPlan(plan)).toContain(
      "keeps messages 1 hour, retains acked messages, expires after 30 days without activity",
    );
    const [metadata] = await pubsub.subscription("payment.charge-order").getMetadata();
    expect(metadata.expirationPolicy?.ttl?.seconds).toBe(String(30 * 86_400));
    expect(metadata.messageRetentionDuration?.seconds).toBe("3600");
    expect(metadata.retainAckedMessages).toBe(true);
    // Its dead letters stay whatever the subscription says.
    const [deadLetters] = await pubsub
      .subscription("payment.charge-order.dead-letter")
      .getMetadata();
    expect(deadLetters.expirationPolicy).toEqual({ ttl: null });

    // Someone changes retention by hand: the plan shows it and applying repairs it.
    await pubsub.subscription("payment.charge-order").setMetadata({
      messageRetentionDuration: { seconds: 7_200 },
      retainAckedMessages: false,
    });
    const drift = await planProvisioning(pubsub, declared);
    expect(drift.actions.filter((a) => a.kind !== "unchanged")).toMatchObject([
      {
        kind: "update",
        name: "payment.charge-order",
        changes: [
          { field: "messageRetentionSeconds", from: 7_200, to: 3_600 },
          { field: "retainAckedMessages", from: false, to: true },
        ],
      },
    ]);
    await applyPlan(pubsub, drift);
    const [repaired] = await pubsub.subscription("payment.charge-order").getMetadata();
    expect(repaired.messageRetentionDuration?.seconds).toBe("3600");
    expect(repaired.retainAckedMessages).toBe(true);
    expect((await planProvisioning(pubsub, declared)).actions.map((a) => a.kind)).toEqual(
      drift.actions.map(() => "unchanged"),
    );
  });

  it("should create and repair topic retention and exactly-once delivery the contracts declare", async () => {
    const pubsub = freshProject();
    const charge = subscriptionContracts.find((s) => s.name === "payment.charge-order");
    const declared = withSubscription("payment.charge-order", {
      exactlyOnceDelivery: true,
      event: {
        ...(charge?.event as NonNullable<typeof charge>["event"]),
        messageRetentionSeconds: 86_400,
      },
    });
    const { plan } = await provision(pubsub, declared, { dryRun: false });
    expect(formatPlan(plan)).toMatch(
      /^\+ subscription payment\.charge-order: .*exactly-once delivery/m,
    );
    const [topic] = await pubsub.topic("checkout.order-placed").getMetadata();
    expect(topic.messageRetentionDuration?.seconds).toBe("86400");
    const [sub] = await pubsub.subscription("payment.charge-order").getMetadata();
    expect(sub.enableExactlyOnceDelivery).toBe(true);
    // Topics whose events declare nothing keep what they have.
    const [other] = await pubsub.topic("checkout.order-confirmed").getMetadata();
    expect(other.messageRetentionDuration).toBeNull();

    await pubsub.topic("checkout.order-placed").setMetadata({
      messageRetentionDuration: { seconds: 3_600 },
    });
    await pubsub
      .subscription("payment.charge-order")
      .setMetadata({ enableExactlyOnceDelivery: false });
    const drift = await planProvisioning(pubsub, declared);
    expect(drift.actions.filter((a) => a.kind !== "unchanged")).toMatchObject([
      {
        kind: "update",
        resource: "topic",
        name: "checkout.order-placed",
        changes: [{ field: "messageRetentionSeconds", from: 3_600, to: 86_400 }],
      },
      {
        kind: "update",
        resource: "subscription",
        name: "payment.charge-order",
        changes: [{ field: "enableExactlyOnceDelivery", from: false, to: true }],
      },
    ]);
    await applyPlan(pubsub, drift);
    expect(
      (await planProvisioning(pubsub, declared)).actions.every((a) => a.kind === "unchanged"),
    ).toBe(true);
  });

  it("should plan and send the expiry repair real Pub/Sub needs for a subscription made without one", async () => {
    // The emulator refuses to update an expiration policy ("currently
    // unsupported in the Pub/Sub Emulator"), so this test checks the plan and
    // the request protoevents sends, through a client that reports real
    // Pub/Sub and records subscription updates instead of sending those.
    const pubsub = freshProject();
    await provision(pubsub, registry, { dryRun: false });
    // A subscription as Pub/Sub's defaults make it: no expiration policy,
    // so it would be deleted after 31 days without activity.
    await pubsub.subscription("payment.charge-order.dead-letter").delete();
    await pubsub.createSubscription(
      "payment.charge-order.dead-letter",
      "payment.charge-order.dead-letter",
      { messageRetentionDuration: { seconds: 7 * 86_400 } },
    );
    const sent: Array<{ name: string; metadata: unknown }> = [];
    const asRealPubSub = realPubSubFake(pubsub, { sent });
    const plan = await planProvisioning(asRealPubSub, registry);
    const changed = plan.actions.filter((a) => a.kind !== "unchanged");
    expect(changed).toMatchObject([
      {
        kind: "update",
        name: "payment.charge-order.dead-letter",
        changes: [{ field: "expirationPolicy.ttl", from: "31 days", to: "never" }],
      },
    ]);
    expect(formatPlan(plan)).toContain(
      '~ subscription payment.charge-order.dead-letter: expirationPolicy.ttl: "31 days" → "never"',
    );
    await applyPlan(asRealPubSub, plan);
    // Only the changed setting: a policy without a ttl, which is "never".
    expect(sent).toEqual([
      { name: "payment.charge-order.dead-letter", metadata: { expirationPolicy: {} } },
    ]);

    // Against the emulator itself the same difference is left out: it never
    // expires subscriptions and cannot update the policy.
    const onEmulator = await planProvisioning(pubsub, registry);
    expect(onEmulator.actions.every((a) => a.kind === "unchanged")).toBe(true);
  });

  it("should plan nothing to do when provisioning twice", async () => {
    const pubsub = freshProject();
    const first = await provision(pubsub, registry, { dryRun: false });
    expect(first.applied).toBe(true);

    const second = await provision(pubsub, registry, { dryRun: false });
    expect(second.plan.actions.map((a) => a.kind)).toEqual(
      second.plan.actions.map(() => "unchanged"),
    );
    expect(second.result).toEqual({
      created: [],
      alreadyExisted: [],
      updated: [],
      unchanged: total,
    });
  });

  it("should change nothing on a dry run", async () => {
    const pubsub = freshProject();
    const { plan, applied, result } = await provision(pubsub, registry, { dryRun: true });
    expect(applied).toBe(false);
    expect(result).toBeUndefined();
    expect(plan.actions.every((a) => a.kind === "create")).toBe(true);
    const [topics] = await pubsub.getTopics();
    expect(topics).toEqual([]);
  });

  it("should update the ack deadline and max delivery attempts in place", async () => {
    const pubsub = freshProject();
    await provision(pubsub, registry, { dryRun: false });
    const changed = withSubscription("payment.charge-order", {
      ackDeadlineSeconds: 90,
      maxDeliveryAttempts: 12,
    });

    const plan = await planProvisioning(pubsub, changed);
    const updates = plan.actions.filter((a) => a.kind !== "unchanged");
    expect(updates).toHaveLength(1);
    expect(updates[0]).toMatchObject({
      kind: "update",
      resource: "subscription",
      name: "payment.charge-order",
      changes: [
        { field: "deadLetterPolicy.maxDeliveryAttempts", from: 10, to: 12 },
        { field: "ackDeadlineSeconds", from: 60, to: 90 },
      ],
    });

    const result = await applyPlan(pubsub, plan);
    expect(result.updated).toEqual([{ resource: "subscription", name: "payment.charge-order" }]);
    const [metadata] = await pubsub.subscription("payment.charge-order").getMetadata();
    expect(metadata.ackDeadlineSeconds).toBe(90);
    expect(metadata.deadLetterPolicy?.maxDeliveryAttempts).toBe(12);
    // The rest of the subscription is untouched.
    expect(metadata.retryPolicy?.maximumBackoff?.seconds).toBe("120");

    const again = await planProvisioning(pubsub, changed);
    expect(again.actions.every((a) => a.kind === "unchanged")).toBe(true);
  });

  it("should refuse a changed filter or ordering without changing anything", async () => {
    const pubsub = freshProject();
    await provision(pubsub, registry, { dryRun: false });
    const changed = withSubscription("order.on-payment-failed", {
      filter: 'attributes.ce-type = "checkout.v1.PaymentFailed"',
      ordered: true,
      ackDeadlineSeconds: 45,
    });
    const orderingOnly = withSubscription("payment.charge-order", { ordered: true });

    const plan = await planProvisioning(pubsub, changed);
    const conflict = plan.actions.find((a) => a.kind === "conflict");
    expect(plan.actions.filter((a) => a.kind === "conflict")).toHaveLength(1);
    expect(conflict?.name).toBe("order.on-payment-failed");
    expect(conflict?.detail).toContain("a filter cannot be changed on an existing subscription");
    expect(conflict?.detail).toContain("message ordering cannot be turned on or off");
    expect(conflict?.detail).toContain("create a new subscription with a new name in the contract");
    expect(conflict?.changes).toContainEqual({
      field: "enableMessageOrdering",
      from: false,
      to: true,
    });

    const orderingPlan = await planProvisioning(pubsub, orderingOnly);
    expect(orderingPlan.actions.find((a) => a.kind === "conflict")).toMatchObject({
      name: "payment.charge-order",
      changes: [{ field: "enableMessageOrdering", from: false, to: true }],
    });

    const refused = await applyPlan(pubsub, plan).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(isProtoeventsError(refused) && refused.code).toBe(Code.ProvisioningConflict);
    expect(isProtoeventsError(refused) && refused.message).toContain("order.on-payment-failed");
    const [metadata] = await pubsub.subscription("order.on-payment-failed").getMetadata();
    expect(metadata.filter).toBe("");
    expect(metadata.enableMessageOrdering).toBe(false);
    expect(metadata.ackDeadlineSeconds).toBe(30);
  });

  it("should create labels and plan label changes as updates", async () => {
    const pubsub = freshProject();
    await provision(pubsub, registry, { dryRun: false, labels: { system: "checkout" } });
    const [metadata] = await pubsub.subscription("payment.charge-order").getMetadata();
    expect(metadata.labels).toEqual({ system: "checkout" });

    const same = await planProvisioning(pubsub, registry, { labels: { system: "checkout" } });
    expect(same.actions.every((a) => a.kind === "unchanged")).toBe(true);
    // Without the option labels are not managed.
    const unmanaged = await planProvisioning(pubsub, registry);
    expect(unmanaged.actions.every((a) => a.kind === "unchanged")).toBe(true);

    // The emulator cannot apply label updates (it rejects the update mask); plan only.
    const relabel = await planProvisioning(pubsub, registry, { labels: { team: "payments" } });
    expect(relabel.actions.every((a) => a.kind === "update")).toBe(true);
    expect(relabel.actions[0]?.changes).toEqual([
      { field: "labels.team", from: null, to: "payments" },
      { field: "labels.system", from: "checkout", to: null },
    ]);
  });

  it("should take resources created since planning as success", async () => {
    const pubsub = freshProject();
    const plan = await planProvisioning(pubsub, registry);
    await pubsub.createTopic("checkout.order-placed");

    const result = await applyPlan(pubsub, plan);
    expect(result.alreadyExisted).toEqual([{ resource: "topic", name: "checkout.order-placed" }]);
    expect(result.created).toHaveLength(total - 1);
  });
});

describe("formatPlan", () => {
  it("should mark every action and end with the summary", async () => {
    const pubsub = freshProject();
    await pubsub.createTopic("checkout.order-placed");
    const plan = await planProvisioning(pubsub, registry);
    const text = formatPlan(plan);
    expect(text).toContain("= topic checkout.order-placed: up to date");
    expect(text).toContain(
      "+ topic checkout.payment-processed: event topic of checkout.v1.PaymentProcessed",
    );
    expect(text).toMatch(/^\+ subscription payment\.charge-order: on checkout\.order-placed, /m);
    expect(text.split("\n").at(-1)).toBe(
      `${total - 1} to create, 0 to update, 1 unchanged, 0 conflicts`,
    );
    // The emulator needs no IAM grants.
    expect(text).not.toContain("gcloud");

    await applyPlan(pubsub, plan);
    const changed = withSubscription("payment.charge-order", { ackDeadlineSeconds: 90 });
    const updateText = formatPlan(await planProvisioning(pubsub, changed));
    expect(updateText).toContain(
      "~ subscription payment.charge-order: ackDeadlineSeconds: 60 → 90",
    );
    expect(updateText.split("\n").at(-1)).toBe(
      `0 to create, 1 to update, ${total - 1} unchanged, 0 conflicts`,
    );

    const conflicting = withSubscription("payment.charge-order", { filter: 'attributes.x = "y"' });
    const conflictText = formatPlan(await planProvisioning(pubsub, conflicting));
    expect(conflictText).toMatch(
      /^! subscription payment\.charge-order: filter: "" → .*a filter cannot be changed/m,
    );
    expect(conflictText).toContain(`0 to create, 0 to update, ${total - 1} unchanged, 1 conflict`);
  });

  it("should grant the service agent what dead-lettering needs on real Pub/Sub, keeping other bindings", async () => {
    // The emulator has no IAM: the grants are checked against the policies
    // protoevents reads and writes, through a fake of real Pub/Sub.
    const pubsub = freshProject();
    await provision(pubsub, registry, { dryRun: false });
    const policies = new Map<string, FakePolicy>([
      [
        "topic payment.charge-order.dead-letter",
        {
          bindings: [{ role: "roles/pubsub.viewer", members: ["user:ops@acme.example"] }],
          etag: "BwX1",
        },
      ],
    ]);
    const real = realPubSubFake(pubsub, { policies });
    const agent = "serviceAccount:service-123456789@gcp-sa-pubsub.iam.gserviceaccount.com";

    const plan = await planProvisioning(real, registry, { projectNumber: "123456789" });
    const grants = plan.actions.filter((a) => a.resource === "iam");
    expect(grants).toHaveLength(subscriptionContracts.length + deadLetterTopics.length);
    expect(grants.every((a) => a.kind === "create")).toBe(true);
    const text = formatPlan(plan);
    expect(text).toContain(
      `+ iam topic payment.charge-order.dead-letter: grant roles/pubsub.publisher to ${agent} (dead-lettering)`,
    );
    expect(text).toContain(
      `+ iam subscription payment.charge-order: grant roles/pubsub.subscriber to ${agent} (dead-lettering)`,
    );
    expect(text).not.toContain("gcloud");

    const result = await applyPlan(real, plan);
    expect(result.created).toHaveLength(grants.length);
    expect(policies.get("topic payment.charge-order.dead-letter")).toEqual({
      bindings: [
        { role: "roles/pubsub.viewer", members: ["user:ops@acme.example"] },
        { role: "roles/pubsub.publisher", members: [agent] },
      ],
      etag: "BwX1",
    });
    expect(policies.get("subscription payment.charge-order")?.bindings).toEqual([
      { role: "roles/pubsub.subscriber", members: [agent] },
    ]);
    const again = await planProvisioning(real, registry, { projectNumber: "123456789" });
    expect(again.actions.every((a) => a.kind === "unchanged")).toBe(true);

    // Without the project number (and no way to look it up), the grants are printed instead.
    const unknown = formatPlan(
      await planProvisioning(
        real,
        withSubscription("payment.charge-order", { ackDeadlineSeconds: 90 }),
      ),
    );
    expect(unknown).not.toContain("+ iam");
    expect(unknown).not.toContain("gcloud pubsub");
    const fresh = formatPlan(
      await planProvisioning(realPubSubFake(freshProject(), { policies }), registry),
    );
    expect(fresh).toContain("The project number could not be read with these");
    expect(fresh).toContain("pass --project-number");
  });

  it("should list the IAM grants for dead-letter policies on real Pub/Sub", async () => {
    const plan = await planProvisioning(freshProject(), registry);
    const text = formatPlan({ ...plan, emulator: false });
    expect(text).toContain(
      `gcloud pubsub topics add-iam-policy-binding payment.charge-order.dead-letter --project=${plan.projectId} ` +
        "--member=serviceAccount:service-<PROJECT_NUMBER>@gcp-sa-pubsub.iam.gserviceaccount.com --role=roles/pubsub.publisher",
    );
    expect(text).toContain(
      "gcloud pubsub subscriptions add-iam-policy-binding payment.charge-order ",
    );
    expect(text.match(/--role=roles\/pubsub\.subscriber/g)).toHaveLength(
      subscriptionContracts.length,
    );
    expect(text.match(/--role=roles\/pubsub\.publisher/g)).toHaveLength(deadLetterTopics.length);
  });
});
