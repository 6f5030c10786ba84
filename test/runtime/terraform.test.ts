import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { OrderPlacedSchema } from "../../generated/checkout/v1/order_events_pb.js";
import { registry } from "../../generated/protoevents_registry.js";
import type { ContractRegistry, SubscriptionContract } from "../../runtime/src/contract.js";
import { Code, isProtoeventsError } from "../../runtime/src/errors.js";
import { desiredState, planProvisioning } from "../../runtime/src/provision.js";
import {
  type TerraformConfiguration,
  terraformConfiguration,
} from "../../runtime/src/terraform.js";
import { protoevents } from "../helpers/cli.js";
import { testPubSub } from "../helpers/pubsub.js";
import { fastSubscription, registryWith } from "../helpers/test-contracts.js";

/**
 * The arguments the Google provider documents for each resource we write
 * (registry.terraform.io/providers/hashicorp/google, "Argument Reference";
 * nested blocks by path), plus Terraform's own `lifecycle`.
 */
const DOCUMENTED: Record<string, ReadonlySet<string>> = {
  google_pubsub_topic: new Set([
    "name",
    "labels",
    "kms_key_name",
    "message_storage_policy",
    "schema_settings",
    "message_retention_duration",
    "project",
  ]),
  google_pubsub_subscription: new Set([
    "name",
    "topic",
    "labels",
    "push_config",
    "ack_deadline_seconds",
    "message_retention_duration",
    "retain_acked_messages",
    "expiration_policy",
    "expiration_policy.ttl",
    "filter",
    "dead_letter_policy",
    "dead_letter_policy.dead_letter_topic",
    "dead_letter_policy.max_delivery_attempts",
    "retry_policy",
    "retry_policy.minimum_backoff",
    "retry_policy.maximum_backoff",
    "enable_message_ordering",
    "enable_exactly_once_delivery",
    "project",
    "lifecycle",
    "lifecycle.prevent_destroy",
  ]),
  google_pubsub_topic_iam_member: new Set(["topic", "role", "member", "project", "condition"]),
  google_pubsub_subscription_iam_member: new Set([
    "subscription",
    "role",
    "member",
    "project",
    "condition",
  ]),
  google_project: new Set(["project_id"]),
};

/** Every argument path a block uses: `a`, and `a.b` for a nested block's `b`. */
function argumentPaths(block: Record<string, unknown>, prefix = ""): string[] {
  return Object.entries(block).flatMap(([key, value]) => {
    const path = `${prefix}${key}`;
    const nested =
      typeof value === "object" && value !== null && !Array.isArray(value) && key !== "labels"
        ? argumentPaths(value as Record<string, unknown>, `${path}.`)
        : [];
    return [path, ...nested];
  });
}

function undocumented(document: TerraformConfiguration): string[] {
  const blocks = [...Object.entries(document.resource), ...Object.entries(document.data)].flatMap(
    ([type, byName]) => Object.entries(byName).map(([name, block]) => ({ type, name, block })),
  );
  return blocks.flatMap(({ type, name, block }) =>
    argumentPaths(block)
      .filter((path) => !DOCUMENTED[type]?.has(path))
      .map((path) => `${type}.${name}: ${path}`),
  );
}

/** A resource reference's name: `${google_pubsub_topic.x.id}` → x. */
function referenced(ref: unknown, type: string): string {
  const match = new RegExp(`^\\$\\{${type}\\.([A-Za-z0-9_-]+)\\.(id|name)\\}$`).exec(String(ref));
  if (match?.[1] === undefined) {
    throw new Error(`not a reference to a ${type}: ${String(ref)}`);
  }
  return match[1];
}

