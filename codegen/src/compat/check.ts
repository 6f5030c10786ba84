/**
 * The compatibility gate behind `protoevents check`: buf lint, buf breaking
 * against every release, the event-level rules against every release, and
 * every release's golden payloads decoded with today's schema. Findings say
 * where, which rule, which releases they break against, which consumers are
 * affected, and how to fix them.
 */

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { DescEnum, DescFile, DescMessage, DescMethod } from "@bufbuild/protobuf";
import { getComments } from "@bufbuild/protoplugin";
import {
  type BufFinding,
  type BufWorkspace,
  bufBreaking,
  bufBuild,
  bufLint,
  pathPrefixOf,
  readModulePath,
} from "../buf.js";
import { formatLocation, locate, type SourceLocation } from "../location.js";
import { compareGolden, decodeGolden, readGolden } from "../release/golden.js";
import {
  listReleases,
  ReleaseFile,
  type ReleaseRef,
  readReleaseManifest,
} from "../release/releases.js";
import {
  type AffectedConsumer,
  type CompatFinding,
  compareContracts,
  nextVersionName,
} from "./compare-contracts.js";
import {
  type ContractSnapshot,
  closureOf,
  consumersOf,
  snapshotContracts,
} from "./contract-snapshot.js";
import { readImage } from "./image.js";

/** Who reported a finding. */
export type FindingSource = "buf lint" | "buf breaking" | "protoevents";

/** Rule ids of the golden-payload checks. */
export const GoldenRule = {
  /** A release's golden payload no longer decodes with today's schema. */
  unreadable: "golden-payload-unreadable",
  /** A field of a release's golden payload that still exists reads another value today. */
  changed: "golden-payload-changed",
} as const;

/** One finding of the gate. */
export interface GateFinding {
  /** Our rule id (kebab-case), or buf's (e.g. `FIELD_SAME_NAME`). */
  readonly rule: string;
  readonly source: FindingSource;
  readonly message: string;
  readonly fix: string;
  readonly location: SourceLocation;
  /** `release`: the element no longer exists today; the location is the release's. */
  readonly locationIn: "today" | "release";
  /** The releases the change breaks against, oldest first; empty for lint. */
  readonly releases: readonly string[];
  /** Applications and subscriptions that consume the events concerned. */
  readonly consumers: readonly AffectedConsumer[];
}

/** What `checkContracts` did and found. */
export interface CheckReport {
  readonly findings: readonly GateFinding[];
  /** The releases checked against, oldest first. */
  readonly releases: readonly string[];
  /** Golden payloads decoded (both encodings of every released event). */
  readonly goldenPayloads: number;
  readonly durationMs: number;
}

/** Options of {@link checkContracts}. */
export interface CheckOptions {
  /** The repository root: buf.yaml, the module and `releases/`. */
  readonly dir: string;
  /** The buf binary. @default the package's `@bufbuild/buf` */
  readonly buf?: string;
  /** Where releases live, relative to `dir`. @default "releases" */
  readonly releasesDir?: string;
}

/** Fixes for buf's breaking rules, by rule id pattern; the first match wins. */
const BUF_BREAKING_FIXES: ReadonlyArray<readonly [RegExp, string]> = [
  [
    /_TYPE$|_CARDINALITY$/,
    'keep the field\'s type; to change it, add a new field with a new number and reserve the old number and name (reserved N; reserved "name";)',
  ],
  [
    /^FIELD_SAME_(NAME|JSON_NAME)$/,
    "keep the field's name: JSON payloads and consumers read it by name; to rename, add a new field and keep the old one until no event in flight carries it",
  ],
  [
    /^FIELD_NO_DELETE/,
    'reserve the removed field\'s number and name in the message (reserved N; reserved "name";) so nobody reuses them with another meaning',
  ],
  [
    /^ENUM_VALUE_/,
    "keep the enum value (mark it deprecated); events in flight carry it. If it must go, reserve its number and name",
  ],
  [
    /^RESERVED_/,
    "keep the reserved numbers and names: events in flight can still carry the fields they stand for",
  ],
  [
    /ONEOF/,
    "keep the field in (or out of) its oneof; move data between oneofs with a new field and a new number",
  ],
];

function bufBreakingFix(type: string): string {
  return (
    BUF_BREAKING_FIXES.find(([pattern]) => pattern.test(type))?.[1] ??
    'undo the change; for an intentional break, add a new versioned event and publish both during migration (README, "Changing a contract safely")'
  );
}

