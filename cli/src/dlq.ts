/**
 * `protoevents dlq list|show|replay`: the dead-letter subscriptions of the
 * contracts, read without consuming, decoded as their proto types with `pii`
 * redacted, and replayed to the one subscription that failed.
 */

import type { PubSub } from "@google-cloud/pubsub";
import type {
  ContractRegistry,
  DeadLetterSummary,
  DeadLetterView,
  ReplayOutcome,
} from "@protoevents/runtime";
import { DEAD_LETTER_SHOWN_BYTES, DEFAULT_DEAD_LETTER_LIMIT } from "@protoevents/runtime/defaults";
import { Code, ProtoeventsError } from "@protoevents/runtime/errors";
import { type Command, InvalidArgumentError, Option } from "commander";
import { confirmTarget, targetOf, withLocalEmulator } from "./target.js";

/** What the dlq commands need from the CLI that registers them. */
export interface DlqCommandDeps {
  /** Loads the generated contract registry: `--registry`, else the configured one. */
  readonly loadRegistry: (path: string | undefined) => Promise<ContractRegistry>;
  /** The repository root, where a running `npm start` announces its emulator. */
  readonly root: () => string;
}

interface CommonOptions {
  readonly project?: string;
  readonly emulatorHost?: string;
  readonly registry?: string;
  readonly subscription?: string[];
  readonly limit: number;
  readonly json?: boolean;
}

interface SelectOptions extends CommonOptions {
  readonly reason?: string;
  readonly eventId?: string[];
}

interface ReplayCommandOptions extends SelectOptions {
  readonly all?: boolean;
  readonly dryRun?: boolean;
  readonly yes?: boolean;
}

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError("expected a whole number above 0");
  }
  return n;
}

function write(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}

/** The runtime, loaded when a command runs rather than when the CLI starts. */
type Runtime = typeof import("@protoevents/runtime");

/** Run `work` on a Pub/Sub client for the command's project and close it afterwards. */
async function withPubSub<T>(
  options: CommonOptions,
  deps: DlqCommandDeps,
  work: (pubsub: PubSub, registry: ContractRegistry, runtime: Runtime) => Promise<T>,
): Promise<T> {
  const registry = await deps.loadRegistry(options.registry);
  const runtime = await import("@protoevents/runtime");
  const pubsub = runtime.createPubSub({
    ...(options.project === undefined ? {} : { projectId: options.project }),
    ...(options.emulatorHost === undefined ? {} : { emulatorHost: options.emulatorHost }),
  });
  try {
    return await work(pubsub, registry, runtime);
  } finally {
    await pubsub.close();
  }
}

function common(command: Command): Command {
  return command
    .addOption(new Option("--project <id>", "Google Cloud project id").env("PUBSUB_PROJECT_ID"))
    .addOption(
      new Option("--emulator-host <host:port>", "Pub/Sub emulator; unset means real Pub/Sub").env(
        "PUBSUB_EMULATOR_HOST",
      ),
    )
    .option(
      "--registry <file>",
      "contract registry module (default: the one in the generated directory)",
    )
    .option(
      "--subscription <name...>",
      "only these subscriptions (or their .dead-letter subscriptions); default: every one",
    )
    .addOption(
      new Option("--limit <n>", "dead letters read per subscription at most")
        .argParser(positiveInteger)
        .default(DEFAULT_DEAD_LETTER_LIMIT),
    )
    .option("--json", "print JSON instead of text");
}

