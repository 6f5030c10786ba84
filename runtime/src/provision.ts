import type {
  GetSubscriptionMetadataResponse,
  PubSub,
  SubscriptionMetadata,
  TopicMetadata,
} from "@google-cloud/pubsub";
import type { ContractRegistry, SubscriptionContract } from "./contract.js";
import { Code, ProtoeventsError } from "./errors.js";
import { GrpcStatus, grpcCode } from "./grpc.js";

/** What applying an action does to a resource. */
export type ActionKind = "create" | "update" | "unchanged" | "conflict";

/** The kinds of Pub/Sub resource provisioning manages (`iam`: a role binding on one). */
export type ResourceKind = "topic" | "subscription" | "iam";

/** A value of one compared field; `null` means "not set". */
export type FieldValue = string | number | boolean | null;

/**
 * One difference between what exists and what the contracts want. Nested
 * settings are named by path (`retryPolicy.minimumBackoffSeconds`,
 * `deadLetterPolicy.maxDeliveryAttempts`, `labels.team`); durations are whole
 * numbers of seconds.
 */
export interface FieldChange {
  readonly field: string;
  readonly from: FieldValue;
  readonly to: FieldValue;
}

/** The desired state of a topic. */
export interface TopicSpec {
  /** Topic id. */
  readonly name: string;
  /** How long the topic keeps messages, in seconds; left alone when undefined. */
  readonly messageRetentionSeconds?: number;
  /** Exactly these labels; left alone when undefined. */
  readonly labels?: Readonly<Record<string, string>>;
}

/** A retry policy in seconds. */
export interface RetryPolicySpec {
  readonly minimumBackoffSeconds: number;
  readonly maximumBackoffSeconds: number;
}

/** A dead-letter policy. */
export interface DeadLetterPolicySpec {
  /** Full topic name, `projects/<project>/topics/<id>`. */
  readonly deadLetterTopic: string;
  readonly maxDeliveryAttempts: number;
}

/**
 * The desired state of a subscription. An optional setting left undefined is
 * not managed: whatever exists is kept; `null` means "must not be set".
 */
export interface SubscriptionSpec {
  /** Subscription id. */
  readonly name: string;
  /** Full topic name, `projects/<project>/topics/<id>`. */
  readonly topic: string;
  readonly filter: string;
  readonly enableMessageOrdering: boolean;
  readonly deadLetterPolicy: DeadLetterPolicySpec | null;
  readonly ackDeadlineSeconds?: number;
  readonly retryPolicy?: RetryPolicySpec;
  readonly messageRetentionSeconds?: number;
  readonly retainAckedMessages?: boolean;
  readonly enableExactlyOnceDelivery?: boolean;
  /**
   * Seconds without activity before Pub/Sub deletes the subscription;
   * `null`: never expires.
   */
  readonly expirationTtlSeconds?: number | null;
  /** Exactly these labels; left alone when undefined. */
  readonly labels?: Readonly<Record<string, string>>;
}

interface ActionBase {
  readonly kind: ActionKind;
  /** Resource id (not the full name). */
  readonly name: string;
  /** One line for humans: what is created, what changes, or why it conflicts. */
  readonly detail: string;
  /** The differences, for `update` and `conflict`. */
  readonly changes?: readonly FieldChange[];
}

/** One step of a {@link ProvisioningPlan} on a topic. */
export interface TopicAction extends ActionBase {
  readonly resource: "topic";
  /** What {@link applyPlan} creates or updates the topic to. */
  readonly desired: TopicSpec;
}

/** One step of a {@link ProvisioningPlan} on a subscription. */
export interface SubscriptionAction extends ActionBase {
  readonly resource: "subscription";
  /** What {@link applyPlan} creates or updates the subscription to. */
  readonly desired: SubscriptionSpec;
}

/** A role the Pub/Sub service agent needs on a topic or subscription for dead-lettering. */
export interface IamGrant {
  readonly on: "topic" | "subscription";
  /** Topic or subscription id. */
  readonly target: string;
  readonly role: "roles/pubsub.publisher" | "roles/pubsub.subscriber";
  /** `serviceAccount:service-<project number>@gcp-sa-pubsub.iam.gserviceaccount.com`. */
  readonly member: string;
}

/** One step of a {@link ProvisioningPlan} granting a role (real Pub/Sub only). */
export interface GrantAction extends ActionBase {
  readonly resource: "iam";
  readonly kind: "create" | "unchanged";
  readonly desired: IamGrant;
}

/** One step of a {@link ProvisioningPlan}. */
export type ProvisioningAction = TopicAction | SubscriptionAction | GrantAction;

/**
 * What provisioning would do: one action per topic and subscription the
 * contracts need, topics first. Made by {@link planProvisioning}, carried out
 * by {@link applyPlan}, printed by {@link formatPlan}.
 */
export interface ProvisioningPlan {
  readonly projectId: string;
  /** Whether the plan was made against the Pub/Sub emulator. */
  readonly emulator: boolean;
  readonly actions: readonly ProvisioningAction[];
}