function bufLintFix(type: string): string {
  return type === "COMPILE"
    ? "fix the .proto so that it compiles; nothing else can be checked until it does"
    : `follow buf's ${type} rule: https://buf.build/docs/lint/rules/#${type.toLowerCase()}`;
}

/** The lines (1-based, inclusive) an element spans in its file; undefined without source info. */
function linesOf(
  desc: DescMessage | DescEnum | DescMethod,
  file: DescFile,
): { start: number; end: number } | undefined {
  const path = getComments(desc).sourcePath;
  const found = (file.proto.sourceCodeInfo?.location ?? []).find(
    (l) => l.path.length === path.length && l.path.every((n, i) => n === path[i]),
  );
  if (found === undefined) {
    return undefined;
  }
  // A span is [startLine, startColumn, endLine, endColumn], or 3 numbers on one line.
  const start = (found.span[0] ?? 0) + 1;
  const end = (found.span.length === 4 ? (found.span[2] ?? 0) : (found.span[0] ?? 0)) + 1;
  return { start, end };
}

/** The innermost message or enum declared at a line of a file. */
function declarationAt(
  files: readonly DescFile[],
  pathPrefix: string,
  path: string,
  line: number,
): DescMessage | DescEnum | undefined {
  const file = files.find((f) => `${pathPrefix}${f.name}.proto` === path);
  if (file === undefined) {
    return undefined;
  }
  let best: { desc: DescMessage | DescEnum; size: number } | undefined;
  const consider = (desc: DescMessage | DescEnum) => {
    const lines = linesOf(desc, file);
    if (
      lines !== undefined &&
      line >= lines.start &&
      line <= lines.end &&
      (best === undefined || lines.end - lines.start < best.size)
    ) {
      best = { desc, size: lines.end - lines.start };
    }
  };
  const walk = (messages: readonly DescMessage[]) => {
    for (const message of messages) {
      consider(message);
      message.nestedEnums.forEach(consider);
      walk(message.nestedMessages);
    }
  };
  file.enums.forEach(consider);
  walk(file.messages);
  return best?.desc;
}

/** The consumers of every event whose payload contains a message or enum. */
function consumersReaching(
  snapshots: readonly ContractSnapshot[],
  typeName: string,
): AffectedConsumer[] {
  const out = new Map<string, AffectedConsumer>();
  for (const snapshot of snapshots) {
    for (const event of snapshot.events.values()) {
      const closure = closureOf(event.desc);
      const reaches =
        closure.messages.some((m) => m.typeName === typeName) ||
        closure.enums.some((e) => e.typeName === typeName);
      if (!reaches) {
        continue;
      }
      for (const c of consumersOf(snapshot, event.name)) {
        out.set(c.subscription, {
          application: c.application,
          subscription: c.subscription,
          event: c.event,
        });
      }
    }
  }
  return [...out.values()].sort((a, b) => (a.subscription < b.subscription ? -1 : 1));
}

/** The consumer rpcs declared at a line of a file. */
function consumersAt(snapshot: ContractSnapshot, path: string, line: number): AffectedConsumer[] {
  return snapshot.consumers
    .filter((c) => {
      const file = c.desc.parent.file;
      const lines = linesOf(c.desc, file);
      return (
        `${snapshot.pathPrefix}${file.name}.proto` === path &&
        lines !== undefined &&
        line >= lines.start &&
        line <= lines.end
      );
    })
    .map((c) => ({ application: c.application, subscription: c.subscription, event: c.event }));
}

interface Today {
  readonly snapshot: ContractSnapshot;
  readonly files: readonly DescFile[];
}

function bufFinding(
  finding: BufFinding,
  source: "buf lint" | "buf breaking",
  release: string | undefined,
  today: Today | undefined,
  releaseSnapshot: ContractSnapshot | undefined,
): GateFinding {
  const declaration =
    today === undefined
      ? undefined
      : declarationAt(today.files, today.snapshot.pathPrefix, finding.path, finding.line);
  const snapshots = [today?.snapshot, releaseSnapshot].filter(
    (s): s is ContractSnapshot => s !== undefined,
  );
  return {
    rule: finding.type,
    source,
    message: finding.message,
    fix: source === "buf lint" ? bufLintFix(finding.type) : bufBreakingFix(finding.type),
    location: { file: finding.path, line: finding.line, column: finding.column },
    locationIn: "today",
    releases: release === undefined ? [] : [release],
    consumers:
      declaration !== undefined
        ? consumersReaching(snapshots, declaration.typeName)
        : today === undefined
          ? []
          : consumersAt(today.snapshot, finding.path, finding.line),
  };
}

