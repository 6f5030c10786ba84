/**
 * Which events the chaos run re-sends because the emulator stranded them.
 *
 * After a SIGKILL, the emulator (0.8.20) keeps handing deliveries of a
 * subscription with a retry policy or message ordering to the killed
 * process's dead streams, for good: they never reach the restarted consumer,
 * not after the ack deadline either (a `NoSuchMethodError` in its gRPC
 * server when a connection is reset; `test/chaos/emulator-kill.ts`
 * reproduces it; docs/proof.md, "Proof under faults"). Such an event is re-sent to
 * its one subscription — but only when no live process got hold of it: an
 * event a live consumer started to claim and never finished is ours to lose,
 * and the run must fail on it rather than paper over it.
 */
import type { FaultLogLine } from "../../services/lib/fault-injection.js";

/**
 * How long an unhandled event waits before it counts as stranded. Longer
 * than any redelivery after a nack takes here (backoff starts at 1–10 s),
 * and most of the longest ack deadline (60 s): an event merely held by the
 * killed process may still come back after that, and re-sending it a little
 * early only makes a duplicate the inbox absorbs.
 */
export const STRANDED_AFTER_MS = 45_000;

/**
 * A re-sent copy can be stranded too (the dead streams keep their share of
 * every delivery): one not handled this long after it was re-sent, and not
 * taken by a live process meanwhile, is re-sent again.
 */
export const RESEND_AGAIN_MS = 10_000;

/**
 * Copies per re-send. Each copy is stranded again with the dead streams'
 * share of the subscription's streams (a half after one kill, more after
 * several); three copies make a whole round stranded rare, and the inbox
 * absorbs the copies that do arrive.
 */
export const RESEND_COPIES = 3;

/** Deliveries the killed process may have held: published up to this long before the kill. */
export const LEASE_MS = 60_000;

/** When the event was last re-sent, if it was. */
export interface PriorResend {
  readonly lastAt: number;
}

/**
 * The cheap check first: an event of a subscription whose service was
 * SIGKILLed at `killedAt`, first seen at `firstSeenAt`, unhandled at `now`,
 * may be stranded — old enough, not seen long before the kill, not re-sent
 * a moment ago.
 */
export function mayBeStranded(
  now: number,
  firstSeenAt: number,
  killedAt: number,
  prior: PriorResend | undefined,
): boolean {
  return (
    firstSeenAt >= killedAt - LEASE_MS &&
    now - firstSeenAt >= STRANDED_AFTER_MS &&
    (prior === undefined || now - prior.lastAt >= RESEND_AGAIN_MS)
  );
}

/**
 * Whether an unhandled event that {@link mayBeStranded} is stranded, from
 * the last line the fault hook wrote for it: none (no process ever started
 * to claim it), or one that is old enough and either rolled back (`fault`,
 * `failed`: the consumer nacked, so Pub/Sub owed a redelivery that never
 * came) or was started by a process that is dead now. Never re-sent: a
 * claim a live process started and has not finished (that process's to
 * finish), and a claim that committed (`handled`, `duplicate`) — the inbox
 * must hold it, and the run fails if it does not.
 */
export function isStranded(input: {
  readonly now: number;
  readonly prior: PriorResend | undefined;
  readonly lastClaim: FaultLogLine | undefined;
  readonly deadPids: ReadonlySet<number>;
}): boolean {
  const { now, prior, lastClaim, deadPids } = input;
  if (lastClaim === undefined) {
    return true;
  }
  if (lastClaim.outcome === "handled" || lastClaim.outcome === "duplicate") {
    return false;
  }
  if (lastClaim.outcome === "claiming" && !deadPids.has(lastClaim.pid)) {
    return false;
  }
  return now - lastClaim.at >= (prior === undefined ? STRANDED_AFTER_MS : RESEND_AGAIN_MS);
}