/** Options of {@link planProvisioning}. */
export interface PlanOptions {
  /**
   * Labels every topic and subscription must carry, exactly. When omitted,
   * labels are not managed. The emulator cannot change labels of an existing
   * resource (it rejects the update mask), only set them on create.
   */
  readonly labels?: Readonly<Record<string, string>>;
  /**
   * The project number, for the Pub/Sub service agent's grants on real
   * Pub/Sub. Looked up with the client's credentials when omitted; when that
   * fails too, the plan prints the grants as `gcloud` commands instead.
   */
  readonly projectNumber?: string;
}

/** A topic or subscription, by id. */
export interface ResourceRef {
  readonly resource: ResourceKind;
  readonly name: string;
}

/** What {@link applyPlan} did. */
export interface ApplyResult {
  readonly created: readonly ResourceRef[];
  /**
   * Resources someone else created between planning and applying
   * (ALREADY_EXISTS). Taken as success; plan again to compare their settings.
   */
  readonly alreadyExisted: readonly ResourceRef[];
  readonly updated: readonly ResourceRef[];
  readonly unchanged: number;
}

/**
 * The dead-letter subscription keeps what it holds for 7 days, Pub/Sub's
 * maximum for unacked messages, to leave time to inspect and replay. The
 * emulator accepts and reports it (and also uses it as its default).
 */
const DEAD_LETTER_RETENTION_SECONDS = 7 * 24 * 60 * 60;

/**
 * Pub/Sub's documented defaults, for fields an existing resource reports
 * empty: retry backoff 10–600 s, 5 delivery attempts, 7 days retention, 10 s
 * ack deadline, and expiry after 31 days without activity for a
 * subscription created without an expiration policy.
 */
const PUBSUB_DEFAULTS = {
  minimumBackoffSeconds: 10,
  maximumBackoffSeconds: 600,
  maxDeliveryAttempts: 5,
  messageRetentionSeconds: 7 * 24 * 60 * 60,
  ackDeadlineSeconds: 10,
  expirationTtlSeconds: 31 * 24 * 60 * 60,
} as const;

/**
 * Admin calls in flight at once: a plan of a few dozen resources applies in
 * about a second, without bursting the project's admin-operation quota.
 */
const ADMIN_CONCURRENCY = 8;

/** Fields Pub/Sub cannot change on an existing subscription, and what to do instead. */
const IMMUTABLE: Readonly<Record<string, string>> = {
  topic: "a subscription cannot move to another topic",
  filter: "a filter cannot be changed on an existing subscription",
  enableMessageOrdering: "message ordering cannot be turned on or off on an existing subscription",
};
/**
 * Settings the emulator cannot update on an existing subscription (it
 * answers "Updating the expiration_policy field is currently unsupported in
 * the Pub/Sub Emulator"). Its subscriptions never expire anyway, so plans
 * against the emulator leave these out of the comparison.
 */
const EMULATOR_CANNOT_UPDATE: ReadonlySet<string> = new Set(["expirationPolicy.ttl"]);

const RECREATE_ADVICE =
  "create a new subscription with a new name in the contract, move consumers, then delete the old one";

/**
 * Read which topics and subscriptions exist and compare them with what the
 * contracts want: every event topic; every subscription on its event's topic
 * with its ack deadline, retry policy, ordering, filter and dead-letter
 * policy; and per dead-letter policy the dead-letter topic and a subscription
 * on it that keeps dead letters for inspection and replay. Changes nothing.
 *
 * @throws ProtoeventsError `pubsub_unavailable` when Pub/Sub cannot be read.
 */
export async function planProvisioning(
  pubsub: PubSub,
  registry: ContractRegistry,
  options: PlanOptions = {},
): Promise<ProvisioningPlan> {
  const projectId = await resolveProjectId(pubsub);
  const { topics, topicPurposes, subscriptions } = desiredState(
    registry,
    projectId,
    options.labels,
  );
  const topicActions = await mapLimited(topics, async (desired): Promise<TopicAction> => {
    const existing = await readMetadata("topic", desired.name, () =>
      pubsub.topic(desired.name).getMetadata(),
    );
    const comparison =
      existing === undefined
        ? undefined
        : compare(topicFields(desired), topicFields(topicSpecOf(desired.name, existing)), desired);
    const purpose = topicPurposes.get(desired.name)?.join("; ") ?? "";
    return { resource: "topic", name: desired.name, desired, ...toAction(comparison, purpose) };
  });
  const subscriptionActions = await mapLimited(
    subscriptions,
    async (desired): Promise<SubscriptionAction> => {
      const existing = await readMetadata("subscription", desired.name, () =>
        pubsub.subscription(desired.name).getMetadata(),
      );
      const comparison =
        existing === undefined
          ? undefined
          : compare(
              subscriptionFields(desired),
              subscriptionFields(subscriptionSpecOf(desired.name, existing)),
              desired,
              pubsub.isEmulator ? EMULATOR_CANNOT_UPDATE : undefined,
            );
      const action = toAction(comparison, describe(desired));
      return { resource: "subscription", name: desired.name, desired, ...action };
    },
  );
  // The emulator has no IAM (every IAM call is UNIMPLEMENTED) and enforces none.
  const projectNumber = pubsub.isEmulator
    ? undefined
    : (options.projectNumber ?? (await lookUpProjectNumber(pubsub, projectId)));
  const grantActions =
    projectNumber === undefined
      ? []
      : await mapLimited(
          deadLetterGrants(subscriptions, projectNumber),
          async (desired): Promise<GrantAction> => {
            const members = await readMembers(pubsub, desired);
            const name = `${desired.on} ${desired.target}`;
            return members.includes(desired.member)
              ? { resource: "iam", kind: "unchanged", name, detail: "up to date", desired }
              : {
                  resource: "iam",
                  kind: "create",
                  name,
                  detail: `grant ${desired.role} to ${desired.member} (dead-lettering)`,
                  desired,
                };
          },
        );
  return {
    projectId,
    emulator: pubsub.isEmulator,
    actions: [...topicActions, ...subscriptionActions, ...grantActions],
  };
}

