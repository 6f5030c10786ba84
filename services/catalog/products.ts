/**
 * The business rules of the catalog, as pure functions: what a listable
 * product is, when an upsert changes nothing, and what the seed file holds.
 * Nothing here touches the store, the network or the clock.
 */
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { Code, ProtoeventsError, reasonToString } from "@protoevents/runtime";
import {
  type UpsertProductRequest,
  UpsertProductRequestSchema,
} from "../../generated/checkout/v1/catalog_api_pb.js";

/** Longest product id: ProductUpdated's `product_id` rule. */
export const MAX_PRODUCT_ID_LENGTH = 64;
/** Longest name: ProductUpdated's `name` rule. */
export const MAX_NAME_LENGTH = 200;
/**
 * Largest amount the catalog stores: the store reads int8 columns as JS
 * numbers, which are exact only up to 2^53 - 1.
 */
export const MAX_AMOUNT_MINOR = BigInt(Number.MAX_SAFE_INTEGER);

const CURRENCY_CODE = /^[A-Z]{3}$/;

/** A product's fields that an upsert sets: everything but version and time. */
export interface ProductFields {
  readonly productId: string;
  readonly name: string;
  readonly currencyCode: string;
  readonly amountMinor: bigint;
  readonly active: boolean;
}

/** The outcome of {@link validateUpsertRequest}. */
export type UpsertValidation =
  | { readonly ok: true; readonly fields: ProductFields }
  | { readonly ok: false; readonly violations: readonly string[] };

function codePoints(value: string): number {
  return [...value].length;
}

/**
 * Check that a request describes a product that can be listed. Each violation
 * is `<field path>: <what is wrong>`, in proto field names, e.g.
 * `price.currency_code: must be three capital letters, got "euro"`.
 */
export function validateUpsertRequest(request: UpsertProductRequest): UpsertValidation {
  const violations: string[] = [];
  if (request.productId === "") {
    violations.push("product_id: is required");
  } else if (codePoints(request.productId) > MAX_PRODUCT_ID_LENGTH) {
    violations.push(
      `product_id: must be at most ${MAX_PRODUCT_ID_LENGTH} characters, got ${codePoints(request.productId)}`,
    );
  }
  if (request.name.trim() === "") {
    violations.push("name: is required");
  } else if (codePoints(request.name) > MAX_NAME_LENGTH) {
    violations.push(
      `name: must be at most ${MAX_NAME_LENGTH} characters, got ${codePoints(request.name)}`,
    );
  }
  const price = request.price;
  if (price === undefined) {
    violations.push("price: is required");
  } else {
    if (!CURRENCY_CODE.test(price.currencyCode)) {
      violations.push(
        `price.currency_code: must be three capital letters, got ${JSON.stringify(price.currencyCode)}`,
      );
    }
    if (price.amountMinor < 0n) {
      violations.push(`price.amount_minor: must not be negative, got ${price.amountMinor}`);
    } else if (price.amountMinor > MAX_AMOUNT_MINOR) {
      violations.push(
        `price.amount_minor: must be at most ${MAX_AMOUNT_MINOR}, got ${price.amountMinor}`,
      );
    }
  }
  if (violations.length > 0 || price === undefined) {
    return { ok: false, violations };
  }
  return {
    ok: true,
    fields: {
      productId: request.productId,
      name: request.name,
      currencyCode: price.currencyCode,
      amountMinor: price.amountMinor,
      active: request.active,
    },
  };
}

/** A stored product's fields as {@link sameProduct} compares them. */
export interface StoredProductFields {
  readonly name: string;
  readonly price_currency: string;
  readonly price_amount_minor: number;
  /** 1 or 0. */
  readonly active: number;
}

/**
 * Whether an upsert would change nothing. Such an upsert keeps the version
 * and publishes nothing, so re-running the seed or repeating a request is
 * free for the catalog's consumers.
 */
export function sameProduct(stored: StoredProductFields, fields: ProductFields): boolean {
  return (
    stored.name === fields.name &&
    stored.price_currency === fields.currencyCode &&
    BigInt(stored.price_amount_minor) === fields.amountMinor &&
    stored.active === (fields.active ? 1 : 0)
  );
}

/**
 * Read the seed file's text: `{ "products": [ UpsertProductRequest, … ] }` in
 * proto3 JSON (`productId`, `name`, `price: { currencyCode, amountMinor }`,
 * `active`). Every product must pass {@link validateUpsertRequest}, and no id
 * may appear twice (two entries for one id would flip it back and forth on
 * every start, publishing a new version each time).
 *
 * @param source the file's name, for error messages.
 * @throws ProtoeventsError `invalid_argument` naming the file, the entry and the field.
 */
export function parseSeed(text: string, source: string): ProductFields[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `${source}: not JSON: ${reasonToString(error)}`,
    );
  }
  const entries = (json as { products?: unknown } | null)?.products;
  if (typeof json !== "object" || json === null || !Array.isArray(entries)) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `${source}: expected an object with a "products" array`,
    );
  }
  const seen = new Set<string>();
  return entries.map((entry: unknown, index) => {
    let request: UpsertProductRequest;
    try {
      request = fromJson(UpsertProductRequestSchema, entry as JsonValue);
    } catch (error) {
      throw new ProtoeventsError(
        Code.InvalidArgument,
        `${source}: products[${index}]: ${reasonToString(error)}`,
      );
    }
    const validation = validateUpsertRequest(request);
    if (!validation.ok) {
      throw new ProtoeventsError(
        Code.InvalidArgument,
        `${source}: products[${index}].${validation.violations.join(`; products[${index}].`)}`,
      );
    }
    if (seen.has(request.productId)) {
      throw new ProtoeventsError(
        Code.InvalidArgument,
        `${source}: products[${index}].product_id: ${JSON.stringify(request.productId)} appears twice`,
      );
    }
    seen.add(request.productId);
    return validation.fields;
  });
}
