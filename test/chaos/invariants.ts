/**
 * What must hold after a chaos run, checked from the services' stores, the
 * events seen on the topics and the dead-letter subscriptions — never from
 * logs. Pure: the run reads the sources, these functions judge them.
 */

import { PaymentDeclineCode } from "../../generated/checkout/v1/payment_events_pb.js";
import { orderScopedId } from "../../services/lib/order-scoped-id.js";
import { mailFileName, type NoticeKind } from "../../services/notification/emails.js";
import { decideCharge } from "../../services/payment/gateway.js";
import {
  type DemoOrderKind,
  LIMITED_QUANTITY,
  LIMITED_SKU,
} from "../../services/supervisor/demo-orders.js";
import type { ObservedEvents } from "./monitor.js";
import type { PoisonKind } from "./schedule.js";
import type { OrderLogRow, StoreSnapshot } from "./stores.js";

/** An order the run placed, as the order API accepted it. */
export interface PlacedOrder {
  /** Its number in the run, from 1 (the demo mix's n). */
  readonly n: number;
  readonly orderId: string;
  readonly kind: DemoOrderKind;
  readonly paymentToken: string;
  readonly totalMinor: bigint;
  readonly currency: string;
  readonly lines: ReadonlyArray<{ readonly productId: string; readonly quantity: number }>;
}

/** A poison message the run published. */
export interface PoisonRecord {
  readonly id: string;
  readonly kind: PoisonKind;
  readonly topic: string;
  /** Every subscription of the topic: each must dead-letter it. */
  readonly subscriptions: readonly string[];
  /** The `protoevents-dead-letter-reason` it must carry. */
  readonly reason: string;
}

/** A message read from a dead-letter subscription (and left there). */
export interface DeadLetterRecord {
  /** The subscription that dead-lettered it. */
  readonly subscription: string;
  readonly messageId: string;
  readonly eventId: string | undefined;
  readonly reason: string;
}

/** What the run knows independently of what the services did. */
export interface Expectations {
  readonly orders: readonly PlacedOrder[];
  /** Units per product the inventory was seeded with. */
  readonly initialStock: ReadonlyMap<string, number>;
  /** The payment gateway's per-order limit. */
  readonly limitMinor: bigint;
  readonly poison: readonly PoisonRecord[];
  /** Topic → the subscriptions reading it: each must handle every event of the topic. */
  readonly subscriptions: ReadonlyMap<string, readonly string[]>;
}

/** Per subscription, the events seen on its topic that its inbox has not claimed. */
export function unclaimed(
  expectations: Pick<Expectations, "subscriptions">,
  snapshot: Pick<StoreSnapshot, "claims">,
  observed: Pick<ObservedEvents, "byTopic">,
): Map<string, string[]> {
  const missing = new Map<string, string[]>();
  for (const [topic, events] of observed.byTopic) {
    for (const subscription of expectations.subscriptions.get(topic) ?? []) {
      const claims = snapshot.claims.get(subscription);
      const ids = [...events.keys()].filter((id) => claims?.has(id) !== true);
      if (ids.length > 0) {
        missing.set(subscription, ids);
      }
    }
  }
  return missing;
}

/** One invariant's verdict. */
export interface InvariantResult {
  readonly name: string;
  readonly passed: boolean;
  /** What was checked, e.g. `1000 orders`. */
  readonly checked: string;
  /** Figures worth showing, e.g. confirmed and cancelled counts. */
  readonly counts: Readonly<Record<string, number>>;
  /** The first violations, readable. */
  readonly violations: readonly string[];
  /** All violations, also those not listed. */
  readonly violationCount: number;
}

/** Violations listed per invariant; the rest are only counted. */
const MAX_LISTED = 10;

class Verdict {
  readonly violations: string[] = [];
  readonly counts: Record<string, number> = {};
  private total = 0;

  constructor(
    private readonly name: string,
    private readonly checked: string,
  ) {}