function select(command: Command): Command {
  return command
    .option(
      "--reason <reason>",
      "only this reason: decode_failed, validation_failed, unknown_event_type, permanent, exhausted-retries, unknown",
    )
    .option("--event-id <id...>", "only these event ids (ce-id)");
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`;

/** The text of `dlq list`. */
export function formatSummaries(summaries: readonly DeadLetterSummary[]): string {
  const lines: string[] = [];
  for (const s of summaries.filter((summary) => summary.count > 0)) {
    lines.push(
      `${s.subscription}: ${plural(s.count, "dead letter")} in ${s.deadLetterSubscription}, oldest ${s.oldest}` +
        (s.truncated ? " (stopped at the limit; there may be more)" : ""),
    );
    const width = Math.max(...s.groups.map((g) => g.reason.length));
    for (const g of s.groups) {
      const deliveries =
        g.deliveryCounts.length === 0
          ? ""
          : g.reason === "exhausted-retries"
            ? `, after ${g.deliveryCounts.join("/")} deliveries`
            : `, on delivery ${g.deliveryCounts.join("/")}`;
      const types = g.eventTypes.length === 0 ? "" : `, ${g.eventTypes.join(", ")}`;
      lines.push(
        `  ${String(g.count).padStart(5)}  ${g.reason.padEnd(width)}  oldest ${g.oldest}${deliveries}${types}`,
      );
    }
  }
  const total = summaries.reduce((n, s) => n + s.count, 0);
  const holding = summaries.filter((s) => s.count > 0).length;
  lines.push(
    `${plural(total, "dead letter")} in ${holding} of ${plural(summaries.length, "dead-letter subscription")}`,
  );
  return lines.join("\n");
}

function indent(text: string, by: string): string {
  return text
    .split("\n")
    .map((line, i) => (i === 0 ? line : `${by}${line}`))
    .join("\n");
}

/** The text of `dlq show` for one dead letter. */
export function formatView(view: DeadLetterView): string {
  const lines = [
    `${view.subscription} · message ${view.messageId} · dead-lettered ${view.deadLetteredAt}`,
  ];
  const attempt =
    view.deliveryCount === undefined
      ? ""
      : view.reason === "exhausted-retries"
        ? ` after ${view.deliveryCount} deliveries`
        : ` on delivery ${view.deliveryCount}`;
  lines.push(
    `  reason:   ${view.reason}${attempt}${view.detail === undefined ? "" : `: ${view.detail}`}`,
  );
  if (view.kind === "decoded") {
    const e = view.event;
    lines.push(
      `  event:    ${e.eventType} ${e.eventId} from ${e.source}` +
        (e.subject === undefined ? "" : `, subject ${e.subject}`) +
        (e.timestamp === "" ? "" : `, at ${e.timestamp}`),
    );
    if (view.orderingKey !== undefined) {
      lines.push(`  ordering key: ${view.orderingKey}`);
    }
    lines.push(`  payload:  ${indent(JSON.stringify(e.payload, null, 2), "            ")}`);
    for (const v of view.violations) {
      lines.push(`  broken rule: ${v.path} ${v.message} (${v.rule})`);
    }
  } else {
    lines.push(`  undecodable: ${view.error}`);
    lines.push(
      `  attributes: ${indent(JSON.stringify(view.attributes, null, 2), "              ")}`,
    );
    lines.push(
      `  data (${plural(view.data.size, "byte")}${view.data.truncated ? `, the first ${DEAD_LETTER_SHOWN_BYTES} shown` : ""}):`,
    );
    lines.push(`    hex     ${view.data.hex}`);
    lines.push(`    base64  ${view.data.base64}`);
  }
  return lines.join("\n");
}

/** The text of one `dlq replay` outcome. */
export function formatOutcome(o: ReplayOutcome): string {
  const what = `${o.subscription} ${o.eventId ?? "(no ce-id)"} ${o.eventType ?? "(no ce-type)"} (${o.reason})`;
  switch (o.result) {
    case "replayed":
      return `replayed      ${what} → ${o.topic} as message ${o.replayMessageId}`;
    case "would-replay":
      return `would replay  ${what} → ${o.topic}`;
    case "skipped":
      return `skipped       ${what}: ${o.error}`;
    case "failed":
      return `failed        ${what}: ${o.error}`;
  }
}

/**
 * Add `dlq list`, `dlq show` and `dlq replay` to the CLI.
 */
export function registerDlqCommand(program: Command, deps: DlqCommandDeps): void {
  const dlq = program
    .command("dlq")
    .description(
      "inspect and replay dead letters: every subscription's <subscription>.dead-letter, read without consuming",
    );

  common(
    dlq
      .command("list")
      .description("per subscription: how many dead letters, the oldest, grouped by reason"),
  ).action(async (given: CommonOptions) => {
    const options = await withLocalEmulator(given, deps.root(), "dlq list");
    const summaries = await withPubSub(options, deps, (pubsub, registry, { listDeadLetters }) =>
      listDeadLetters(pubsub, registry, {
        subscriptions: options.subscription,
        limit: options.limit,
      }),
    );
    write(options.json === true ? JSON.stringify(summaries, null, 2) : formatSummaries(summaries));
  });

  select(
    common(
      dlq
        .command("show")
        .description(
          "the dead letters decoded as their proto types, with envelope and reason; pii fields redacted; " +
            "undecodable ones as bytes (hex, base64) with their attributes",
        ),
    ),
  ).action(async (given: SelectOptions) => {
    const options = await withLocalEmulator(given, deps.root(), "dlq show");
    const views = await withPubSub(options, deps, (pubsub, registry, { showDeadLetters }) =>
      showDeadLetters(pubsub, registry, {
        subscriptions: options.subscription,
        limit: options.limit,
        reason: options.reason,
        eventIds: options.eventId,
      }),
    );
    if (options.json === true) {
      write(JSON.stringify(views, null, 2));
    } else {
      write(
        [...views.map(formatView), `${plural(views.length, "dead letter")} shown`].join("\n\n"),
      );
    }
  });

  select(
    common(
      dlq
        .command("replay")
        .description(
          "republish dead letters to their topic for the subscription that failed (attribute " +
            "protoevents-replay-for), keeping ce-id so the inboxes of subscriptions that processed the event " +
            "ack it as a duplicate; each is acked in the dead-letter subscription only after the republish is confirmed",
        ),
    ),
  )
    .option("--all", "replay every dead letter read (of the --subscription ones, if given)")
    .option("--dry-run", "print what would be replayed; publish and ack nothing")
    .option("--yes", "replay on real Pub/Sub (outside an emulator it is refused without)")
    .action(async (given: ReplayCommandOptions) => {
      const options = await withLocalEmulator(given, deps.root(), "dlq replay");
      if (options.all !== true && options.reason === undefined && options.eventId === undefined) {
        throw new ProtoeventsError(
          Code.InvalidArgument,
          "say which dead letters to replay: --all, --reason <reason> or --event-id <id...>",
        );
      }
      if (options.dryRun !== true) {
        confirmTarget("dlq replay", targetOf(options), options.yes === true);
      }
      const report = await withPubSub(options, deps, (pubsub, registry, { replayDeadLetters }) =>
        replayDeadLetters(pubsub, registry, {
          subscriptions: options.subscription,
          limit: options.limit,
          reason: options.reason,
          eventIds: options.eventId,
          all: options.all === true,
          dryRun: options.dryRun === true,
        }),
      );
      const count = (result: ReplayOutcome["result"]) =>
        report.outcomes.filter((o) => o.result === result).length;
      const found = new Set(report.outcomes.map((o) => o.eventId));
      const missing = (options.eventId ?? []).filter((id) => !found.has(id));
      if (options.json === true) {
        write(JSON.stringify({ ...report, missingEventIds: missing }, null, 2));
      } else {
        const lines = report.outcomes.map(formatOutcome);
        for (const id of missing) {
          lines.push(`not found     no dead letter with event id ${id}`);
        }
        lines.push(
          options.dryRun === true
            ? `${count("would-replay")} would be replayed, ${count("skipped")} skipped; dry run: nothing was published or acked`
            : `${count("replayed")} replayed, ${count("skipped")} skipped, ${count("failed")} failed`,
        );
        write(lines.join("\n"));
      }
      if (count("failed") > 0) {
        throw new ProtoeventsError(
          Code.PublishFailed,
          `${plural(count("failed"), "dead letter")} could not be replayed; they stay in their dead-letter subscription`,
        );
      }
    });
}