/** Check the document against the desired state provisioning applies, resource by resource. */
function expectSameAsProvisioning(contracts: ContractRegistry): TerraformConfiguration {
  const document = terraformConfiguration(contracts);
  const { topics, subscriptions } = desiredState(contracts, "p", undefined);
  const topicResources = document.resource.google_pubsub_topic ?? {};
  const subscriptionResources = document.resource.google_pubsub_subscription ?? {};
  const topicOf = (ref: unknown) => topicResources[referenced(ref, "google_pubsub_topic")]?.name;
  expect(
    Object.values(topicResources)
      .map((t) => t.name)
      .sort(),
  ).toEqual(topics.map((t) => t.name).sort());
  for (const topic of topics) {
    const resource = Object.values(topicResources).find((t) => t.name === topic.name);
    expect(resource?.message_retention_duration, topic.name).toBe(
      topic.messageRetentionSeconds === undefined ? undefined : `${topic.messageRetentionSeconds}s`,
    );
  }
  expect(Object.keys(subscriptionResources)).toHaveLength(subscriptions.length);
  for (const spec of subscriptions) {
    const found = Object.values(subscriptionResources).find((s) => s.name === spec.name);
    expect(found, spec.name).toBeDefined();
    const resource = found as Record<string, Record<string, unknown> & unknown>;
    expect(`projects/p/topics/${String(topicOf(resource.topic))}`, spec.name).toBe(spec.topic);
    expect(resource.filter ?? "", spec.name).toBe(spec.filter);
    expect(resource.enable_message_ordering, spec.name).toBe(spec.enableMessageOrdering);
    expect(resource.ack_deadline_seconds, spec.name).toBe(spec.ackDeadlineSeconds);
    expect(resource.retry_policy, spec.name).toEqual(
      spec.retryPolicy === undefined
        ? undefined
        : {
            minimum_backoff: `${spec.retryPolicy.minimumBackoffSeconds}s`,
            maximum_backoff: `${spec.retryPolicy.maximumBackoffSeconds}s`,
          },
    );
    if (spec.deadLetterPolicy === null) {
      expect(resource.dead_letter_policy, spec.name).toBeUndefined();
    } else {
      const policy = resource.dead_letter_policy as Record<string, unknown>;
      expect(`projects/p/topics/${String(topicOf(policy.dead_letter_topic))}`).toBe(
        spec.deadLetterPolicy.deadLetterTopic,
      );
      expect(policy.max_delivery_attempts).toBe(spec.deadLetterPolicy.maxDeliveryAttempts);
    }
    expect(resource.message_retention_duration, spec.name).toBe(`${spec.messageRetentionSeconds}s`);
    expect(resource.retain_acked_messages ?? false, spec.name).toBe(
      spec.retainAckedMessages ?? false,
    );
    expect(resource.enable_exactly_once_delivery ?? false, spec.name).toBe(
      spec.enableExactlyOnceDelivery ?? false,
    );
    expect(resource.expiration_policy, spec.name).toEqual({
      ttl: spec.expirationTtlSeconds === null ? "" : `${spec.expirationTtlSeconds}s`,
    });
    expect(resource.lifecycle).toEqual({ prevent_destroy: true });
  }
  // One grant per dead-letter topic (publish) and per dead-lettering subscription (subscribe).
  const deadLettering = subscriptions.filter((s) => s.deadLetterPolicy !== null);
  const publishers = Object.values(document.resource.google_pubsub_topic_iam_member ?? {});
  const subscribers = Object.values(document.resource.google_pubsub_subscription_iam_member ?? {});
  expect(publishers.map((g) => `projects/p/topics/${String(topicOf(g.topic))}`).sort()).toEqual(
    deadLettering.map((s) => s.deadLetterPolicy?.deadLetterTopic).sort(),
  );
  expect(
    subscribers
      .map(
        (g) =>
          subscriptionResources[referenced(g.subscription, "google_pubsub_subscription")]?.name,
      )
      .sort(),
  ).toEqual(deadLettering.map((s) => s.name).sort());
  for (const grant of [...publishers, ...subscribers]) {
    expect(grant.member).toBe(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a Terraform interpolation
      "serviceAccount:service-${data.google_project.project.number}@gcp-sa-pubsub.iam.gserviceaccount.com",
    );
  }
  expect(undocumented(document)).toEqual([]);
  return document;
}

