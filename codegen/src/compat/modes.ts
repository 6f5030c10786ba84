/**
 * Compatibility modes: which of the gate's findings a mode refuses, and
 * which it allows with a deploy order. A finding with a `direction` is about
 * events and is decided by their modes; one without (buf's wire rules,
 * subscriptions, lint) is refused in every mode.
 */
import { type CompatibilityMode, DEFAULT_COMPATIBILITY } from "../options.js";
import type { Direction } from "./compare-contracts.js";

/** What a mode needs to know of a finding. */
export interface Decidable {
  readonly direction?: Direction | undefined;
  /** The events concerned; any of them refusing refuses the finding. */
  readonly events: readonly string[];
  /** Whether the finding is against the newest release (non-transitive modes look no further). */
  readonly newest: boolean;
}

/** Whether a mode checks a direction: BACKWARD the backward one, FORWARD the forward one, FULL both. */
export function checksDirection(mode: CompatibilityMode, direction: Direction): boolean {
  if (direction === "both") {
    return true;
  }
  return (
    mode.startsWith("FULL") || mode.startsWith(direction === "backward" ? "BACKWARD" : "FORWARD")
  );
}

/** Whether a mode checks against every release (`_TRANSITIVE`) or the newest only. */
export function isTransitive(mode: CompatibilityMode): boolean {
  return mode.endsWith("_TRANSITIVE");
}

/** Whether one mode refuses a finding about an event in that mode. */
export function modeRefuses(mode: CompatibilityMode, finding: Decidable): boolean {
  if (finding.direction === undefined) {
    return true;
  }
  return checksDirection(mode, finding.direction) && (isTransitive(mode) || finding.newest);
}

/**
 * Whether the events' own modes refuse a finding: a finding without a
 * direction always; otherwise when the mode of any event concerned does.
 */
export function refused(
  finding: Decidable,
  modeOf: (event: string) => CompatibilityMode | undefined,
): boolean {
  if (finding.direction === undefined) {
    return true;
  }
  const events = finding.events.length === 0 ? [""] : finding.events;
  return events.some((event) => modeRefuses(modeOf(event) ?? DEFAULT_COMPATIBILITY, finding));
}

/** The deploy order a one-way change needs, or undefined for a change no order makes safe. */
export function rolloutOrder(direction: Direction | undefined): string | undefined {
  switch (direction) {
    case "forward":
      return "deploy consumers first, then producers";
    case "backward":
      return "deploy producers first, then consumers once the events published under the old contract have drained";
    default:
      return undefined;
  }
}

/** The mode that allows a one-way change: BACKWARD for a forward break, FORWARD for a backward one. */
export function modeAllowing(direction: Direction | undefined): CompatibilityMode | undefined {
  return direction === "forward" ? "BACKWARD" : direction === "backward" ? "FORWARD" : undefined;
}