/**
 * The service agent's grants dead-lettering needs: publisher on each
 * dead-letter topic, subscriber on each subscription that dead-letters.
 */
function deadLetterGrants(
  subscriptions: readonly SubscriptionSpec[],
  projectNumber: string,
): IamGrant[] {
  const member = `serviceAccount:service-${projectNumber}@gcp-sa-pubsub.iam.gserviceaccount.com`;
  const grants = new Map<string, IamGrant>();
  for (const sub of subscriptions) {
    if (sub.deadLetterPolicy === null) {
      continue;
    }
    const topic = shortName(sub.deadLetterPolicy.deadLetterTopic);
    grants.set(`topic ${topic}`, {
      on: "topic",
      target: topic,
      role: "roles/pubsub.publisher",
      member,
    });
    grants.set(`subscription ${sub.name}`, {
      on: "subscription",
      target: sub.name,
      role: "roles/pubsub.subscriber",
      member,
    });
  }
  return [...grants.values()];
}

/** The IAM policy handle of a grant's topic or subscription. */
function iamOf(pubsub: PubSub, grant: IamGrant) {
  return grant.on === "topic"
    ? pubsub.topic(grant.target).iam
    : pubsub.subscription(grant.target).iam;
}

/** Who holds the grant's role now; nobody when the resource does not exist yet. */
async function readMembers(pubsub: PubSub, grant: IamGrant): Promise<string[]> {
  try {
    const [policy] = await iamOf(pubsub, grant).getPolicy();
    return (policy.bindings ?? [])
      .filter((b) => b.role === grant.role)
      .flatMap((b) => b.members ?? []);
  } catch (cause) {
    if (grpcCode(cause) === GrpcStatus.NOT_FOUND) {
      return [];
    }
    throw new ProtoeventsError(
      Code.PubSubUnavailable,
      `Could not read the IAM policy of ${grant.on} ${grant.target}`,
      { cause },
    );
  }
}

/**
 * The project number of `projectId`, from Resource Manager with the client's
 * credentials; undefined when it cannot be read (no permission, no network):
 * the plan then prints the grants as commands.
 */
