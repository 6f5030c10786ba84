/**
 * Ids that services derive from an order id (`pay_<order>`, `res_<order>`,
 * `shp_<order>`, …) instead of generating them: a retried or repeated event
 * about the same order yields the same id, so the id itself cannot double.
 */
import { createHash } from "node:crypto";

/**
 * Longest id the checkout contracts accept (`payment_id`, `reservation_id`,
 * `shipment_id`, `refund_id` all have `max_len: 64`), the same as an order id.
 */
export const MAX_ORDER_SCOPED_ID_LENGTH = 64;

/**
 * `<prefix>_<orderId>`, e.g. `pay_ord-1001`. Order ids may be 64 characters
 * long, so the prefixed id may not fit the contracts' 64: such ids become
 * `<prefix>_` followed by the start of the order id's SHA-256 in hex, which
 * is still deterministic and, in practice, unique.
 *
 * @example
 * ```ts
 * orderScopedId("pay", "ord-1001"); // "pay_ord-1001"
 * ```
 */
export function orderScopedId(prefix: string, orderId: string): string {
  const plain = `${prefix}_${orderId}`;
  // Code points, as the contracts' max_len counts them.
  if ([...plain].length <= MAX_ORDER_SCOPED_ID_LENGTH) {
    return plain;
  }
  const room = MAX_ORDER_SCOPED_ID_LENGTH - prefix.length - 1;
  return `${prefix}_${createHash("sha256").update(orderId, "utf8").digest("hex").slice(0, room)}`;
}
