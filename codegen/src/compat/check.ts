/**
 * The compatibility gate behind `protoevents check`: buf lint, buf breaking
 * against every release, the event-level rules against every release, and
 * golden payloads both ways (`golden-check.ts`). Every change is found with
 * the deploy order it breaks; the events' compatibility modes (`modes.ts`)
 * decide which are refused. Findings say where, which rule, which releases
 * they break against, which consumers and producers are affected, and how to
 * fix them; `report.ts` prints them.
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
import { formatLocation, type SourceLocation } from "../location.js";
import { COMPATIBILITY_MODES, type CompatibilityMode } from "../options.js";
import { listReleases, ReleaseFile } from "../release/releases.js";
import {
  type AffectedConsumer,
  type CompatFinding,
  compareContracts,
  type Direction,
} from "./compare-contracts.js";
import {
  type ContractSnapshot,
  consumersReaching,
  eventsReaching,
  producersAcross,
  snapshotContracts,
} from "./contract-snapshot.js";
import { checkGolden, coveredKey } from "./golden-check.js";
import { readImage } from "./image.js";
import { modeRefuses, refused } from "./modes.js";

/** Who reported a finding. */
export type FindingSource = "buf lint" | "buf breaking" | "protoevents";

export { GoldenRule } from "./golden-check.js";

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
  /** Applications that publish the events concerned (in a release or today). */
  readonly producers: readonly string[];
  /**
   * The deploy order the change breaks (event-level rules and golden
   * payloads), which the events' compatibility modes decide on; undefined
   * for findings every mode refuses (buf, subscriptions).
   */
  readonly direction?: Direction;
  /** Full names of the events concerned. */
  readonly events: readonly string[];
  /** For field rules: the field's full name. */
  readonly field?: string;
}

/** An event of today's contracts and its compatibility mode. */
export interface EventMode {
  readonly event: string;
  readonly mode: CompatibilityMode;
  /** Where the mode comes from: the event's option, its package's defaults, or protoevents' default. */
  readonly from: "event" | "package" | "default";
}

/** What `checkContracts` did and found. */
export interface CheckReport {
  /** What the events' modes refuse (and everything without a direction): the gate fails on any. */
  readonly findings: readonly GateFinding[];
  /** Changes the events' modes allow, each needing the deploy order its direction names. */
  readonly allowed: readonly GateFinding[];
  /** The releases checked against, oldest first. */
  readonly releases: readonly string[];
  /** Today's events and their modes. */
  readonly modes: readonly EventMode[];
  /** For each mode, how many findings it would refuse if every event were in it. */
  readonly verdicts: ReadonlyArray<{ readonly mode: CompatibilityMode; readonly refused: number }>;
  /** Golden payloads and samples decoded, both directions. */
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
    'undo the change; for an intentional break, add a new versioned event and publish both during migration (protoevents docs/compatibility.md, "Making an intentional breaking change")'
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
  const events = declaration === undefined ? [] : eventsReaching(snapshots, declaration.typeName);
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
    ...(source === "buf breaking" && events.length > 0
      ? // A wire break inside events' payloads: their modes decide how far back it matters.
        { direction: "both" as const, events, producers: producersAcross(snapshots, events) }
      : { events: [], producers: [] }),
  };
}

function fromCompat(finding: CompatFinding, release: string): GateFinding {
  return { ...finding, source: "protoevents", releases: [release] };
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

/** A finding against one release, and whether that release is the newest. */
interface Against {
  readonly finding: GateFinding;
  readonly newest: boolean;
}

/**
 * Run the gate on the contracts in `options.dir` against every release in
 * `releases/`. Every change is found; the events' compatibility modes decide
 * which are refused (`findings`: the gate fails) and which are allowed with
 * a deploy order (`allowed`).
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
      allowed: [],
      releases: versions,
      modes: [],
      verdicts: [],
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

  const found: Against[] = lint.map((f) => ({
    finding: bufFinding(f, "buf lint", undefined, today, undefined),
    newest: true,
  }));
  const releaseModes = new Map<string, CompatibilityMode>();
  let goldenPayloads = 0;
  for (const [i, release] of releases.entries()) {
    const newest = i === releases.length - 1;
    const bytes = releaseImages[i] ?? new Uint8Array();
    const releaseFiles = readImage(
      bytes,
      `release ${release.version} (${join(release.dir, ReleaseFile.image)})`,
    ).files;
    const releaseSnapshot = snapshotContracts(releaseFiles, prefix);
    for (const event of releaseSnapshot.events.values()) {
      releaseModes.set(event.name, event.compatibility);
    }
    for (const f of breaking[i] ?? []) {
      found.push({
        finding: bufFinding(f, "buf breaking", release.version, today, releaseSnapshot),
        newest,
      });
    }
    const covered = new Set<string>();
    for (const f of compareContracts(releaseSnapshot, today.snapshot)) {
      found.push({ finding: fromCompat(f, release.version), newest });
      if (f.field !== undefined && f.direction !== undefined) {
        covered.add(coveredKey(f.direction, f.field));
      }
    }
    const golden = await checkGolden(release, releaseSnapshot, today.snapshot, covered);
    for (const f of golden.findings) {
      found.push({ finding: f, newest });
    }
    goldenPayloads += golden.payloads;
  }
  // An event gone today keeps the mode of the newest release that declared it.
  const modeOf = (event: string) =>
    today.snapshot.events.get(event)?.compatibility ?? releaseModes.get(event);
  const decidable = (a: Against) => ({ ...a.finding, newest: a.newest });
  const refusedFindings = found.filter((a) => refused(decidable(a), modeOf));
  const allowedFindings = found.filter((a) => !refused(decidable(a), modeOf));
  return {
    findings: merge(
      refusedFindings.map((a) => a.finding),
      versions,
    ),
    allowed: merge(
      allowedFindings.map((a) => a.finding),
      versions,
    ),
    releases: versions,
    modes: [...today.snapshot.events.values()]
      .map((e) => ({ event: e.name, mode: e.compatibility, from: e.compatibilityFrom }))
      .sort((a, b) => (a.event < b.event ? -1 : 1)),
    verdicts: COMPATIBILITY_MODES.map((mode) => ({
      mode,
      refused: merge(
        found.filter((a) => modeRefuses(mode, decidable(a))).map((a) => a.finding),
        versions,
      ).length,
    })),
    goldenPayloads,
    durationMs: performance.now() - started,
  };
}
