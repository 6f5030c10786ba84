/**
 * Retiring a subscription: the one way protoevents deletes one. Provisioning
 * never does; the compatibility gate accepts a consumer's removal only once
 * its application lists the subscription in `retired_subscriptions`; and
 * this step deletes it only when nothing would be lost.
 */
import { type PubSub, v1 } from "@google-cloud/pubsub";
import type { ContractRegistry } from "./contract.js";
import { Code, ProtoeventsError, reasonToString } from "./errors.js";

/** Suffix of a subscription's dead-letter topic and subscription. */
const DEAD_LETTER_SUFFIX = ".dead-letter";

/** How long a pull may wait on real Pub/Sub, which can answer an immediate pull empty while messages wait. */
const PULL_WAIT_MS = 10_000;

const NOT_FOUND = 5;
const DEADLINE_EXCEEDED = 4;

/** One resource {@link retireSubscription} deletes (or would). */
export interface RetiredResource {
  readonly resource: "subscription" | "topic";
  readonly name: string;
}

/** Options of {@link retireSubscription}. */
export interface RetireOptions {
  /** Check and say what would be deleted; delete nothing. */
  readonly dryRun: boolean;
}

/**
 * Delete subscription `name`, its dead-letter subscription and its
 * dead-letter topic, after checking that nothing is lost: the contracts no
 * longer consume it, its application lists it in `retired_subscriptions`,
 * and neither it nor its dead-letter subscription holds a message (messages
 * a running consumer holds are not seen: stop its consumers first).
 *
 * @returns what was deleted (or, on a dry run, would be), in order.
 * @throws ProtoeventsError `invalid_argument` naming what to do first when a
 *   check fails; `pubsub_unavailable` when Pub/Sub cannot be read or changed.
 */
export async function retireSubscription(
  pubsub: PubSub,
  registry: ContractRegistry,
  name: string,
  options: RetireOptions,
): Promise<RetiredResource[]> {
  const consumer = registry.applications
    .flatMap((app) => app.subscriptions.map((sub) => ({ app, sub })))
    .find(({ sub }) => sub.name === name);
  if (consumer !== undefined) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `subscription ${name} is still consumed by rpc ${consumer.sub.service}.${consumer.sub.rpc}: remove the rpc, list ${name} in retired_subscriptions of application ${consumer.app.name}, regenerate, and retire it once its consumers are stopped`,
    );
  }
  const retiredBy = registry.applications.find((app) =>
    (app.retiredSubscriptions ?? []).includes(name),
  );
  if (retiredBy === undefined) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `subscription ${name} is not in any application's retired_subscriptions: add it to the (protoevents.v1.application) option of the application that consumed it and regenerate, so the contracts record the decision`,
    );
  }
  const candidates: RetiredResource[] = [
    { resource: "subscription", name: `${name}${DEAD_LETTER_SUFFIX}` },
    { resource: "subscription", name },
    { resource: "topic", name: `${name}${DEAD_LETTER_SUFFIX}` },
  ];
  const existing: RetiredResource[] = [];
  for (const candidate of candidates) {
    if (await exists(pubsub, candidate)) {
      existing.push(candidate);
    }
  }
  const holding: string[] = [];
  for (const resource of existing) {
    if (resource.resource === "subscription" && (await holdsMessages(pubsub, resource.name))) {
      holding.push(resource.name);
    }
  }
  if (holding.length > 0) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `not retiring ${name}: ${holding.join(" and ")} still hold${holding.length === 1 ? "s" : ""} messages; let its consumers drain it, inspect or replay its dead letters (protoevents dlq), then try again`,
    );
  }
  if (!options.dryRun) {
    for (const resource of existing) {
      try {
        await (resource.resource === "subscription"
          ? pubsub.subscription(resource.name).delete()
          : pubsub.topic(resource.name).delete());
      } catch (cause) {
        throw new ProtoeventsError(
          Code.PubSubUnavailable,
          `could not delete ${resource.resource} ${resource.name}: ${reasonToString(cause)}`,
          { cause },
        );
      }
    }
  }
  return existing;
}

async function exists(pubsub: PubSub, resource: RetiredResource): Promise<boolean> {
  try {
    const [found] = await (resource.resource === "subscription"
      ? pubsub.subscription(resource.name).exists()
      : pubsub.topic(resource.name).exists());
    return found;
  } catch (cause) {
    throw new ProtoeventsError(
      Code.PubSubUnavailable,
      `could not read ${resource.resource} ${resource.name}: ${reasonToString(cause)}`,
      { cause },
    );
  }
}

/** Whether a pull finds a message; one found is given back at once (ack deadline 0). */
async function holdsMessages(pubsub: PubSub, subscription: string): Promise<boolean> {
  const config = (await pubsub.getClientConfig()) as ConstructorParameters<
    typeof v1.SubscriberClient
  >[0];
  const client = new v1.SubscriberClient(config);
  const path = `projects/${pubsub.projectId}/subscriptions/${subscription}`;
  try {
    const [response] = await client.pull(
      { subscription: path, maxMessages: 1, returnImmediately: pubsub.isEmulator },
      { timeout: PULL_WAIT_MS },
    );
    const received = response.receivedMessages ?? [];
    const ackIds = received.flatMap((r) => (r.ackId ? [r.ackId] : []));
    if (ackIds.length > 0) {
      await client
        .modifyAckDeadline({ subscription: path, ackIds, ackDeadlineSeconds: 0 })
        .catch(() => undefined);
    }
    return received.length > 0;
  } catch (cause) {
    const code = (cause as { code?: unknown }).code;
    if (code === DEADLINE_EXCEEDED || code === NOT_FOUND) {
      return false;
    }
    throw new ProtoeventsError(
      Code.PubSubUnavailable,
      `could not read subscription ${subscription}: ${reasonToString(cause)}`,
      { cause },
    );
  } finally {
    await client.close();
  }
}