async function lookUpProjectNumber(pubsub: PubSub, projectId: string): Promise<string | undefined> {
  try {
    const response = await pubsub.auth.request<{ projectNumber?: unknown }>({
      url: `https://cloudresourcemanager.googleapis.com/v1/projects/${encodeURIComponent(projectId)}`,
      timeout: 10_000,
      retry: false,
    });
    const number = response.data.projectNumber;
    return typeof number === "string" && /^\d+$/.test(number) ? number : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Carry out a plan: create topics, then subscriptions (so every dead-letter
 * topic exists before a subscription names it), then apply updates, sending
 * only the changed settings. A resource that appeared since planning
 * (ALREADY_EXISTS) counts as success. Applying a fresh plan twice changes
 * nothing the second time.
 *
 * @throws ProtoeventsError `provisioning_conflict`, before changing anything,
 *   when the plan has a conflict; `pubsub_unavailable` naming the resource
 *   when a Pub/Sub call fails.
 */
export async function applyPlan(pubsub: PubSub, plan: ProvisioningPlan): Promise<ApplyResult> {
  const conflicts = plan.actions.filter((action) => action.kind === "conflict");
  if (conflicts.length > 0) {
    throw new ProtoeventsError(
      Code.ProvisioningConflict,
      `Refusing to apply: ${conflicts.length} resource(s) differ in ways Pub/Sub cannot change in place:\n` +
        conflicts
          .map((action) => `  ${action.resource} ${action.name}: ${action.detail}`)
          .join("\n"),
      {
        details: {
          conflicts: conflicts.map(({ resource, name, detail }) => ({ resource, name, detail })),
        },
      },
    );
  }
  const created: ResourceRef[] = [];
  const alreadyExisted: ResourceRef[] = [];
  const updated: ResourceRef[] = [];
  const create = async (
    action: ProvisioningAction,
    call: () => Promise<unknown>,
  ): Promise<void> => {
    const ref = { resource: action.resource, name: action.name };
    const outcome = await callPubSub(`create ${action.resource} ${action.name}`, call, true);
    (outcome === "already-exists" ? alreadyExisted : created).push(ref);
  };
  const update = async (
    action: ProvisioningAction,
    call: () => Promise<unknown>,
  ): Promise<void> => {
    await callPubSub(`update ${action.resource} ${action.name}`, call, false);
    updated.push({ resource: action.resource, name: action.name });
  };
  const topics = plan.actions.filter(
    (action): action is TopicAction => action.resource === "topic",
  );
  const subscriptions = plan.actions.filter(
    (action): action is SubscriptionAction => action.resource === "subscription",
  );
  await mapLimited(topics, async (action) => {
    const metadata = topicMetadata(action.desired);
    if (action.kind === "create") {
      await create(action, () => pubsub.createTopic({ name: action.name, ...metadata }));
    } else if (action.kind === "update") {
      const changed = changedFields(action, metadata);
      await update(action, () => pubsub.topic(action.name).setMetadata(changed));
    }
  });
  await mapLimited(subscriptions, async (action) => {
    const metadata = subscriptionMetadata(action.desired);
    if (action.kind === "create") {
      // On create, "must not be set" and "not set" are the same thing.
      const options = Object.fromEntries(
        Object.entries(metadata).filter(([, value]) => value !== null),
      );
      await create(action, () =>
        pubsub.createSubscription(action.desired.topic, action.name, options),
      );
    } else if (action.kind === "update") {
      const changed = changedFields(action, metadata);
      await update(action, () => pubsub.subscription(action.name).setMetadata(changed));
    }
  });
  // Grants last: the topics and subscriptions they name exist by now.
  const grants = plan.actions.filter(
    (action): action is GrantAction => action.resource === "iam" && action.kind === "create",
  );
  await mapLimited(grants, async (action) => {
    await callPubSub(
      `grant ${action.desired.role} on ${action.name}`,
      () => addMember(pubsub, action.desired),
      false,
    );
    created.push({ resource: "iam", name: action.name });
  });
  const unchanged = plan.actions.filter((action) => action.kind === "unchanged").length;
  return { created, alreadyExisted, updated, unchanged };
}

/**
 * Add the grant's member to its role: read the policy, add, write it back
 * with the etag read (Pub/Sub refuses the write if the policy changed
 * meanwhile). Leaves every other binding as it is.
 */
async function addMember(pubsub: PubSub, grant: IamGrant): Promise<void> {
  const iam = iamOf(pubsub, grant);
  const [policy] = await iam.getPolicy();
  const bindings = [...(policy.bindings ?? [])];
  const index = bindings.findIndex((b) => b.role === grant.role && b.condition == null);
  if (index === -1) {
    bindings.push({ role: grant.role, members: [grant.member] });
  } else {
    const binding = bindings[index] as (typeof bindings)[number];
    if ((binding.members ?? []).includes(grant.member)) {
      return;
    }
    bindings[index] = { ...binding, members: [...(binding.members ?? []), grant.member] };
  }
  await iam.setPolicy({ ...policy, bindings });
}

/**
 * A human-readable plan: one line per action, marked `+` create, `~` update
 * (`field: from → to`), `=` unchanged, `!` conflict (with what to do), then a
 * summary line. Against real Pub/Sub, when the plan sets dead-letter policies,
 * it ends with the `gcloud` commands that grant the Pub/Sub service agent the
 * roles dead-lettering needs (run once; provisioning does not change IAM).
 *
 * @example
 * + topic checkout.order-placed: event topic
 * ~ subscription payment.charge-order: ackDeadlineSeconds: 60 → 90
 * 1 to create, 1 to update, 52 unchanged, 0 conflicts
 */
export function formatPlan(plan: ProvisioningPlan): string {
  const marker: Record<ActionKind, string> = {
    create: "+",
    update: "~",
    unchanged: "=",
    conflict: "!",
  };
  const count = (kind: ActionKind): number => plan.actions.filter((a) => a.kind === kind).length;
  const conflicts = count("conflict");
  const lines = plan.actions.map(
    (action) => `${marker[action.kind]} ${action.resource} ${action.name}: ${action.detail}`,
  );
  lines.push(
    `${count("create")} to create, ${count("update")} to update, ${count("unchanged")} unchanged, ` +
      `${conflicts} conflict${conflicts === 1 ? "" : "s"}`,
  );
  // Grants in the plan are applied with it; without the project number they are printed instead.
  const note = plan.emulator || plan.actions.some((a) => a.resource === "iam") ? [] : iamNote(plan);
  return [...lines, ...note].join("\n");
}

/** Options of {@link provision}. */
export interface ProvisionOptions extends PlanOptions {
  /** Only plan; change nothing. */
  readonly dryRun: boolean;
}

/**
 * Plan, and unless `dryRun`, apply: the one call behind `protoevents
 * provision`. `applied` says whether the plan was applied.
 *
 * @throws ProtoeventsError as {@link planProvisioning} and {@link applyPlan}.
 */
export async function provision(
  pubsub: PubSub,
  registry: ContractRegistry,
  options: ProvisionOptions,
): Promise<{ plan: ProvisioningPlan; applied: boolean; result: ApplyResult | undefined }> {
  const { dryRun, ...planOptions } = options;
  const plan = await planProvisioning(pubsub, registry, planOptions);
  if (dryRun) {
    return { plan, applied: false, result: undefined };
  }
  return { plan, applied: true, result: await applyPlan(pubsub, plan) };
}

// ---- desired state ---------------------------------------------------------

/**
 * The topics and subscriptions `registry` needs in project `projectId`, with
 * every setting: what {@link planProvisioning} compares against and what
 * {@link terraformConfiguration} writes, so both ways to provision apply the
 * same thing.
 *
 * @throws ProtoeventsError `invalid_contract` when one subscription id is
 *   declared twice with different settings.
 */
export function desiredState(
  registry: ContractRegistry,
  projectId: string,
  labels: Readonly<Record<string, string>> | undefined,
): {
  topics: TopicSpec[];
  /** Per topic, what it carries, for the plan's create lines. */
  topicPurposes: Map<string, string[]>;
  subscriptions: SubscriptionSpec[];
} {
  const topicName = (id: string): string => `projects/${projectId}/topics/${id}`;
  const withLabels = labels === undefined ? {} : { labels };
  const topics = new Map<string, TopicSpec>();
  const topicPurposes = new Map<string, string[]>();
  const subscriptions = new Map<string, SubscriptionSpec>();
  const addTopic = (name: string, purpose: string, retention?: number): void => {
    const previous = topics.get(name)?.messageRetentionSeconds;
    const messageRetentionSeconds = retention ?? previous;
    topics.set(name, {
      name,
      ...(messageRetentionSeconds === undefined ? {} : { messageRetentionSeconds }),
      ...withLabels,
    });
    const purposes = topicPurposes.get(name) ?? [];
    if (!purposes.includes(purpose)) {
      purposes.push(purpose);
    }
    topicPurposes.set(name, purposes);
  };
  const addSubscription = (spec: SubscriptionSpec): void => {
    const previous = subscriptions.get(spec.name);
    if (previous !== undefined && JSON.stringify(previous) !== JSON.stringify(spec)) {
      throw new ProtoeventsError(
        Code.InvalidContract,
        `Subscription ${spec.name} is declared twice with different settings`,
      );
    }
    subscriptions.set(spec.name, spec);
  };
  const contracts: SubscriptionContract[] = registry.applications.flatMap((a) => a.subscriptions);
  const events = [
    ...registry.events,
    ...registry.applications.flatMap((a) => a.publishes),
    ...contracts.map((sub) => sub.event),
  ];
  for (const event of events) {
    addTopic(event.topic, `event topic of ${event.type}`, event.messageRetentionSeconds);
  }
  for (const sub of contracts) {
    if (sub.deadLetter !== undefined) {
      addTopic(sub.deadLetter.topic, `dead-letter topic of ${sub.name}`);
    }
  }
  for (const sub of contracts) {
    addSubscription({
      name: sub.name,
      topic: topicName(sub.event.topic),
      filter: sub.filter,
      enableMessageOrdering: sub.ordered,
      deadLetterPolicy:
        sub.deadLetter === undefined
          ? null
          : {
              deadLetterTopic: topicName(sub.deadLetter.topic),
              maxDeliveryAttempts: sub.maxDeliveryAttempts,
            },
      ackDeadlineSeconds: sub.ackDeadlineSeconds,
      retryPolicy: {
        minimumBackoffSeconds: sub.minBackoffSeconds,
        maximumBackoffSeconds: sub.maxBackoffSeconds,
      },
      messageRetentionSeconds:
        sub.messageRetentionSeconds ?? PUBSUB_DEFAULTS.messageRetentionSeconds,
      retainAckedMessages: sub.retainAckedMessages ?? false,
      enableExactlyOnceDelivery: sub.exactlyOnceDelivery ?? false,
      expirationTtlSeconds:
        sub.expirationTtlDays === undefined ? null : sub.expirationTtlDays * 86_400,
      ...withLabels,
    });
    if (sub.deadLetter !== undefined) {
      // Keeps dead letters: no dead-letter policy of its own, nothing filtered.
      addSubscription({
        name: sub.deadLetter.subscription,
        topic: topicName(sub.deadLetter.topic),
        filter: "",
        enableMessageOrdering: false,
        deadLetterPolicy: null,
        messageRetentionSeconds: DEAD_LETTER_RETENTION_SECONDS,
        retainAckedMessages: false,
        enableExactlyOnceDelivery: false,
        // Nobody reads it until the day it is needed: it must never expire.
        expirationTtlSeconds: null,
        ...withLabels,
      });
    }
  }
  return {
    topics: [...topics.values()],
    topicPurposes,
    subscriptions: [...subscriptions.values()],
  };
}

function describe(spec: SubscriptionSpec): string {
  const parts = [`on ${shortName(spec.topic)}`];
  if (spec.ackDeadlineSeconds !== undefined) {
    parts.push(`ack deadline ${spec.ackDeadlineSeconds} s`);
  }
  if (spec.retryPolicy !== undefined) {
    const { minimumBackoffSeconds: min, maximumBackoffSeconds: max } = spec.retryPolicy;
    parts.push(`backoff ${min}–${max} s`);
  }
  if (spec.enableMessageOrdering) {
    parts.push("ordered");
  }
  if (spec.filter !== "") {
    parts.push(`filter ${spec.filter}`);
  }
  if (spec.deadLetterPolicy !== null) {
    const { deadLetterTopic, maxDeliveryAttempts } = spec.deadLetterPolicy;
    parts.push(
      `dead letters to ${shortName(deadLetterTopic)} after ${maxDeliveryAttempts} attempts`,
    );
  }
  if (spec.messageRetentionSeconds !== undefined) {
    parts.push(`keeps messages ${duration(spec.messageRetentionSeconds)}`);
  }
  if (spec.retainAckedMessages === true) {
    parts.push("retains acked messages");
  }
  if (spec.enableExactlyOnceDelivery === true) {
    parts.push("exactly-once delivery");
  }
  if (spec.expirationTtlSeconds !== undefined) {
    parts.push(
      spec.expirationTtlSeconds === null
        ? "never expires"
        : `expires after ${duration(spec.expirationTtlSeconds)} without activity`,
    );
  }
  return parts.join(", ");
}

/** Whole days when it is some, else hours or minutes: "7 days", "1 day", "10 minutes". */
function duration(seconds: number): string {
  const unit = (n: number, name: string): string => `${n} ${name}${n === 1 ? "" : "s"}`;
  if (seconds % 86_400 === 0) {
    return unit(seconds / 86_400, "day");
  }
  if (seconds % 3_600 === 0) {
    return unit(seconds / 3_600, "hour");
  }
  return seconds % 60 === 0 ? unit(seconds / 60, "minute") : unit(seconds, "second");
}

// ---- what exists, normalised -----------------------------------------------

type Duration = { seconds?: unknown; nanos?: number | null } | number | null | undefined;

/**
 * Pub/Sub reports durations as `{ seconds: "10", nanos: 0 }` (int64 as a
 * string) and unset messages as `null`; we compare whole seconds.
 */
function toSeconds(duration: Duration, fallback: number): number {
  if (duration === null || duration === undefined) {
    return fallback;
  }
  if (typeof duration === "number") {
    return duration;
  }
  return Number(String(duration.seconds ?? 0)) + (duration.nanos ?? 0) / 1e9;
}

function topicSpecOf(name: string, metadata: TopicMetadata): TopicSpec {
  const retention = metadata.messageRetentionDuration;
  return {
    name,
    ...(retention === null || retention === undefined
      ? {}
      : { messageRetentionSeconds: toSeconds(retention, 0) }),
    labels: metadata.labels ?? {},
  };
}

/** The full state of an existing subscription, with empty fields read as Pub/Sub's defaults. */
function subscriptionSpecOf(name: string, m: GetSubscriptionMetadataResponse[0]): SubscriptionSpec {
  const dlp = m.deadLetterPolicy;
  return {
    name,
    topic: m.topic ?? "",
    filter: m.filter ?? "",
    enableMessageOrdering: m.enableMessageOrdering === true,
    deadLetterPolicy:
      dlp === null || dlp === undefined || !dlp.deadLetterTopic
        ? null
        : {
            deadLetterTopic: dlp.deadLetterTopic,
            maxDeliveryAttempts: dlp.maxDeliveryAttempts || PUBSUB_DEFAULTS.maxDeliveryAttempts,
          },
    ackDeadlineSeconds: m.ackDeadlineSeconds || PUBSUB_DEFAULTS.ackDeadlineSeconds,
    // No retry policy means immediate redelivery, which differs from any policy.
    ...(m.retryPolicy
      ? {
          retryPolicy: {
            minimumBackoffSeconds: toSeconds(
              m.retryPolicy.minimumBackoff,
              PUBSUB_DEFAULTS.minimumBackoffSeconds,
            ),
            maximumBackoffSeconds: toSeconds(
              m.retryPolicy.maximumBackoff,
              PUBSUB_DEFAULTS.maximumBackoffSeconds,
            ),
          },
        }
      : {}),
    messageRetentionSeconds: toSeconds(
      m.messageRetentionDuration,
      PUBSUB_DEFAULTS.messageRetentionSeconds,
    ),
    retainAckedMessages: m.retainAckedMessages === true,
    enableExactlyOnceDelivery: m.enableExactlyOnceDelivery === true,
    // No policy at all: created without one, so Pub/Sub's 31 days apply. A
    // policy without a ttl: never expires.
    expirationTtlSeconds:
      m.expirationPolicy === null || m.expirationPolicy === undefined
        ? PUBSUB_DEFAULTS.expirationTtlSeconds
        : m.expirationPolicy.ttl === null || m.expirationPolicy.ttl === undefined
          ? null
          : toSeconds(m.expirationPolicy.ttl, PUBSUB_DEFAULTS.expirationTtlSeconds),
    labels: m.labels ?? {},
  };
}

// ---- comparing -------------------------------------------------------------

type Fields = Map<string, FieldValue>;

function labelFields(fields: Fields, labels: Readonly<Record<string, string>> | undefined): void {
  for (const [key, value] of Object.entries(labels ?? {})) {
    fields.set(`labels.${key}`, value);
  }
}

function topicFields(spec: TopicSpec): Fields {
  const fields: Fields = new Map();
  if (spec.messageRetentionSeconds !== undefined) {
    fields.set("messageRetentionSeconds", spec.messageRetentionSeconds);
  }
  labelFields(fields, spec.labels);
  return fields;
}

/** A spec as flat fields; unmanaged (undefined) settings are left out. */
function subscriptionFields(spec: SubscriptionSpec): Fields {
  const fields: Fields = new Map<string, FieldValue>([
    ["topic", spec.topic],
    ["filter", spec.filter],
    ["enableMessageOrdering", spec.enableMessageOrdering],
    ["deadLetterPolicy.deadLetterTopic", spec.deadLetterPolicy?.deadLetterTopic ?? null],
    ["deadLetterPolicy.maxDeliveryAttempts", spec.deadLetterPolicy?.maxDeliveryAttempts ?? null],
  ]);
  if (spec.ackDeadlineSeconds !== undefined) {
    fields.set("ackDeadlineSeconds", spec.ackDeadlineSeconds);
  }
  if (spec.retryPolicy !== undefined) {
    fields.set("retryPolicy.minimumBackoffSeconds", spec.retryPolicy.minimumBackoffSeconds);
    fields.set("retryPolicy.maximumBackoffSeconds", spec.retryPolicy.maximumBackoffSeconds);
  }
  if (spec.messageRetentionSeconds !== undefined) {
    fields.set("messageRetentionSeconds", spec.messageRetentionSeconds);
  }
  if (spec.retainAckedMessages !== undefined) {
    fields.set("retainAckedMessages", spec.retainAckedMessages);
  }
  if (spec.enableExactlyOnceDelivery !== undefined) {
    fields.set("enableExactlyOnceDelivery", spec.enableExactlyOnceDelivery);
  }
  if (spec.expirationTtlSeconds !== undefined) {
    // "never" rather than null, so the plan reads `"31 days" → "never"`.
    fields.set(
      "expirationPolicy.ttl",
      spec.expirationTtlSeconds === null ? "never" : duration(spec.expirationTtlSeconds),
    );
  }
  labelFields(fields, spec.labels);
  return fields;
}

interface Comparison {
  readonly changes: FieldChange[];
  readonly conflicts: string[];
}

/**
 * Compare the desired fields with what exists. An existing resource without
 * a setting reads as `null` there (e.g. no retry policy); existing labels the
 * desired labels lack count as changes only when labels are managed.
 */
function compare(
  desired: Fields,
  existing: Fields,
  spec: { readonly labels?: unknown },
  ignore?: ReadonlySet<string>,
): Comparison {
  const keys = new Set([...desired.keys()].filter((key) => ignore?.has(key) !== true));
  if (spec.labels !== undefined) {
    for (const key of existing.keys()) {
      if (key.startsWith("labels.")) {
        keys.add(key);
      }
    }
  }
  const changes: FieldChange[] = [];
  const conflicts = new Set<string>();
  for (const field of keys) {
    const from = existing.get(field) ?? null;
    const to = desired.get(field) ?? null;
    if (from !== to) {
      changes.push({ field, from, to });
      const reason = IMMUTABLE[field];
      if (reason !== undefined) {
        conflicts.add(reason);
      }
    }
  }
  return { changes, conflicts: [...conflicts] };
}

function toAction(
  comparison: Comparison | undefined,
  createDetail: string,
): Pick<ActionBase, "kind" | "detail" | "changes"> {
  if (comparison === undefined) {
    return { kind: "create", detail: createDetail };
  }
  const { changes, conflicts } = comparison;
  if (changes.length === 0) {
    return { kind: "unchanged", detail: "up to date" };
  }
  const changeText = changes.map((c) => `${c.field}: ${show(c.from)} → ${show(c.to)}`).join(", ");
  if (conflicts.length === 0) {
    return { kind: "update", detail: changeText, changes };
  }
  return {
    kind: "conflict",
    detail: `${changeText}; ${conflicts.join("; ")}: ${RECREATE_ADVICE}`,
    changes,
  };
}

function show(value: FieldValue): string {
  return value === null ? "(none)" : JSON.stringify(value);
}

// ---- applying --------------------------------------------------------------

function topicMetadata(spec: TopicSpec): TopicMetadata {
  return {
    ...(spec.messageRetentionSeconds === undefined
      ? {}
      : { messageRetentionDuration: { seconds: spec.messageRetentionSeconds } }),
    ...(spec.labels === undefined ? {} : { labels: { ...spec.labels } }),
  };
}

/** The API form of a spec: only managed settings; `null` clears one. */
function subscriptionMetadata(spec: SubscriptionSpec): SubscriptionMetadata {
  const { retryPolicy, deadLetterPolicy, labels } = spec;
  return {
    filter: spec.filter,
    enableMessageOrdering: spec.enableMessageOrdering,
    deadLetterPolicy,
    ...(spec.ackDeadlineSeconds === undefined
      ? {}
      : { ackDeadlineSeconds: spec.ackDeadlineSeconds }),
    ...(retryPolicy === undefined
      ? {}
      : {
          retryPolicy: {
            minimumBackoff: { seconds: retryPolicy.minimumBackoffSeconds },
            maximumBackoff: { seconds: retryPolicy.maximumBackoffSeconds },
          },
        }),
    ...(spec.messageRetentionSeconds === undefined
      ? {}
      : { messageRetentionDuration: { seconds: spec.messageRetentionSeconds } }),
    ...(spec.retainAckedMessages === undefined
      ? {}
      : { retainAckedMessages: spec.retainAckedMessages }),
    ...(spec.enableExactlyOnceDelivery === undefined
      ? {}
      : { enableExactlyOnceDelivery: spec.enableExactlyOnceDelivery }),
    // A policy without a ttl is "never expires"; no policy at all would be
    // Pub/Sub's 31 days.
    ...(spec.expirationTtlSeconds === undefined
      ? {}
      : {
          expirationPolicy:
            spec.expirationTtlSeconds === null
              ? {}
              : { ttl: { seconds: spec.expirationTtlSeconds } },
        }),
    ...(labels === undefined ? {} : { labels: { ...labels } }),
  };
}

/**
 * The top-level API fields an update touches. `setMetadata` derives the
 * update mask from the keys it is given and replaces a whole policy, so a
 * changed `deadLetterPolicy.maxDeliveryAttempts` sends the whole policy.
 */
function changedFields<M extends object>(action: ProvisioningAction, metadata: M): Partial<M> {
  const apiField = (field: string): string =>
    field === "messageRetentionSeconds"
      ? "messageRetentionDuration"
      : (field.split(".")[0] ?? field);
  const touched = new Set((action.changes ?? []).map((change) => apiField(change.field)));
  return Object.fromEntries(
    Object.entries(metadata).filter(([key]) => touched.has(key)),
  ) as Partial<M>;
}

// ---- Pub/Sub calls -----------------------------------------------------------

async function resolveProjectId(pubsub: PubSub): Promise<string> {
  try {
    await pubsub.getClientConfig();
  } catch (cause) {
    throw new ProtoeventsError(
      Code.PubSubUnavailable,
      "Could not determine the Google Cloud project to provision",
      { cause },
    );
  }
  return pubsub.projectId;
}

/** The metadata of a resource, or undefined when it does not exist. */
async function readMetadata<M>(
  resource: ResourceKind,
  name: string,
  call: () => Promise<[M, ...unknown[]]>,
): Promise<M | undefined> {
  try {
    const [metadata] = await call();
    return metadata;
  } catch (cause) {
    if (grpcCode(cause) === GrpcStatus.NOT_FOUND) {
      return undefined;
    }
    throw new ProtoeventsError(Code.PubSubUnavailable, `Could not read ${resource} ${name}`, {
      cause,
    });
  }
}

async function callPubSub(
  what: string,
  call: () => Promise<unknown>,
  tolerateAlreadyExists: boolean,
): Promise<"done" | "already-exists"> {
  try {
    await call();
    return "done";
  } catch (cause) {
    if (tolerateAlreadyExists && grpcCode(cause) === GrpcStatus.ALREADY_EXISTS) {
      return "already-exists";
    }
    const reason = cause instanceof Error ? `: ${cause.message}` : "";
    throw new ProtoeventsError(Code.PubSubUnavailable, `Could not ${what}${reason}`, { cause });
  }
}

async function mapLimited<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(ADMIN_CONCURRENCY, items.length) }, worker));
  return results;
}

