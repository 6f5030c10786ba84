/**
 * PlaceOrder's rules: which requests can become an order, and what it costs.
 * Pure: the catalog view is passed in as the products the request names.
 */
import { create } from "@bufbuild/protobuf";
import { codePointLength, type FieldViolation } from "@protoevents/runtime";
import {
  type LineItem,
  LineItemSchema,
  type Money,
  MoneySchema,
} from "../../generated/checkout/v1/common_pb.js";
import type { PlaceOrderRequest } from "../../generated/checkout/v1/order_api_pb.js";
import { validatePlaceOrderRequest } from "../../generated/checkout/v1/order_api_pe.js";

/** Lines per order, as OrderPlaced's `items` allows. */
export const MAX_LINES = 100;
/** Units per line, as LineItem's `quantity` allows. */
export const MAX_QUANTITY = 1000;

/**
 * The most an order may total, in minor units: what every service holds
 * exactly (the payments table keeps amounts as JavaScript numbers), far above
 * any payment limit, so each priced order is either charged or declined.
 */
export const MAX_ORDER_TOTAL_MINOR = BigInt(Number.MAX_SAFE_INTEGER);

/** Field lengths OrderPlaced allows, so a request that passes here is a valid event. */
const MAX_ID_LENGTH = 64;
const MAX_EMAIL_LENGTH = 254;
const MAX_PAYMENT_TOKEN_LENGTH = 128;

/** The e-mail rule of OrderPlaced.customer_email. */
const EMAIL_PATTERN = /^[^@\s]+@[^@\s]+\.[^@\s]+$/u;

/** A product as the catalog view holds it. */
export interface CatalogProduct {
  readonly productId: string;
  readonly version: number;
  readonly name: string;
  /** Price of one unit. */
  readonly price: Money;
  /** Whether it can be ordered. */
  readonly active: boolean;
}

/**
 * The outcome of {@link priceOrder}: the priced items and their total, or
 * every problem of the request as `field.path: what is wrong and how to fix
 * it`.
 */
export type PricedOrder =
  | { readonly kind: "priced"; readonly items: readonly LineItem[]; readonly total: Money }
  | { readonly kind: "invalid"; readonly problems: readonly string[] };

/**
 * The products whose catalog entries {@link priceOrder} needs: the distinct,
 * non-empty product ids of the request's lines, none when there are too
 * many lines to price anyway.
 */
export function productIdsOf(request: PlaceOrderRequest): string[] {
  if (request.lines.length > MAX_LINES) {
    return [];
  }
  return [...new Set(request.lines.map((line) => line.productId).filter((id) => id !== ""))];
}

/**
 * Check a PlaceOrder request and price it from the catalog view: every line
 * needs a known, active product and a quantity of 1 to 1000, all in one
 * currency; the request needs a customer id, an e-mail address, a payment
 * token, 1 to 100 lines and a complete shipping address (the generated
 * {@link validatePlaceOrderRequest} checks the address rules). Each item
 * gets the product's name and unit price; the total is the sum of quantity
 * × unit price. Reports every problem at once.
 */
