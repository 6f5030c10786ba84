/**
 * The business rules of the notification service, as pure functions: which
 * notice an order gets, its id, the file it is written to, and the words of
 * each e-mail. Nothing here touches the store, the mail server or the clock.
 */
import { createHash } from "node:crypto";
import type { Address, LineItem, Money } from "../../generated/checkout/v1/common_pb.js";
import { CancellationReason } from "../../generated/checkout/v1/common_pb.js";
import { NotificationKind } from "../../generated/checkout/v1/notification_events_pb.js";
import type {
  OrderCancelledValid,
  OrderConfirmedValid,
} from "../../generated/checkout/v1/order_events_pe.js";
import type { OrderReadyForShippingValid } from "../../generated/checkout/v1/shipping_events_pe.js";

/** The kinds of notice, as stored in the `notifications` table and used in ids and file names. */
export type NoticeKind = "confirmation" | "cancellation" | "shipping";

/** The NotificationSent enum value of a notice kind. */
export function notificationKindOf(kind: NoticeKind): NotificationKind {
  switch (kind) {
    case "confirmation":
      return NotificationKind.CONFIRMATION;
    case "cancellation":
      return NotificationKind.CANCELLATION;
    case "shipping":
      return NotificationKind.SHIPPING;
  }
}

/** The longest notification id NotificationSent accepts (its `max_len` rule). */
const MAX_NOTIFICATION_ID_LENGTH = 64;

/**
 * The notification's id: `ntf_<order_id>_<kind>`, the same on every retry, so
 * the same notice is never announced under two ids. Order ids may be up to 64
 * characters, which does not always fit; those orders get
 * `ntf_<first 40 hex digits of sha256(order_id)>_<kind>` instead, still
 * deterministic.
 */
export function notificationId(orderId: string, kind: NoticeKind): string {
  const plain = `ntf_${orderId}_${kind}`;
  if ([...plain].length <= MAX_NOTIFICATION_ID_LENGTH) {
    return plain;
  }
  const digest = createHash("sha256").update(orderId, "utf8").digest("hex").slice(0, 40);
  return `ntf_${digest}_${kind}`;
}

/**
 * Escape a value for a file name or a Message-ID: letters, digits, `-` and
 * `_` stay, every other UTF-8 byte becomes `%XX`. Injective (two order ids
 * never share a file), and the result cannot contain `/`, `.` or `..`.
 */