  fail(message: string): void {
    this.total++;
    if (this.violations.length < MAX_LISTED) {
      this.violations.push(message);
    }
  }

  count(key: string, by = 1): void {
    this.counts[key] = (this.counts[key] ?? 0) + by;
  }

  result(): InvariantResult {
    return {
      name: this.name,
      passed: this.total === 0,
      checked: this.checked,
      counts: this.counts,
      violations: this.violations,
      violationCount: this.total,
    };
  }
}

/** How an order must end and why. */
export interface ExpectedFate {
  readonly status: "confirmed" | "cancelled";
  /** For a cancellation: `PAYMENT_DECLINED` or `OUT_OF_STOCK`. */
  readonly reason?: "PAYMENT_DECLINED" | "OUT_OF_STOCK";
  /** The gateway's decision: undefined when approved, else the decline code's name. */
  readonly declineCode?: string;
}

/**
 * How every order must end under the gateway and stock rules. The gateway is
 * deterministic (card token, total against the limit). Regular products are
 * stocked so they cannot run out, so only `sku-limited` can: its stock
 * covers floor(stock / 2) limited orders, whichever the inventory saw first —
 * so a limited order's fate is only known for all of them together
 * (`limited` below), not one by one.
 */
export function expectedFates(expectations: Expectations): {
  readonly fates: ReadonlyMap<string, ExpectedFate | "limited">;
  readonly limitedWinners: number;
} {
  const fates = new Map<string, ExpectedFate | "limited">();
  let limited = 0;
  for (const order of expectations.orders) {
    const decision = decideCharge(
      { orderId: order.orderId, paymentToken: order.paymentToken, amountMinor: order.totalMinor },
      expectations.limitMinor,
    );
    if (decision.kind === "declined") {
      fates.set(order.orderId, {
        status: "cancelled",
        reason: "PAYMENT_DECLINED",
        declineCode: PaymentDeclineCode[decision.code],
      });
    } else if (order.lines.some((l) => l.productId === LIMITED_SKU)) {
      limited++;
      fates.set(order.orderId, "limited");
    } else {
      fates.set(order.orderId, { status: "confirmed" });
    }
  }
  const stock = expectations.initialStock.get(LIMITED_SKU) ?? 0;
  return { fates, limitedWinners: Math.min(limited, Math.floor(stock / LIMITED_QUANTITY)) };
}

/** The order's decision in its log: confirmed, cancelled (with reason), or none yet. */
function decisionOf(log: readonly OrderLogRow[]): {
  confirmed: number;
  cancelled: number;
  reason: string | undefined;
} {
  let confirmed = 0;
  let cancelled = 0;
  let reason: string | undefined;
  for (const entry of log) {
    if (entry.type === "OrderConfirmed") {
      confirmed++;
    } else if (entry.type === "OrderCancelled") {
      cancelled++;
      const parsed = JSON.parse(entry.payload) as { reason?: unknown };
      reason = String(parsed.reason ?? "").replace(/^CANCELLATION_REASON_/, "");
    }
  }
  return { confirmed, cancelled, reason };
}

/** Distinct `ce-id`s the monitor saw for an order and event type. */
function seen(observed: ObservedEvents, orderId: string, type: string): number {
  return observed.byOrder.get(orderId)?.get(type)?.size ?? 0;
}

/** Entries of a type in the order's log. */
function logged(snapshot: StoreSnapshot, orderId: string, type: string): number {
  return (snapshot.orders.get(orderId) ?? []).filter((e) => e.type === type).length;
}

/** The status an order reached in the order service's log, or undefined while it is open. */
export function statusOf(
  snapshot: StoreSnapshot,
  orderId: string,
): "confirmed" | "cancelled" | undefined {
  const decision = decisionOf(snapshot.orders.get(orderId) ?? []);
  return decision.confirmed > 0 ? "confirmed" : decision.cancelled > 0 ? "cancelled" : undefined;
}