export function priceOrder(
  request: PlaceOrderRequest,
  catalog: ReadonlyMap<string, CatalogProduct>,
): PricedOrder {
  const problems: string[] = [];
  checkText(problems, "request_id", request.requestId, MAX_ID_LENGTH, false);
  checkText(problems, "customer_id", request.customerId, MAX_ID_LENGTH, true);
  if (request.customerEmail === "") {
    problems.push("customer_email: required");
  } else if (
    codePointLength(request.customerEmail) > MAX_EMAIL_LENGTH ||
    !EMAIL_PATTERN.test(request.customerEmail)
  ) {
    problems.push(
      `customer_email: must be an e-mail address such as ada@example.com, at most ${MAX_EMAIL_LENGTH} characters`,
    );
  }

  const items: LineItem[] = [];
  let currency: string | undefined;
  let total = 0n;
  if (request.lines.length === 0) {
    problems.push("lines: at least one line required");
  } else if (request.lines.length > MAX_LINES) {
    problems.push(
      `lines: at most ${MAX_LINES} lines per order, got ${request.lines.length}; split the order`,
    );
  } else {
    for (const [i, line] of request.lines.entries()) {
      const path = `lines[${i}]`;
      const product = lineProduct(problems, `${path}.product_id`, line.productId, catalog);
      if (product !== undefined) {
        currency ??= product.price.currencyCode;
        if (product.price.currencyCode !== currency) {
          problems.push(
            `${path}.product_id: product ${JSON.stringify(line.productId)} is priced in ${product.price.currencyCode}, the order's other items in ${currency}; place one order per currency`,
          );
          checkQuantity(problems, path, line.quantity);
          continue;
        }
      }
      if (!checkQuantity(problems, path, line.quantity) || product === undefined) {
        continue;
      }
      items.push(
        create(LineItemSchema, {
          productId: product.productId,
          productName: product.name,
          quantity: line.quantity,
          unitPrice: {
            currencyCode: product.price.currencyCode,
            amountMinor: product.price.amountMinor,
          },
        }),
      );
      total += BigInt(line.quantity) * product.price.amountMinor;
    }
  }
  if (total > MAX_ORDER_TOTAL_MINOR) {
    problems.push(
      `lines: the order totals ${total} minor units, more than the ${MAX_ORDER_TOTAL_MINOR} an order can total; order fewer or cheaper items`,
    );
  }
  // In the request's field order, after lines.
  if (request.shippingAddress === undefined) {
    problems.push("shipping_address: required");
  } else {
    for (const violation of validatePlaceOrderRequest(request)) {
      problems.push(describeViolation(violation));
    }
  }
  checkText(problems, "payment_token", request.paymentToken, MAX_PAYMENT_TOKEN_LENGTH, true);
  if (problems.length > 0 || currency === undefined) {
    return { kind: "invalid", problems };
  }
  return {
    kind: "priced",
    items,
    total: create(MoneySchema, { currencyCode: currency, amountMinor: total }),
  };
}

/** The line's product if it can be ordered; otherwise pushes why not. */
function lineProduct(
  problems: string[],
  path: string,
  productId: string,
  catalog: ReadonlyMap<string, CatalogProduct>,
): CatalogProduct | undefined {
  if (!checkText(problems, path, productId, MAX_ID_LENGTH, true)) {
    return undefined;
  }
  const product = catalog.get(productId);
  if (product === undefined) {
    problems.push(`${path}: unknown product ${JSON.stringify(productId)}`);
    return undefined;
  }
  if (!product.active) {
    problems.push(`${path}: product ${JSON.stringify(productId)} is not on sale`);
    return undefined;
  }
  return product;
}

/** Push a problem for a quantity outside 1–1000; true when it is fine. */
function checkQuantity(problems: string[], path: string, quantity: number): boolean {
  if (Number.isInteger(quantity) && quantity >= 1 && quantity <= MAX_QUANTITY) {
    return true;
  }
  problems.push(`${path}.quantity: must be 1 to ${MAX_QUANTITY}, got ${quantity}`);
  return false;
}

/** Push a problem for a missing or too long text field; true when it is fine. */
function checkText(
  problems: string[],
  path: string,
  value: string,
  maxLength: number,
  required: boolean,
): boolean {
  if (value === "") {
    if (required) {
      problems.push(`${path}: required`);
      return false;
    }
    return true;
  }
  const length = codePointLength(value);
  if (length > maxLength) {
    problems.push(`${path}: must be at most ${maxLength} characters, got ${length}`);
    return false;
  }
  return true;
}

/** Generated field-rule messages, reworded where a hint helps the caller fix the field. */
const HINTS: Readonly<Record<string, string>> = {
  "shipping_address.country_code:pattern":
    "must be an ISO 3166-1 alpha-2 country code in capitals, such as DE or US",
};

function describeViolation(violation: FieldViolation): string {
  const hint = HINTS[`${violation.path}:${violation.rule}`];
  if (hint !== undefined) {
    return `${violation.path}: ${hint}`;
  }
  return violation.rule === "required"
    ? `${violation.path}: required`
    : `${violation.path}: ${violation.message}`;
}