describe("provisioning as Terraform configuration", () => {
  it("should write the checkout's topics, subscriptions, policies and grants exactly as provisioning applies them", async () => {
    const document = expectSameAsProvisioning(registry);
    // The same resources a plan on an empty project would create.
    const pubsub = testPubSub("terraform");
    try {
      const plan = await planProvisioning(pubsub, registry);
      expect(plan.actions.every((a) => a.kind === "create")).toBe(true);
      const named = [
        ...Object.values(document.resource.google_pubsub_topic ?? {}),
        ...Object.values(document.resource.google_pubsub_subscription ?? {}),
      ].map((r) => r.name);
      expect(named.sort()).toEqual(plan.actions.map((a) => a.name).sort());
    } finally {
      await pubsub.close();
    }
    // Stable: the same contracts give the same document, so terraform plan is empty.
    expect(JSON.stringify(terraformConfiguration(registry))).toBe(JSON.stringify(document));
    expect(document.resource.google_pubsub_subscription?.["payment_charge-order"]).toMatchObject({
      name: "payment.charge-order",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a Terraform interpolation
      topic: "${google_pubsub_topic.checkout_order-placed.id}",
      expiration_policy: { ttl: "" },
    });
  });

  it("should carry a second contract's filter, ordering, expiry and retention", () => {
    const base = fastSubscription("reports.tally-orders");
    const tally: SubscriptionContract<typeof OrderPlacedSchema> = {
      ...base,
      filter: 'attributes.region = "eu"',
      ordered: true,
      expirationTtlDays: 30,
      messageRetentionSeconds: 3_600,
      retainAckedMessages: true,
      exactlyOnceDelivery: true,
      event: { ...base.event, messageRetentionSeconds: 86_400 },
    };
    const contracts = registryWith(tally);
    const document = expectSameAsProvisioning(contracts);
    expect(document.resource.google_pubsub_subscription?.["reports_tally-orders"]).toMatchObject({
      filter: 'attributes.region = "eu"',
      enable_message_ordering: true,
      expiration_policy: { ttl: "2592000s" },
      message_retention_duration: "3600s",
      retain_acked_messages: true,
      enable_exactly_once_delivery: true,
    });
    expect(document.resource.google_pubsub_topic?.["checkout_order-placed"]).toEqual({
      name: "checkout.order-placed",
      message_retention_duration: "86400s",
    });
    // Its dead letters never expire, whatever the subscription says.
    expect(
      document.resource.google_pubsub_subscription?.["reports_tally-orders_dead-letter"],
    ).toMatchObject({ expiration_policy: { ttl: "" }, message_retention_duration: "604800s" });
  });

  it("should refuse two ids that would share a Terraform name", () => {
    const error = (() => {
      try {
        return terraformConfiguration(
          registryWith(fastSubscription("audit.log-x"), fastSubscription("audit_log-x")),
        );
      } catch (e) {
        return e;
      }
    })();
    expect(isProtoeventsError(error) && error.code).toBe(Code.InvalidContract);
    // Their dead-letter topics are named first.
    expect(String(error)).toContain(
      "topics audit.log-x.dead-letter and audit_log-x.dead-letter would both be the Terraform resource audit_log-x_dead-letter: rename one of them",
    );
  });

  it("should be written by protoevents provision --format terraform, contacting nothing", async () => {
    const dir = await mkdtemp(join(tmpdir(), "protoevents-terraform-"));
    try {
      const out = join(dir, "pubsub.tf.json");
      const offline = { PUBSUB_EMULATOR_HOST: undefined, GOOGLE_CLOUD_PROJECT: undefined };
      const run = await protoevents(["provision", "--format", "terraform", "--out", out], {
        env: offline,
      });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toMatch(/^provision: wrote \d+ resources to .*pubsub\.tf\.json$/m);
      expect(JSON.parse(await readFile(out, "utf8"))).toEqual(
        JSON.parse(JSON.stringify(terraformConfiguration(registry))),
      );
      const wrong = await protoevents(
        ["provision", "--format", "terraform", "--out", join(dir, "pubsub.json")],
        { env: offline },
      );
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toContain(
        "Terraform reads JSON configuration only from files ending in .tf.json",
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