function shortName(fullName: string): string {
  return fullName.slice(fullName.lastIndexOf("/") + 1);
}

// ---- IAM note ----------------------------------------------------------------

/** The one-time grants real Pub/Sub needs for the dead-letter policies this plan sets. */
function iamNote(plan: ProvisioningPlan): string[] {
  const setsPolicy = plan.actions.filter(
    (action): action is SubscriptionAction =>
      action.resource === "subscription" &&
      action.desired.deadLetterPolicy !== null &&
      (action.kind === "create" ||
        (action.kind === "update" &&
          (action.changes ?? []).some((c) => c.field === "deadLetterPolicy.deadLetterTopic"))),
  );
  if (setsPolicy.length === 0) {
    return [];
  }
  const project = plan.projectId;
  const member = "serviceAccount:service-<PROJECT_NUMBER>@gcp-sa-pubsub.iam.gserviceaccount.com";
  const deadLetterTopics = new Set(
    setsPolicy.map((action) => shortName(action.desired.deadLetterPolicy?.deadLetterTopic ?? "")),
  );
  return [
    "",
    "Note: dead-lettering needs the Pub/Sub service agent to publish to each dead-letter topic and",
    "to subscribe to each source subscription. The project number could not be read with these",
    "credentials, so provision cannot grant them: pass --project-number, or run once",
    `(<PROJECT_NUMBER>: gcloud projects describe ${project} --format='value(projectNumber)'):`,
    ...[...deadLetterTopics].map(
      (topic) =>
        `  gcloud pubsub topics add-iam-policy-binding ${topic} --project=${project} --member=${member} --role=roles/pubsub.publisher`,
    ),
    ...setsPolicy.map(
      (action) =>
        `  gcloud pubsub subscriptions add-iam-policy-binding ${action.name} --project=${project} --member=${member} --role=roles/pubsub.subscriber`,
    ),
  ];
}