/** The notices an order gets: confirmation and shipping, or cancellation. */
export function expectedNotices(status: "confirmed" | "cancelled"): NoticeKind[] {
  return status === "confirmed" ? ["confirmation", "shipping"] : ["cancellation"];
}

const NOTICE_KINDS: readonly NoticeKind[] = ["confirmation", "cancellation", "shipping"];

/**
 * Whether the system has settled: every order decided, every compensation,
 * shipment and e-mail done, every outbox empty, no copy pending. Returns
 * what is still awaited (empty when drained).
 */
export function awaited(
  expectations: Expectations,
  snapshot: StoreSnapshot,
  observed: ObservedEvents,
): string[] {
  const counts = new Map<string, number>();
  const wait = (what: string) => counts.set(what, (counts.get(what) ?? 0) + 1);
  for (const { orderId } of expectations.orders) {
    const status = statusOf(snapshot, orderId);
    if (status === undefined) {
      wait("orders to be confirmed or cancelled");
      continue;
    }
    const payment = snapshot.payments.get(orderId);
    const reservation = snapshot.reservations.get(orderId);
    if (payment === undefined) {
      wait("payments");
    } else if (status === "cancelled" && payment.status === "charged") {
      wait("refunds");
    } else if (
      payment.status === "refunded" &&
      logged(snapshot, orderId, "PaymentRefunded") === 0
    ) {
      wait("refunds recorded by the saga");
    }
    if (reservation === undefined) {
      wait("reservations");
    } else if (status === "cancelled" && reservation.status === "reserved") {
      wait("releases");
    } else if (
      reservation.status === "released" &&
      logged(snapshot, orderId, "InventoryReleased") === 0
    ) {
      wait("releases recorded by the saga");
    }
    if (status === "confirmed" && !snapshot.shipments.has(orderId)) {
      wait("shipments");
    }
    for (const kind of expectedNotices(status)) {
      if (snapshot.notifications.get(orderId)?.get(kind)?.sent !== true) {
        wait("e-mails");
      } else if (seen(observed, orderId, `NotificationSent/${kind}`) === 0) {
        wait("NotificationSent events");
      }
    }
  }
  for (const [service, pending] of snapshot.pendingOutbox) {
    if (pending > 0) {
      counts.set(`outbox rows of ${service}`, pending);
    }
  }
  for (const [subscription, ids] of unclaimed(expectations, snapshot, observed)) {
    counts.set(`deliveries to ${subscription}`, ids.length);
  }
  return [...counts].map(([what, n]) => `${n} ${what}`);
}

/** What the invariants are checked against. */
export interface Evidence {
  readonly expectations: Expectations;
  /** The services' stores after the run settled. */
  readonly snapshot: StoreSnapshot;
  /** The events the run's own subscriptions saw on the topics. */
  readonly observed: ObservedEvents;
  /** Everything in the dead-letter subscriptions. */
  readonly deadLetters: readonly DeadLetterRecord[];
  /** The names of the `.eml` files notification wrote. */
  readonly mailFiles: ReadonlySet<string>;
  /** Services that exited without being killed or stopped, readable. */
  readonly unexpectedExits: readonly string[];
  /** Errors of the run's own subscriptions and copies: its view of the topics may be incomplete. */
  readonly monitorErrors: readonly string[];
  /** Events the emulator stranded after a SIGKILL that the run re-sent (see run-chaos.ts). */
  readonly resentDeliveries: number;
}

/**
 * Judge the run. Every invariant is checked for every order; each result
 * says what it checked, its figures and its first violations.
 */