function fromCompat(finding: CompatFinding, release: string): GateFinding {
  return {
    rule: finding.rule,
    source: "protoevents",
    message: finding.message,
    fix: finding.fix,
    location: finding.location,
    locationIn: finding.locationIn,
    releases: [release],
    consumers: finding.consumers,
  };
}

/** Decode every golden payload of a release with today's schema. */
async function checkGolden(
  release: ReleaseRef,
  releaseSnapshot: ContractSnapshot,
  today: ContractSnapshot,
): Promise<{ findings: GateFinding[]; payloads: number }> {
  const manifest = await readReleaseManifest(release);
  const findings: GateFinding[] = [];
  let payloads = 0;
  for (const event of manifest.events) {
    const releaseDesc = releaseSnapshot.messages.get(event.name);
    const todayDesc = today.messages.get(event.name);
    if (releaseDesc === undefined || todayDesc === undefined) {
      // Gone today: event-removed-while-consumed says whether that matters.
      continue;
    }
    const golden = await readGolden(release, event);
    const consumers = consumersReaching([today, releaseSnapshot], event.name);
    const next = nextVersionName(event.name);
    const mismatches = new Map<
      string,
      { detail: string; at: SourceLocation; encodings: string[] }
    >();
    for (const encoding of ["binary", "json"] as const) {
      payloads++;
      const wire = encoding === event.encoding;
      const label = `${encoding === "binary" ? "binary" : "JSON"} payload`;
      let released: ReturnType<typeof decodeGolden>;
      let decoded: ReturnType<typeof decodeGolden>;
      try {
        released = decodeGolden(releaseDesc, golden, encoding, { strict: false });
        decoded = decodeGolden(todayDesc, golden, encoding, { strict: wire });
      } catch (cause) {
        findings.push({
          rule: GoldenRule.unreadable,
          source: "protoevents",
          message: `the release's golden ${label} of ${event.name}${wire ? " (the encoding its producers publish)" : ""} no longer decodes with today's schema: ${(cause as Error).message}`,
          fix: `restore the field types, numbers and names the release had${wire && encoding === "json" ? " (a JSON consumer refuses fields it does not know: keep removed fields until no event in flight carries them)" : ""}; for an intentional change add a new event ${next} and publish both during migration`,
          location: locate(todayDesc, [], today.pathPrefix),
          locationIn: "today",
          releases: [release.version],
          consumers,
        });
        continue;
      }
      for (const m of compareGolden(releaseDesc, released, todayDesc, decoded)) {
        const entry = mismatches.get(m.path) ?? {
          detail: m.detail,
          at: locate(m.field, [], today.pathPrefix),
          encodings: [],
        };
        entry.encodings.push(encoding === "binary" ? "binary" : "JSON");
        mismatches.set(m.path, entry);
      }
    }
    for (const [path, m] of mismatches) {
      findings.push({
        rule: GoldenRule.changed,
        source: "protoevents",
        message: `today's ${event.name} reads field ${path} of the release's golden ${m.encodings.join(" and ")} payload differently: ${m.detail}`,
        fix: `keep the field's number, type and name as the release had them; carry new data in a new field (or a new event ${next})`,
        location: m.at,
        locationIn: "today",
        releases: [release.version],
        consumers,
      });
    }
  }
  return { findings, payloads };
}

/** Merge findings that are the same change against several releases. */
function merge(findings: readonly GateFinding[], order: readonly string[]): GateFinding[] {
  const byKey = new Map<string, GateFinding>();
  for (const f of findings) {
    const key = [f.rule, formatLocation(f.location), f.message].join("\u0000");
    const seen = byKey.get(key);
    if (seen === undefined) {
      byKey.set(key, f);
      continue;
    }
    const releases = [...new Set([...seen.releases, ...f.releases])].sort(
      (a, b) => order.indexOf(a) - order.indexOf(b),
    );
    const consumers = new Map(
      [...seen.consumers, ...f.consumers].map((c) => [c.subscription, c] as const),
    );
    byKey.set(key, {
      ...seen,
      releases,
      consumers: [...consumers.values()].sort((a, b) => (a.subscription < b.subscription ? -1 : 1)),
    });
  }
  return [...byKey.values()].sort(
    (a, b) =>
      (a.location.file < b.location.file ? -1 : a.location.file > b.location.file ? 1 : 0) ||
      a.location.line - b.location.line ||
      a.location.column - b.location.column ||
      (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0),
  );
}

