/**
 * The chaos run's report: what was injected, what the system did about it,
 * and every invariant's verdict — printed, and written as JSON on request.
 */
import type { InvariantResult } from "./invariants.js";
import type { ChaosOptions } from "./options.js";
import type { PoisonKind, ServiceName } from "./schedule.js";

/** How the claiming transactions of one service ended (the fault hook's counts). */
export interface DeliveryCounts {
  /** Handled once: claim, handler and outbox committed. */
  handled: number;
  /** Absorbed by the inbox: the event was already handled. */
  duplicate: number;
  /** Failed on purpose (injected), rolled back and nacked. */
  fault: number;
  /** Rolled back for another reason (e.g. the store was unreachable) and nacked. */
  failed: number;
}

/** One fault of the timeline as it happened. */
export interface TimelineRecord {
  readonly kind: string;
  /** What it hit: a service, a topic, PostgreSQL. */
  readonly target: string;
  /** Planned and actual start, ms after the first order. */
  readonly plannedAtMs: number;
  readonly atMs: number;
  /** For outages: planned down time, and how long until it was back (restart included). */
  readonly downMs?: number;
  readonly backAfterMs?: number;
  readonly detail?: string;
}

/** Everything a chaos run reports. */
export interface ChaosReport {
  readonly seed: number;
  readonly store: ChaosOptions["store"];
  readonly command: string;
  readonly options: Omit<ChaosOptions, "reportFile" | "keep" | "postgresUrl">;
  readonly startedAt: string;
  readonly passed: boolean;
  readonly orders: {
    readonly planned: number;
    readonly placed: number;
    /** Orders the API refused for good (none expected). */
    readonly refused: number;
    /** PlaceOrder calls retried (service killed, store away); the request id kept them idempotent. */
    readonly apiRetries: number;
    readonly confirmed: number;
    readonly cancelled: number;
    readonly open: number;
  };
  readonly faults: {
    /** Deliveries failed on purpose by the services' fault hook. */
    readonly handlerFaults: number;
    /** Events republished at once with the same ce-id. */
    readonly duplicatesInjected: number;
    /** Events republished 1–5 s late (out of order) with the same ce-id. */
    readonly delayedInjected: number;
    /** Services SIGKILLed mid-stream (and restarted). */
    readonly kills: number;
    /** Graceful outages of the notification service. */
    readonly notificationOutages: number;
    readonly notificationDownMs: number;
    /** Times every PostgreSQL connection was cut (postgres mode). */
    readonly postgresOutages: number;
    readonly postgresDownMs: number;
    /** Poison messages by kind. */
    readonly poison: Readonly<Record<PoisonKind, number>>;
  };
  /** Per service: how its claiming transactions ended. */
  readonly deliveries: Readonly<Record<ServiceName, DeliveryCounts>>;
  /**
   * Events the emulator stranded on the dead streams of a SIGKILLed service
   * (never delivered to a live process), which the run re-sent to that one
   * subscription without the ordering key (see run-chaos.ts).
   */
  readonly strandedDeliveries: {
    /** Distinct (subscription, event) re-sent. */
    readonly resent: number;
    /** Re-send rounds, repeats included (each publishes RESEND_COPIES copies). */
    readonly resends: number;
    readonly bySubscription: Readonly<Record<string, number>>;
  };
  /** Deliveries the inboxes recognised and acked without running a handler again. */
  readonly duplicatesAbsorbed: number;
  /** Deliveries rolled back and nacked, so Pub/Sub redelivered them. */
  readonly redeliveries: number;
  /** Messages in the dead-letter subscriptions at the end. */
  readonly deadLetters: number;
  /** Service starts that failed and were retried (e.g. while PostgreSQL was away). */
  readonly failedStarts: number;
  readonly timings: {
    readonly startupMs: number;
    readonly placingMs: number;
    /** From the end of the schedule until every order, compensation, shipment and e-mail was done and every outbox empty. */
    readonly drainMs: number;
    readonly drained: boolean;
    readonly totalMs: number;
  };
  readonly timeline: readonly TimelineRecord[];
  readonly invariants: readonly InvariantResult[];
  /** Where stores, e-mails and logs were kept (on failure or --keep). */
  readonly runDir?: string;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** The report as the lines `npm run chaos` prints. */
export function formatReport(report: ChaosReport): string[] {
  const f = report.faults;
  const o = report.orders;
  const t = report.timings;
  const lines: string[] = [];
  lines.push(`chaos report — seed ${report.seed}, store ${report.store}`);
  lines.push(`  reproduce: ${report.command}`);
  lines.push(
    `  orders:      ${o.placed}/${o.planned} placed (${o.refused} refused, ${o.apiRetries} API retries), ${o.confirmed} confirmed, ${o.cancelled} cancelled, ${o.open} open`,
  );
  lines.push("  faults injected:");
  lines.push(`    handler failures (rolled back, nacked)  ${f.handlerFaults}`);
  lines.push(`    duplicates (same ce-id, at once)        ${f.duplicatesInjected}`);
  lines.push(`    late copies (same ce-id, out of order)  ${f.delayedInjected}`);
  lines.push(`    services SIGKILLed and restarted        ${f.kills}`);
  lines.push(
    `    notification down (SIGTERM)             ${f.notificationOutages}× for ${seconds(f.notificationDownMs)}`,
  );
  if (report.store === "postgres") {
    lines.push(
      `    PostgreSQL connections cut              ${f.postgresOutages}× for ${seconds(f.postgresDownMs)}`,
    );
  }
  lines.push(
    `    poison messages                         ${Object.entries(f.poison)
      .map(([kind, n]) => `${n} ${kind}`)
      .join(", ")}`,
  );
  lines.push(
    `  duplicates absorbed by inboxes: ${report.duplicatesAbsorbed}; redeliveries after a nack: ${report.redeliveries}; dead letters: ${report.deadLetters}; failed service starts retried: ${report.failedStarts}`,
  );
  const stranded = report.strandedDeliveries;
  lines.push(
    `  events the emulator stranded on a killed service's dead streams, re-sent: ${stranded.resent}${
      stranded.resent === 0
        ? ""
        : ` (${Object.entries(stranded.bySubscription)
            .map(([subscription, n]) => `${n} to ${subscription}`)
            .join(", ")}; ${stranded.resends} re-sends)`
    }`,
  );
  lines.push("  deliveries per service (handled / duplicate / injected fault / other failure):");
  for (const [service, d] of Object.entries(report.deliveries)) {
    lines.push(
      `    ${service.padEnd(13)} ${String(d.handled).padStart(6)} / ${String(d.duplicate).padStart(4)} / ${String(d.fault).padStart(4)} / ${String(d.failed).padStart(4)}`,
    );
  }
  lines.push("  timeline (ms after the first order):");
  for (const e of report.timeline) {
    const back = e.backAfterMs === undefined ? "" : `, back after ${e.backAfterMs} ms`;
    const detail = e.detail === undefined ? "" : ` (${e.detail})`;
    lines.push(`    ${String(e.atMs).padStart(7)}  ${e.kind} ${e.target}${detail}${back}`);
  }
  lines.push("  invariants:");
  for (const result of report.invariants) {
    const counts = Object.entries(result.counts)
      .map(([key, n]) => `${n} ${key}`)
      .join(", ");
    lines.push(
      `    ${result.passed ? "PASS" : "FAIL"}  ${result.name} — ${result.checked}${counts === "" ? "" : `: ${counts}`}`,
    );
    for (const violation of result.violations) {
      lines.push(`          ${violation}`);
    }
    if (result.violationCount > result.violations.length) {
      lines.push(`          … and ${result.violationCount - result.violations.length} more`);
    }
  }
  lines.push(
    `  time: startup ${seconds(t.startupMs)}, placing ${seconds(t.placingMs)}, drain ${seconds(t.drainMs)}${t.drained ? "" : " (did not drain)"}, total ${seconds(t.totalMs)}`,
  );
  if (report.runDir !== undefined) {
    lines.push(`  stores, e-mails and logs kept in ${report.runDir}`);
  }
  lines.push(report.passed ? "  result: every invariant held" : "  result: INVARIANTS VIOLATED");
  return lines;
}
