/**
 * The arithmetic of reserving stock, apart from the database: what an order
 * asks for per product, whether the stock covers all of it, and how a
 * shortage is reported in InventoryReservationFailed.
 */
import { Code, ProtoeventsError } from "@protoevents/runtime";

/** Largest `quantity` / `requested_quantity` the contracts accept (`max: 1000`). */
export const MAX_LINE_QUANTITY = 1000;

/** Largest stock level an `int32` field (`available_quantity`) can carry. */
export const MAX_STOCK = 2_147_483_647;

/** Longest `reason` InventoryReservationFailed accepts (`max_len: 500`). */
export const MAX_REASON_LENGTH = 500;

/** One line of an order as inventory sees it. */
export interface RequestedLine {
  readonly productId: string;
  readonly quantity: number;
}

/** A product the stock does not cover, with the order's total for it. */
export interface Shortage {
  readonly productId: string;
  /** Sum over the order's lines of this product. */
  readonly requested: number;
  /** Units in stock; 0 for a product inventory does not know. */
  readonly available: number;
}

/** Whether an order can be reserved, all or nothing. */
export type ReservationDecision =
  | {
      readonly kind: "reserved";
      /** Units to take per product, in product id order. */
      readonly totals: ReadonlyMap<string, number>;
    }
  | {
      readonly kind: "unavailable";
      /** Every product short of stock, in product id order. */
      readonly shortages: readonly Shortage[];
    };

/**
 * Units per product over all lines, in product id order. The same product may
 * be on two lines; the stock has to cover their sum.
 */
export function totalsByProduct(lines: readonly RequestedLine[]): Map<string, number> {
  const totals = new Map<string, number>();
  for (const line of lines) {
    totals.set(line.productId, (totals.get(line.productId) ?? 0) + line.quantity);
  }
  return new Map([...totals].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Reserve all of `lines` or none: reserved when `stock` covers every
 * product's total, otherwise every product that falls short. A product
 * missing from `stock` has 0 units.
 */
export function decideReservation(
  lines: readonly RequestedLine[],
  stock: ReadonlyMap<string, number>,
): ReservationDecision {
  const totals = totalsByProduct(lines);
  const shortages: Shortage[] = [];
  for (const [productId, requested] of totals) {
    const available = stock.get(productId) ?? 0;
    if (requested > available) {
      shortages.push({ productId, requested, available });
    }
  }
  return shortages.length === 0 ? { kind: "reserved", totals } : { kind: "unavailable", shortages };
}

/**
 * Shortages as InventoryReservationFailed's `unavailable_items`. The contract
 * caps `requested_quantity` at 1000 per line; a total over that (only
 * possible when one product is on several lines) is reported as 1000, and the
 * reason text carries the true total.
 */
export function unavailableItems(shortages: readonly Shortage[]): Array<{
  productId: string;
  requestedQuantity: number;
  availableQuantity: number;
}> {
  return shortages.map((s) => ({
    productId: s.productId,
    requestedQuantity: Math.min(s.requested, MAX_LINE_QUANTITY),
    availableQuantity: Math.min(s.available, MAX_STOCK),
  }));
}

/**
 * A reason for the cancellation notice, e.g. `out of stock: sku-limited (2
 * requested, 1 available)`, cut to the contract's 500 characters with the
 * number of products left out.
 */
export function shortageReason(shortages: readonly Shortage[]): string {
  let reason = "out of stock:";
  for (const [index, s] of shortages.entries()) {
    const part = `${index === 0 ? " " : ", "}${s.productId} (${s.requested} requested, ${s.available} available)`;
    const rest = shortages.length - index;
    // Keep room for the longest possible tail, ", and 100 more".
    if (reason.length + part.length > MAX_REASON_LENGTH - 20 && rest > 1) {
      return `${reason}, and ${rest} more`;
    }
    reason += part;
  }
  return reason.length > MAX_REASON_LENGTH ? `${reason.slice(0, MAX_REASON_LENGTH - 1)}…` : reason;
}

/**
 * Stock levels from the JSON of a stock file: an object of product id to
 * units, e.g. `{ "sku-keyboard": 1000 }`.
 *
 * @throws ProtoeventsError `invalid_argument` naming `source` and the entry
 *   when the JSON is not such an object or a level is not a whole number from
 *   0 to 2147483647.
 */
export function parseStockLevels(json: string, source: string): Map<string, number> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (error) {
    throw new ProtoeventsError(Code.InvalidArgument, `${source}: not JSON`, { cause: error });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `${source}: must be an object of product id to units in stock, e.g. {"sku-keyboard": 1000}`,
    );
  }
  const levels = new Map<string, number>();
  for (const [productId, units] of Object.entries(parsed)) {
    if (productId === "" || productId.length > 64) {
      throw new ProtoeventsError(
        Code.InvalidArgument,
        `${source}: product id ${JSON.stringify(productId)} must be 1 to 64 characters long`,
      );
    }
    if (typeof units !== "number" || !Number.isInteger(units) || units < 0 || units > MAX_STOCK) {
      throw new ProtoeventsError(
        Code.InvalidArgument,
        `${source}: units of ${productId} must be a whole number from 0 to ${MAX_STOCK}, got ${JSON.stringify(units)}`,
      );
    }
    levels.set(productId, units);
  }
  return levels;
}