/**
 * Run the gate on the contracts in `options.dir` against every release in
 * `releases/`. Resolves with every finding; an empty list means the
 * contracts are compatible with every release.
 */
export async function checkContracts(options: CheckOptions): Promise<CheckReport> {
  const started = performance.now();
  const workspace: BufWorkspace = {
    dir: options.dir,
    ...(options.buf === undefined ? {} : { buf: options.buf }),
  };
  const modulePath = await readModulePath(options.dir);
  const prefix = pathPrefixOf(modulePath);
  const releases = await listReleases(options.dir, options.releasesDir);
  const versions = releases.map((r) => r.version);

  const lint = await bufLint(workspace);
  if (lint.some((f) => f.type === "COMPILE")) {
    return {
      findings: merge(
        lint.map((f) => bufFinding(f, "buf lint", undefined, undefined, undefined)),
        versions,
      ),
      releases: versions,
      goldenPayloads: 0,
      durationMs: performance.now() - started,
    };
  }
  const [todayImage, breaking, releaseImages] = await Promise.all([
    bufBuild(workspace, modulePath),
    Promise.all(releases.map((r) => bufBreaking(workspace, join(r.dir, ReleaseFile.image)))),
    Promise.all(releases.map((r) => readFile(join(r.dir, ReleaseFile.image)))),
  ]);
  const todayFiles = readImage(todayImage, `the image of ${modulePath}`).files;
  const today: Today = { snapshot: snapshotContracts(todayFiles, prefix), files: todayFiles };

  const findings: GateFinding[] = lint.map((f) =>
    bufFinding(f, "buf lint", undefined, today, undefined),
  );
  let goldenPayloads = 0;
  for (const [i, release] of releases.entries()) {
    const bytes = releaseImages[i] ?? new Uint8Array();
    const releaseFiles = readImage(
      bytes,
      `release ${release.version} (${join(release.dir, ReleaseFile.image)})`,
    ).files;
    const releaseSnapshot = snapshotContracts(releaseFiles, prefix);
    for (const f of breaking[i] ?? []) {
      findings.push(bufFinding(f, "buf breaking", release.version, today, releaseSnapshot));
    }
    for (const f of compareContracts(releaseSnapshot, today.snapshot)) {
      findings.push(fromCompat(f, release.version));
    }
    const golden = await checkGolden(release, releaseSnapshot, today.snapshot);
    findings.push(...golden.findings);
    goldenPayloads += golden.payloads;
  }
  return {
    findings: merge(findings, versions),
    releases: versions,
    goldenPayloads,
    durationMs: performance.now() - started,
  };
}

function describeConsumers(consumers: readonly AffectedConsumer[]): string {
  return consumers.length === 0
    ? "none declared"
    : consumers.map((c) => `${c.application} (${c.subscription})`).join(", ");
}

/**
 * A finding as text, like codegen's: `file:line:column: rule: message`,
 * then the releases it breaks against, the consumers and the fix.
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
  if (finding.source !== "buf lint") {
    lines.push(`    consumers: ${describeConsumers(finding.consumers)}`);
  }
  lines.push(`    fix: ${finding.fix}`);
  return lines.join("\n");
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
    consumers: finding.consumers,
    fix: finding.fix,
  };
}

/** The one-line summary printed after the findings. */
export function summarizeCheck(report: CheckReport): string {
  const against =
    report.releases.length === 0
      ? "no release yet (record one with `protoevents release`)"
      : `release${report.releases.length === 1 ? "" : "s"} ${report.releases.join(", ")}`;
  const seconds = (report.durationMs / 1000).toFixed(1);
  if (report.findings.length === 0) {
    return `check: compatible with ${against}: buf lint, buf breaking, event rules, ${report.goldenPayloads} golden payloads (${seconds} s)`;
  }
  const n = report.findings.length;
  return `check: ${n} finding${n === 1 ? "" : "s"} against ${against} (${seconds} s)`;
}
