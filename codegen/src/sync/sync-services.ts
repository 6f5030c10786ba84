/**
 * `protoevents sync`: keeps the hand-written service implementations in
 * step with the contracts. When an application gains a consumer rpc, the
 * object literal that implements its generated `…Handlers` interface gets a
 * typed stub that throws a clear not-implemented error; handlers whose rpc
 * is gone are reported, never deleted.
 *
 * A sync is a plan and its application: {@link planSync} reads the sources
 * (syntactically, with ts-morph in memory) and decides every edit as a text
 * insertion at a position of the original file, so every other byte stays
 * as the user wrote it; {@link applySyncPlan} makes the edits and saves.
 * A second run finds nothing to add.
 */

import type { ContractModel } from "../model.js";
import { applySyncPlan } from "./apply.js";
import { planSync } from "./plan.js";
import { RUNTIME_PACKAGE, readServiceSources } from "./source.js";

/** One consumer rpc an implementation must handle. */
export interface HandlerRpc {
  /** The handler method, e.g. `chargeOrder`. */
  readonly method: string;
  /** The rpc, e.g. `ChargeOrder`. */
  readonly rpc: string;
  readonly subscription: string;
  /** Full name of the event consumed. */
  readonly event: string;
  /** Its dead-letter topic; undefined when dead-lettering is off. */
  readonly deadLetterTopic: string | undefined;
}

/** The generated handlers interface of one application service and its rpcs. */
export interface HandlerSpec {
  /** e.g. `PaymentServiceHandlers`. */
  readonly interfaceName: string;
  /** Short name of the service, e.g. `PaymentService`. */
  readonly serviceName: string;
  readonly application: string;
  readonly rpcs: readonly HandlerRpc[];
}

/** A stub sync added (or would add, on a dry run). */
export interface StubAdded {
  readonly file: string;
  /** Where the stub starts in the file as sync wrote it (would write it, on a dry run). */
  readonly line: number;
  readonly column: number;
  readonly interfaceName: string;
  readonly rpc: HandlerRpc;
}

/** Something sync reports without changing it. */
export interface SyncNote {
  readonly kind: "handler-without-rpc" | "no-implementation" | "not-edited";
  /** `file:line:column` in the file as sync left it, when it is about a place in the code. */
  readonly at?: string;
  readonly message: string;
}

/** What a sync did. */
export interface SyncReport {
  readonly added: readonly StubAdded[];
  readonly notes: readonly SyncNote[];
  /** Files written (none on a dry run). */
  readonly filesChanged: readonly string[];
  /** Object literals found implementing a handlers interface. */
  readonly implementations: number;
}

/** Options of {@link syncServices}. */
export interface SyncOptions {
  /** The directory (or directories) of the service implementations, e.g. `services`. */
  readonly servicesDir: string | readonly string[];
  /** Directories under those never searched, e.g. the generated code. */
  readonly exclude?: readonly string[];
  /** The handlers interfaces, from {@link handlerSpecs}. */
  readonly specs: readonly HandlerSpec[];
  /**
   * Where `Code` and `ProtoeventsError` come from when a file imports
   * nothing from the runtime yet: a package name, or an absolute path of the
   * runtime's `index.js` (made relative to each file).
   * @default "@protoevents/runtime"
   */
  readonly runtimeModule?: string;
  /** Find and report, but write nothing. */
  readonly dryRun?: boolean;
  /** Paths in the report are relative to this directory. @default process.cwd() */
  readonly cwd?: string;
}

/** The handlers interface of every application that has consumer rpcs, as the contract model names them. */
export function handlerSpecs(model: ContractModel): HandlerSpec[] {
  return model.applications
    .filter((app) => app.subscriptions.length > 0)
    .map((app) => ({
      interfaceName: app.handlersInterface,
      serviceName: app.service.name,
      application: app.name,
      rpcs: app.subscriptions.map((s) => ({
        method: s.handlerMethod,
        rpc: s.method.name,
        subscription: s.name,
        event: s.event.desc.typeName,
        deadLetterTopic: s.deadLetterIds?.topic,
      })),
    }));
}

/**
 * Add a stub for every consumer rpc an implementation lacks, and report
 * handlers whose rpc is gone and interfaces nobody implements: the
 * {@link planSync plan} of the sources on disk, {@link applySyncPlan applied}
 * (to an in-memory copy only, on a dry run).
 */
export async function syncServices(options: SyncOptions): Promise<SyncReport> {
  const cwd = options.cwd ?? process.cwd();
  const dirs =
    typeof options.servicesDir === "string" ? [options.servicesDir] : options.servicesDir;
  const plan = planSync({
    sources: await readServiceSources(dirs, options.exclude ?? []),
    specs: options.specs,
    runtimeModule: options.runtimeModule ?? RUNTIME_PACKAGE,
    servicesDirs: dirs,
    cwd,
  });
  return applySyncPlan(plan, { write: options.dryRun !== true });
}

/** What a sync did, as lines for the terminal. */
export function formatSyncReport(report: SyncReport, dryRun = false): string {
  const lines: string[] = [];
  for (const a of report.added) {
    lines.push(
      `${a.file}:${a.line}:${a.column}: ${dryRun ? "would add" : "added"} stub ${a.rpc.method} to ${a.interfaceName} for rpc ${a.rpc.rpc} (subscription ${a.rpc.subscription}): implement it`,
    );
  }
  for (const n of report.notes) {
    lines.push(`${n.at === undefined ? "" : `${n.at}: `}${n.kind}: ${n.message}`);
  }
  const stubs = report.added.length;
  lines.push(
    stubs === 0
      ? `sync: ${report.implementations} implementation${report.implementations === 1 ? "" : "s"} up to date with the contracts`
      : `sync: ${dryRun ? "would add" : "added"} ${stubs} stub${stubs === 1 ? "" : "s"}${dryRun ? "" : ` in ${report.filesChanged.join(", ")}`}`,
  );
  return lines.join("\n");
}