export function checkInvariants(evidence: Evidence): InvariantResult[] {
  const { expectations, snapshot, observed, deadLetters, mailFiles } = evidence;
  const { fates, limitedWinners } = expectedFates(expectations);
  const placed = new Set(expectations.orders.map((o) => o.orderId));
  const results: InvariantResult[] = [];
  const n = expectations.orders.length;

  // 1. Every order terminal, and as the gateway and stock rules say.
  {
    const v = new Verdict(
      "every order confirmed or cancelled, as the gateway and stock rules say",
      `${n} orders`,
    );
    let limitedConfirmed = 0;
    let expectedConfirmed = limitedWinners;
    for (const order of expectations.orders) {
      const fate = fates.get(order.orderId);
      if (fate !== "limited" && fate?.status === "confirmed") {
        expectedConfirmed++;
      }
      const log = snapshot.orders.get(order.orderId);
      if (log === undefined || log[0]?.type !== "OrderPlaced") {
        v.fail(`order ${order.n} (${order.orderId}) has no OrderPlaced in the order service's log`);
        continue;
      }
      const decision = decisionOf(log);
      if (decision.confirmed + decision.cancelled === 0) {
        v.fail(`order ${order.n} (${order.orderId}, ${order.kind}) is still placed`);
        continue;
      }
      if (decision.confirmed + decision.cancelled > 1) {
        v.fail(
          `order ${order.n} (${order.orderId}) was decided ${decision.confirmed + decision.cancelled} times (${decision.confirmed} confirmed, ${decision.cancelled} cancelled)`,
        );
      }
      const status = decision.confirmed > 0 ? "confirmed" : "cancelled";
      v.count(status);
      if (fate === "limited") {
        if (status === "confirmed") {
          limitedConfirmed++;
        } else if (decision.reason !== "OUT_OF_STOCK") {
          v.fail(
            `limited order ${order.n} (${order.orderId}) was cancelled for ${decision.reason}, not OUT_OF_STOCK`,
          );
        }
        continue;
      }
      if (fate === undefined) {
        continue;
      }
      if (status !== fate.status) {
        v.fail(
          `order ${order.n} (${order.orderId}, ${order.kind}) was ${status}, the rules say ${fate.status}`,
        );
      } else if (fate.reason !== undefined && decision.reason !== fate.reason) {
        v.fail(
          `order ${order.n} (${order.orderId}) was cancelled for ${decision.reason}, the rules say ${fate.reason}`,
        );
      }
    }
    if (limitedConfirmed !== limitedWinners) {
      v.fail(
        `${limitedConfirmed} orders of ${LIMITED_SKU} were confirmed; its stock covers exactly ${limitedWinners}`,
      );
    }
    for (const orderId of snapshot.orders.keys()) {
      if (!placed.has(orderId)) {
        v.fail(`the order service has an order the run never placed: ${orderId}`);
      }
    }
    v.count("expected confirmed", expectedConfirmed);
    v.count("expected cancelled", n - expectedConfirmed);
    results.push(v.result());
  }

  // 2. Exactly one charge per paid order, one refund per refunded one, as the gateway decides.
  {
    const v = new Verdict(
      "exactly one charge per paid order and one refund per refunded order",
      `${n} orders`,
    );
    for (const order of expectations.orders) {
      const id = order.orderId;
      const fate = fates.get(id);
      const status = statusOf(snapshot, id);
      const payment = snapshot.payments.get(id);
      const processed = seen(observed, id, "PaymentProcessed");
      const refunded = seen(observed, id, "PaymentRefunded");
      const failed = seen(observed, id, "PaymentFailed");
      const label = `order ${order.n} (${id})`;
      if (payment === undefined) {
        v.fail(`${label} has no payment row`);
        continue;
      }
      const declined = fate !== "limited" && fate?.declineCode !== undefined;
      if (declined) {
        v.count("declined");
        if (payment.status !== "declined" || payment.declineCode !== fate.declineCode) {
          v.fail(
            `${label}: payment ${payment.status}/${payment.declineCode}, the gateway declines it with ${fate.declineCode}`,
          );
        }
        if (processed !== 0 || refunded !== 0 || failed !== 1) {
          v.fail(
            `${label}: ${processed} PaymentProcessed, ${refunded} PaymentRefunded, ${failed} PaymentFailed events; expected 0, 0, 1`,
          );
        }
        continue;
      }
      switch (payment.status) {
        case "charged":
          v.count("paid");
          if (status !== "confirmed") {
            v.fail(`${label} is ${status ?? "open"} but its payment is charged and not refunded`);
          }
          break;
        case "refunded":
          v.count("paid");
          v.count("refunded");
          if (status !== "cancelled") {
            v.fail(`${label} was refunded but is ${status ?? "open"}`);
          }
          if (payment.refundId !== orderScopedId("ref", id)) {
            v.fail(`${label}: refund id ${payment.refundId}`);
          }
          break;
        case "cancelled":
          // The cancellation overtook the OrderPlaced: never charged.
          v.count("cancelled before charged");
          if (status !== "cancelled") {
            v.fail(`${label} has a cancellation tombstone in payments but is ${status ?? "open"}`);
          }
          break;
        default:
          v.fail(`${label}: payment ${payment.status}, but the gateway approves it`);
      }
      const charged = payment.status === "charged" || payment.status === "refunded";
      if (charged) {
        if (payment.paymentId !== orderScopedId("pay", id)) {
          v.fail(`${label}: payment id ${payment.paymentId}`);
        }
        if (
          payment.amountMinor === null ||
          BigInt(payment.amountMinor) !== order.totalMinor ||
          payment.currencyCode !== order.currency
        ) {
          v.fail(
            `${label}: charged ${payment.amountMinor} ${payment.currencyCode}, the order's total is ${order.totalMinor} ${order.currency}`,
          );
        }
      }
      const wantProcessed = charged ? 1 : 0;
      const wantRefunded = payment.status === "refunded" ? 1 : 0;
      if (
        processed !== wantProcessed ||
        logged(snapshot, id, "PaymentProcessed") !== wantProcessed
      ) {
        v.fail(
          `${label}: ${processed} PaymentProcessed events (${logged(snapshot, id, "PaymentProcessed")} in its log), expected ${wantProcessed}`,
        );
      }
      if (refunded !== wantRefunded || logged(snapshot, id, "PaymentRefunded") !== wantRefunded) {
        v.fail(
          `${label}: ${refunded} PaymentRefunded events (${logged(snapshot, id, "PaymentRefunded")} in its log), expected ${wantRefunded}`,
        );
      }
      if (failed !== 0) {
        v.fail(`${label}: ${failed} PaymentFailed events, but the gateway approves it`);
      }
    }
    for (const orderId of snapshot.payments.keys()) {
      if (!placed.has(orderId)) {
        v.fail(`payments has a row for an order the run never placed: ${orderId}`);
      }
    }
    results.push(v.result());
  }

  // 3. Stock never negative, and back to its level for every cancelled order.
  {
    const v = new Verdict(
      "stock never negative; stock + held = initial (cancelled orders hold nothing)",
      `${expectations.initialStock.size} products, ${n} reservations`,
    );
    const held = new Map<string, number>();
    for (const order of expectations.orders) {
      const id = order.orderId;
      const status = statusOf(snapshot, id);
      const reservation = snapshot.reservations.get(id);
      const label = `order ${order.n} (${id})`;
      if (reservation === undefined) {
        v.fail(`${label} has no reservation row`);
        continue;
      }
      v.count(reservation.status);
      if (reservation.status === "reserved") {
        for (const line of reservation.items ?? []) {
          held.set(line.productId, (held.get(line.productId) ?? 0) + line.quantity);
        }
      }
      if (status === "confirmed" && reservation.status !== "reserved") {
        v.fail(`${label} is confirmed but its reservation is ${reservation.status}`);
      }
      if (status === "cancelled" && reservation.status === "reserved") {
        v.fail(`${label} is cancelled but still holds stock`);
      }
      const reservedEvents = seen(observed, id, "InventoryReserved");
      const releasedEvents = seen(observed, id, "InventoryReleased");
      const wantReserved =
        reservation.status === "reserved" || reservation.status === "released" ? 1 : 0;
      const wantReleased = reservation.status === "released" ? 1 : 0;
      if (reservedEvents !== wantReserved || releasedEvents !== wantReleased) {
        v.fail(
          `${label} (${reservation.status}): ${reservedEvents} InventoryReserved and ${releasedEvents} InventoryReleased events, expected ${wantReserved} and ${wantReleased}`,
        );
      }
      if (
        reservation.status !== "cancelled" &&
        JSON.stringify(reservation.items) !==
          JSON.stringify(order.lines.map((l) => ({ productId: l.productId, quantity: l.quantity })))
      ) {
        v.fail(
          `${label}: the reservation's items ${JSON.stringify(reservation.items)} are not the order's lines`,
        );
      }
    }
    for (const [productId, initial] of expectations.initialStock) {
      const available = snapshot.stock.get(productId);
      if (available === undefined) {
        v.fail(`${productId} has no stock row`);
        continue;
      }
      if (available < 0) {
        v.fail(`${productId}: ${available} available`);
      }
      const holding = held.get(productId) ?? 0;
      if (available + holding !== initial) {
        v.fail(
          `${productId}: ${available} available + ${holding} held = ${available + holding}, seeded with ${initial}`,
        );
      }
    }
    results.push(v.result());
  }

  // 4. Exactly one e-mail of each kind per order: its .eml file, its sent row, its NotificationSent.
  {
    const v = new Verdict(
      "exactly one e-mail of each kind per order (.eml file, sent row, NotificationSent)",
      `${n} orders × 3 kinds`,
    );
    for (const order of expectations.orders) {
      const id = order.orderId;
      const status = statusOf(snapshot, id);
      if (status === undefined) {
        v.fail(`order ${order.n} (${id}) is still placed: its e-mails are unknown`);
        continue;
      }
      const want = new Set(expectedNotices(status));
      const rows = snapshot.notifications.get(id) ?? new Map<string, { sent: boolean }>();
      for (const kind of NOTICE_KINDS) {
        const expected = want.has(kind) ? 1 : 0;
        const row = rows.get(kind);
        const events = seen(observed, id, `NotificationSent/${kind}`);
        const file = mailFiles.has(mailFileName(id, kind)) ? 1 : 0;
        const stored = row?.sent === true ? 1 : 0;
        if (stored !== expected || events !== expected || file !== expected) {
          v.fail(
            `order ${order.n} (${id}, ${status}) ${kind}: ${stored} sent in notifications, ${events} NotificationSent, ${file} .eml file; expected ${expected}`,
          );
        } else if (expected === 1) {
          v.count(kind);
        }
      }
      for (const kind of rows.keys()) {
        if (!NOTICE_KINDS.includes(kind as NoticeKind)) {
          v.fail(`order ${order.n} (${id}) has a notice of unknown kind ${kind}`);
        }
      }
    }
    results.push(v.result());
  }

  // 5. One shipment per confirmed order, none for a cancelled one.
  {
    const v = new Verdict("one shipment per confirmed order, none otherwise", `${n} orders`);
    for (const order of expectations.orders) {
      const id = order.orderId;
      const want = statusOf(snapshot, id) === "confirmed" ? 1 : 0;
      const rows = snapshot.shipments.get(id) ?? 0;
      const events = seen(observed, id, "OrderReadyForShipping");
      if (rows !== want || events !== want) {
        v.fail(
          `order ${order.n} (${id}): ${rows} shipments, ${events} OrderReadyForShipping; expected ${want}`,
        );
      } else if (want === 1) {
        v.count("shipped");
      }
    }
    results.push(v.result());
  }

  // 6. Every poison message dead-lettered with its reason, and nothing else there.
  {
    const expectedLetters = expectations.poison.reduce((sum, p) => sum + p.subscriptions.length, 0);
    const v = new Verdict(
      "every poison message in the dead-letter topics with its reason, nothing else there",
      `${expectations.poison.length} poison messages, ${expectedLetters} expected dead letters`,
    );
    const poisonById = new Map(expectations.poison.map((p) => [p.id, p]));
    const found = new Map<string, number>();
    for (const letter of deadLetters) {
      const poison = letter.eventId === undefined ? undefined : poisonById.get(letter.eventId);
      if (poison === undefined) {
        v.fail(
          `${letter.subscription} dead-lettered ${letter.eventId ?? `message ${letter.messageId}`} (${letter.reason}), which is no poison message`,
        );
        continue;
      }
      if (!poison.subscriptions.includes(letter.subscription)) {
        v.fail(
          `${poison.id} is dead-lettered by ${letter.subscription}, which does not read ${poison.topic}`,
        );
        continue;
      }
      if (letter.reason !== poison.reason) {
        v.fail(
          `${poison.id} (${poison.kind}) in ${letter.subscription} has reason ${letter.reason}, expected ${poison.reason}`,
        );
      }
      const key = `${letter.subscription}\u0000${poison.id}`;
      found.set(key, (found.get(key) ?? 0) + 1);
    }
    for (const poison of expectations.poison) {
      for (const subscription of poison.subscriptions) {
        const copies = found.get(`${subscription}\u0000${poison.id}`) ?? 0;
        if (copies === 0) {
          v.fail(
            `${poison.id} (${poison.kind} on ${poison.topic}) is not in ${subscription}'s dead-letter subscription`,
          );
        } else {
          v.count(poison.reason);
          // At least once: a consumer killed after the dead-letter publish and before its ack publishes it again.
          if (copies > 1) {
            v.count("repeated dead letters", copies - 1);
          }
        }
      }
    }
    v.count("dead letters read", deadLetters.length);
    results.push(v.result());
  }

  // 7. No outbox row left unsent.
  {
    const v = new Verdict("no outbox row left unsent", `${snapshot.pendingOutbox.size} outboxes`);
    for (const [service, pending] of snapshot.pendingOutbox) {
      if (pending > 0) {
        v.fail(`${service} has ${pending} unsent outbox rows`);
      }
    }
    results.push(v.result());
  }

  // 8. Every event reached every subscription of its topic and was handled there.
  {
    let checked = 0;
    for (const [topic, events] of observed.byTopic) {
      checked += events.size * (expectations.subscriptions.get(topic)?.length ?? 0);
    }
    const v = new Verdict(
      "every event handled by every subscription of its topic (inbox claims)",
      `${checked} deliveries`,
    );
    for (const [subscription, ids] of unclaimed(expectations, snapshot, observed)) {
      for (const id of ids) {
        v.fail(`${subscription} never handled event ${id}`);
      }
    }
    const result = v.result();
    v.count("handled", checked - result.violationCount);
    if (evidence.resentDeliveries > 0) {
      v.count("re-sent after the emulator stranded them", evidence.resentDeliveries);
    }
    results.push(v.result());
  }

  // 9. No service died except by the schedule's hand.
  {
    const v = new Verdict(
      "services exit only when the schedule kills or stops them",
      "every process",
    );
    for (const exit of evidence.unexpectedExits) {
      v.fail(exit);
    }
    results.push(v.result());
  }

  // 10. The run saw every event: its own subscriptions and copies had no error.
  {
    const v = new Verdict(
      "the run's own view of the topics is complete (no monitor error)",
      `${observed.byTopic.size} topics`,
    );
    for (const error of evidence.monitorErrors) {
      v.fail(error);
    }
    results.push(v.result());
  }
  return results;
}
