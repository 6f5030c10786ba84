/**
 * The gate's report for people and tools: text like a compiler's
 * (`file:line:column: rule: message`), JSON, and a Markdown summary a CI job
 * can post on a pull request.
 */
import { formatLocation } from "../location.js";
import type { CompatibilityMode } from "../options.js";
import type { CheckReport, EventMode, GateFinding } from "./check.js";
import type { AffectedConsumer, Direction } from "./compare-contracts.js";
import { modeAllowing, rolloutOrder } from "./modes.js";

function describeConsumers(consumers: readonly AffectedConsumer[]): string {
  return consumers.length === 0
    ? "none declared"
    : consumers.map((c) => `${c.application} (${c.subscription})`).join(", ");
}

/** What a direction means, in the words of a deploy. */
const DIRECTION_TEXT: Record<Direction, string> = {
  backward: "backward (breaks when consumers deploy first, and for events in flight)",
  forward: "forward (breaks when producers deploy first)",
  both: "both directions (breaks in any deploy order)",
};

/**
 * A finding as text, like codegen's: `file:line:column: rule: message`,
 * then the releases it breaks against, the direction, the consumers and
 * producers, and the fix.
 */
export function formatGateFinding(finding: GateFinding): string {
  const rule =
    finding.source === "protoevents" ? finding.rule : `${finding.rule} (${finding.source})`;
  const lines = [`${formatLocation(finding.location)}: ${rule}: ${finding.message}`];
  if (finding.releases.length > 0) {
    const where =
      finding.locationIn === "release"
        ? ` (the location is the release's: it no longer exists today)`
        : "";
    lines.push(
      `    breaks against release${finding.releases.length === 1 ? "" : "s"} ${finding.releases.join(", ")}${where}`,
    );
  }
  if (finding.direction !== undefined) {
    lines.push(`    direction: ${DIRECTION_TEXT[finding.direction]}`);
  }
  if (finding.source !== "buf lint") {
    lines.push(`    consumers: ${describeConsumers(finding.consumers)}`);
  }
  if (finding.producers.length > 0) {
    lines.push(`    producers: ${finding.producers.join(", ")}`);
  }
  lines.push(`    fix: ${finding.fix}`);
  return lines.join("\n");
}

/** A change the events' modes allow, with the deploy order it needs. */
export function formatAllowed(finding: GateFinding, modes: readonly EventMode[]): string {
  const declared = finding.events
    .map((e) => modes.find((m) => m.event === e))
    .filter((m): m is EventMode => m !== undefined)
    .map((m) => `${m.event} is ${m.mode}`);
  const order = rolloutOrder(finding.direction);
  const why =
    order === undefined
      ? `allowed against release${finding.releases.length === 1 ? "" : "s"} ${finding.releases.join(", ")}: the mode checks the newest release only`
      : `allowed (${declared.join(", ") || "mode of a release"}): ${order}`;
  return `${formatLocation(finding.location)}: note: ${finding.rule}: ${finding.message}\n    ${why}`;
}

/** A finding as a plain JSON object (`--format json`). */
export function gateFindingJson(finding: GateFinding): Record<string, unknown> {
  return {
    file: finding.location.file,
    line: finding.location.line,
    column: finding.location.column,
    rule: finding.rule,
    source: finding.source,
    message: finding.message,
    releases: finding.releases,
    locationIn: finding.locationIn,
    ...(finding.direction === undefined ? {} : { direction: finding.direction }),
    events: finding.events,
    consumers: finding.consumers,
    producers: finding.producers,
    fix: finding.fix,
  };
}

/** The report as JSON (`--format json`): refused findings, allowed ones with their order, modes and verdicts. */
export function checkReportJson(report: CheckReport): Record<string, unknown> {
  return {
    compatible: report.findings.length === 0,
    releases: report.releases,
    findings: report.findings.map(gateFindingJson),
    allowed: report.allowed.map((f) => ({
      ...gateFindingJson(f),
      rollout: rolloutOrder(f.direction) ?? null,
    })),
    modes: report.modes,
    verdicts: report.verdicts,
    goldenPayloads: report.goldenPayloads,
  };
}

/** The one-line summary printed after the findings. */
export function summarizeCheck(report: CheckReport): string {
  const against =
    report.releases.length === 0
      ? "no release yet (record one with `protoevents release`)"
      : `release${report.releases.length === 1 ? "" : "s"} ${report.releases.join(", ")}`;
  const seconds = (report.durationMs / 1000).toFixed(1);
  const allowed =
    report.allowed.length === 0
      ? ""
      : `; ${report.allowed.length} change${report.allowed.length === 1 ? "" : "s"} allowed by the events' modes (see the notes)`;
  if (report.findings.length === 0) {
    return `check: compatible with ${against}: buf lint, buf breaking, event rules, ${report.goldenPayloads} golden payloads and samples${allowed} (${seconds} s)`;
  }
  const n = report.findings.length;
  return `check: ${n} finding${n === 1 ? "" : "s"} against ${against}${allowed} (${seconds} s)`;
}