export function escapeForFileName(value: string): string {
  let out = "";
  for (const byte of Buffer.from(value, "utf8")) {
    const char = String.fromCharCode(byte);
    out += /[A-Za-z0-9_-]/.test(char)
      ? char
      : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/**
 * The file an e-mail is written to, `<order_id>-<kind>.eml` (the order id
 * escaped by {@link escapeForFileName}). Deterministic, so a retry after a
 * crash between writing the file and committing overwrites it instead of
 * adding a second one.
 */
export function mailFileName(orderId: string, kind: NoticeKind): string {
  return `${escapeForFileName(orderId)}-${kind}.eml`;
}

/**
 * Format an amount in minor units as money with its ISO code, e.g.
 * `EUR 1,234.50` or `JPY 1,200`. Exact for any int64: the decimal is built as a
 * string, never through a float. The number of minor digits comes from the
 * currency (2 unless ICU knows better).
 */
export function formatMoney(money: Pick<Money, "currencyCode" | "amountMinor">): string {
  const format = currencyFormat(money.currencyCode);
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  const negative = money.amountMinor < 0n;
  const magnitude = (negative ? -money.amountMinor : money.amountMinor)
    .toString()
    .padStart(digits + 1, "0");
  const whole = magnitude.slice(0, magnitude.length - digits);
  const fraction = magnitude.slice(magnitude.length - digits);
  const decimal = `${negative ? "-" : ""}${whole}${digits > 0 ? `.${fraction}` : ""}`;
  // ICU separates the code from the number with a no-break space; a plain
  // space keeps the e-mail 7-bit and readable in any viewer.
  return format.format(decimal as `${number}`).replace(/\u00a0/g, " ");
}

/**
 * One formatter per currency: building an Intl.NumberFormat takes about a
 * millisecond, which made formatting the biggest cost of sending an e-mail.
 */
const formats = new Map<string, Intl.NumberFormat>();

function currencyFormat(currency: string): Intl.NumberFormat {
  let format = formats.get(currency);
  if (format === undefined) {
    format = new Intl.NumberFormat("en-US", {
      style: "currency",
      currency,
      currencyDisplay: "code",
    });
    formats.set(currency, format);
  }
  return format;
}

/** An e-mail's subject and plain-text body. */
export interface MailContent {
  readonly subject: string;
  readonly text: string;
}

function itemLines(items: readonly (LineItem & { unitPrice: Money })[]): string[] {
  return items.map((item) => {
    const name = item.productName === "" ? item.productId : item.productName;
    const lineTotal = {
      ...item.unitPrice,
      amountMinor: item.unitPrice.amountMinor * BigInt(item.quantity),
    };
    return `  ${item.quantity} x ${name} at ${formatMoney(item.unitPrice)} = ${formatMoney(lineTotal)}`;
  });
}

function addressLines(address: Address): string[] {
  const cityLine = [address.postalCode, address.city].filter((part) => part !== "").join(" ");
  return [
    address.recipientName,
    address.line1,
    address.line2,
    cityLine,
    address.region,
    address.countryCode,
  ]
    .filter((line) => line !== "")
    .map((line) => `  ${line}`);
}

/** Longest line of a body: short lines keep the message 7-bit and easy to read. */
const LINE_WIDTH = 72;

/**
 * Wrap a paragraph at spaces to {@link LINE_WIDTH} columns. A word longer than
 * a line stays whole.
 */
export function wrap(paragraph: string, width = LINE_WIDTH): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of paragraph.split(/\s+/).filter((w) => w !== "")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  if (line !== "") {
    lines.push(line);
  }
  return lines;
}

/** The sum of the items' prices, or undefined when they are in different currencies. */
export function itemsTotal(items: readonly (LineItem & { unitPrice: Money })[]): Money | undefined {
  const first = items[0];
  if (first === undefined) {
    return undefined;
  }
  let amountMinor = 0n;
  for (const item of items) {
    if (item.unitPrice.currencyCode !== first.unitPrice.currencyCode) {
      return undefined;
    }
    amountMinor += item.unitPrice.amountMinor * BigInt(item.quantity);
  }
  return { ...first.unitPrice, amountMinor };
}

function greeting(name: string | undefined): string {
  return name === undefined || name === "" ? "Hello," : `Hello ${name},`;
}

const SIGNATURE = ["", "Thank you for shopping with us.", "Your Checkout team"];

/** The confirmation e-mail: what was ordered, what it cost, where it goes. */
export function confirmationEmail(event: OrderConfirmedValid): MailContent {
  return {
    subject: `Your order ${event.orderId} is confirmed`,
    text: [
      greeting(event.shippingAddress.recipientName),
      "",
      ...wrap(`we have received your payment and your order ${event.orderId} is confirmed.`),
      "",
      "Items:",
      ...itemLines(event.items),
      "",
      `Total charged: ${formatMoney(event.total)}`,
      "",
      "It will be shipped to:",
      ...addressLines(event.shippingAddress),
      "",
      "We will e-mail you again when it is on its way.",
      ...SIGNATURE,
      "",
    ].join("\n"),
  };
}

/** Why an order was cancelled, in words a customer understands. */
export function cancellationReasonText(reason: CancellationReason): string {
  switch (reason) {
    case CancellationReason.PAYMENT_DECLINED:
      return "your payment was declined";
    case CancellationReason.OUT_OF_STOCK:
      return "some of the items are out of stock";
    case CancellationReason.CUSTOMER_REQUESTED:
      return "you asked us to cancel it";
    default:
      return "we could not complete it";
  }
}

/** The cancellation e-mail: why, and whether money comes back. */
export function cancellationEmail(event: OrderCancelledValid): MailContent {
  const detail = event.detail.trim();
  return {
    subject: `Your order ${event.orderId} was cancelled`,
    text: [
      greeting(undefined),
      "",
      ...wrap(
        `we are sorry: your order ${event.orderId} was cancelled because ${cancellationReasonText(event.reason)}.`,
      ),
      ...(detail === "" ? [] : wrap(`Details: ${detail}`)),
      "",
      ...wrap(
        event.refundRequired
          ? "What you were charged for it will be refunded to your payment method; depending on your bank this can take a few days."
          : "You have not been charged for it.",
      ),
      ...SIGNATURE,
      "",
    ].join("\n"),
  };
}

/** The shipping notice: which shipment, what is in it, where it goes. */
export function shippingEmail(event: OrderReadyForShippingValid): MailContent {
  const total = itemsTotal(event.items);
  return {
    subject: `Your order ${event.orderId} is on its way`,
    text: [
      greeting(event.shippingAddress.recipientName),
      "",
      ...wrap(`your order ${event.orderId} has been packed and is ready for the carrier.`),
      `Shipment: ${event.shipmentId}`,
      "",
      "In the parcel:",
      ...itemLines(event.items),
      ...(total === undefined ? [] : ["", `Order total: ${formatMoney(total)}`]),
      "",
      "It goes to:",
      ...addressLines(event.shippingAddress),
      ...SIGNATURE,
      "",
    ].join("\n"),
  };
}
