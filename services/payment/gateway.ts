/**
 * The payment gateway of the checkout demo: a deterministic fake, so that
 * anyone can make a demo order decline by choosing its card token or total.
 */

import { Code, ProtoeventsError } from "@protoevents/runtime";
import { PaymentDeclineCode } from "../../generated/checkout/v1/payment_events_pb.js";
import { orderScopedId } from "../lib/order-scoped-id.js";

/** Environment variable overriding the per-order limit, in minor units. */
export const PAYMENT_LIMIT_ENV = "PAYMENT_LIMIT_MINOR";

/**
 * The per-order limit unless `PAYMENT_LIMIT_MINOR` says otherwise: 5,000.00
 * in a currency with two decimals.
 */
export const DEFAULT_PAYMENT_LIMIT_MINOR = 500_000n;

/** One charge as the gateway sees it. */
export interface ChargeRequest {
  readonly orderId: string;
  /** The card token from the order; personal data, never logged. */
  readonly paymentToken: string;
  /** The order's total in its currency's minor unit. */
  readonly amountMinor: bigint;
}

/** The gateway's answer to a charge. */
export type ChargeDecision =
  | {
      readonly kind: "approved";
      /** `pay_<order_id>`: the same order always gets the same payment id. */
      readonly paymentId: string;
    }
  | {
      readonly kind: "declined";
      readonly code: PaymentDeclineCode;
      /** The gateway's decline message, safe to show the customer. */
      readonly reason: string;
    };

/**
 * Decide a charge the way the fake gateway does. The first rule that matches
 * wins:
 *
 * 1. a token that does not start with `tok_` → `INVALID_PAYMENT_TOKEN`
 *    ("the payment token was not issued by the gateway");
 * 2. the token `tok_declined` → `CARD_DECLINED` ("the card issuer declined
 *    the charge");
 * 3. the token `tok_expired` → `EXPIRED_CARD` ("the card has expired");
 * 4. a total above `limitMinor` (default 500,000 minor units, i.e. 5,000.00;
 *    env `PAYMENT_LIMIT_MINOR`) → `AMOUNT_LIMIT_EXCEEDED`; the limit is in
 *    minor units of whatever currency the order is in, nothing is converted;
 * 5. anything else → approved, payment id `pay_<order_id>`.
 *
 * Token rules come before the amount, as a real gateway rejects a card before
 * it looks at what is charged to it. Tokens match exactly (`tok_declined_2` is
 * approved).
 *
 * @example
 * ```ts
 * decideCharge({ orderId: "ord-1", paymentToken: "tok_declined", amountMinor: 100n });
 * // { kind: "declined", code: PaymentDeclineCode.CARD_DECLINED, reason: "the card issuer declined the charge" }
 * ```
 */
export function decideCharge(
  request: ChargeRequest,
  limitMinor: bigint = DEFAULT_PAYMENT_LIMIT_MINOR,
): ChargeDecision {
  if (!request.paymentToken.startsWith("tok_")) {
    return {
      kind: "declined",
      code: PaymentDeclineCode.INVALID_PAYMENT_TOKEN,
      reason: "the payment token was not issued by the gateway",
    };
  }
  if (request.paymentToken === "tok_declined") {
    return {
      kind: "declined",
      code: PaymentDeclineCode.CARD_DECLINED,
      reason: "the card issuer declined the charge",
    };
  }
  if (request.paymentToken === "tok_expired") {
    return {
      kind: "declined",
      code: PaymentDeclineCode.EXPIRED_CARD,
      reason: "the card has expired",
    };
  }
  if (request.amountMinor > limitMinor) {
    return {
      kind: "declined",
      code: PaymentDeclineCode.AMOUNT_LIMIT_EXCEEDED,
      reason: `the amount of ${request.amountMinor} minor units is above the limit of ${limitMinor} per order`,
    };
  }
  return { kind: "approved", paymentId: orderScopedId("pay", request.orderId) };
}

/** The highest limit: every amount it lets through is held exactly as a JavaScript number. */
export const MAX_PAYMENT_LIMIT_MINOR = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * The per-order limit from `PAYMENT_LIMIT_MINOR`, or the default when it is
 * unset or empty.
 *
 * @throws ProtoeventsError `invalid_argument` when it is not a whole number of
 *   minor units (a typo must not silently lift or drop the limit).
 */
export function paymentLimitFromEnv(env: Readonly<Record<string, string | undefined>>): bigint {
  const raw = env[PAYMENT_LIMIT_ENV]?.trim() ?? "";
  if (raw === "") {
    return DEFAULT_PAYMENT_LIMIT_MINOR;
  }
  if (!/^[0-9]{1,16}$/.test(raw) || BigInt(raw) > MAX_PAYMENT_LIMIT_MINOR) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `${PAYMENT_LIMIT_ENV} must be a whole number of minor units from 0 to ${MAX_PAYMENT_LIMIT_MINOR} (e.g. 500000 for 5,000.00), got ${JSON.stringify(raw)}`,
    );
  }
  return BigInt(raw);
}