/** A Markdown table cell: no line breaks, pipes escaped. */
function cell(text: string): string {
  return text.replace(/\r?\n/g, " ").replace(/\|/g, "\\|");
}

const MODE_ORDER: Record<CompatibilityMode, string> = {
  BACKWARD: "consumers first, then producers",
  BACKWARD_TRANSITIVE: "consumers first, then producers",
  FORWARD: "producers first, then consumers",
  FORWARD_TRANSITIVE: "producers first, then consumers",
  FULL: "any order",
  FULL_TRANSITIVE: "any order",
};

/**
 * The report as Markdown for a pull request: the verdict, what changed per
 * event with its mode and the rollout order it requires, the verdict each
 * mode would give, then every finding with its fix.
 */
export function formatCheckMarkdown(report: CheckReport): string {
  const out: string[] = [];
  const against =
    report.releases.length === 0 ? "no release yet" : `releases ${report.releases.join(", ")}`;
  out.push(
    report.findings.length === 0
      ? `## ✅ protoevents check: compatible with ${against}`
      : `## ❌ protoevents check: ${report.findings.length} finding${report.findings.length === 1 ? "" : "s"} against ${against}`,
  );
  out.push("");
  // Per event: what changed, its mode, the verdict and the order it needs.
  const all = [...report.findings, ...report.allowed];
  const events = [...new Set(all.flatMap((f) => f.events))].sort();
  if (events.length > 0) {
    out.push("### Changes per event", "");
    out.push("| event | mode | changes | verdict | rollout |", "| --- | --- | --- | --- | --- |");
    for (const event of events) {
      const mode = report.modes.find((m) => m.event === event);
      const refusedHere = report.findings.filter((f) => f.events.includes(event));
      const allowedHere = report.allowed.filter((f) => f.events.includes(event));
      const rules = [...new Set([...refusedHere, ...allowedHere].map((f) => f.rule))].join(", ");
      const orders = [
        ...new Set(
          allowedHere.map((f) => rolloutOrder(f.direction)).filter((o) => o !== undefined),
        ),
      ];
      const verdict = refusedHere.length > 0 ? "❌ refused" : "✅ allowed";
      const rollout =
        refusedHere.length > 0
          ? refusedHere.every((f) => modeAllowing(f.direction) !== undefined) &&
            new Set(refusedHere.map((f) => f.direction)).size === 1
            ? `would pass as ${modeAllowing(refusedHere[0]?.direction)}: ${rolloutOrder(refusedHere[0]?.direction)}`
            : "no deploy order is safe: see the fixes"
          : orders.length > 0
            ? orders.join("; ")
            : "any order";
      const modeText =
        mode === undefined
          ? "(removed)"
          : `${mode.mode}${mode.from === "event" ? "" : ` (${mode.from})`}`;
      out.push(
        `| \`${cell(event)}\` | ${cell(modeText)} | ${cell(rules)} | ${verdict} | ${cell(rollout)} |`,
      );
    }
    out.push("");
  }
  if (report.verdicts.length > 0) {
    out.push("### Verdict per mode", "");
    out.push("| mode | deploy order | verdict |", "| --- | --- | --- |");
    for (const v of report.verdicts) {
      out.push(
        `| ${v.mode} | ${MODE_ORDER[v.mode]} | ${v.refused === 0 ? "✅ passes" : `❌ ${v.refused} finding${v.refused === 1 ? "" : "s"}`} |`,
      );
    }
    out.push("");
  }
  if (report.findings.length > 0) {
    out.push("### Findings", "");
    for (const f of report.findings) {
      out.push(...findingMarkdown(f));
    }
    out.push("");
  }
  if (report.allowed.length > 0) {
    out.push("### Allowed by the events' modes", "");
    for (const f of report.allowed) {
      const order = rolloutOrder(f.direction);
      // The fix would only repeat the mode the event already declares: the order is what matters.
      out.push(
        ...findingMarkdown(
          f,
          `rollout: ${order ?? "any order (the mode checks the newest release only)"}`,
          false,
        ),
      );
    }
    out.push("");
  }
  return `${out.join("\n").trimEnd()}\n`;
}

function findingMarkdown(f: GateFinding, extra?: string, withFix = true): string[] {
  const lines = [
    `- **${f.rule}**${f.source === "protoevents" ? "" : ` (${f.source})`} at \`${formatLocation(f.location)}\`${f.direction === undefined ? "" : `, ${f.direction}`}${f.releases.length === 0 ? "" : `, against ${f.releases.join(", ")}`}: ${f.message}`,
  ];
  if (f.consumers.length > 0) {
    lines.push(`  - consumers: ${describeConsumers(f.consumers)}`);
  }
  if (f.producers.length > 0) {
    lines.push(`  - producers: ${f.producers.join(", ")}`);
  }
  if (extra !== undefined) {
    lines.push(`  - ${extra}`);
  }
  if (withFix) {
    lines.push(`  - fix: ${f.fix}`);
  }
  return lines;
}
