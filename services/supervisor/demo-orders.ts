/**
 * The demo orders `protoevents start` places: a documented, reproducible mix
 * (seeded), built from the products the catalog lists.
 *
 * Order n (from 1) is:
 * - every 7th: a valid basket paid with `tok_declined` → payment declines it → cancelled;
 * - else every 11th: 2 × `sku-limited` (3 in stock) → the first one is confirmed, every
 *   later one runs out of stock → cancelled;
 * - else every 13th: the most expensive product, enough of it to go over the payment
 *   gateway's 5,000.00 limit → declined → cancelled;
 * - else: 1–3 random products (never `sku-limited`), 1–2 of each, a good card → confirmed.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { PlaceOrderRequestSchema } from "../../generated/checkout/v1/order_api_pb.js";

/** The product the inventory seeds with only 3 in stock. */
export const LIMITED_SKU = "sku-limited";
/** How many `sku-limited` a fresh inventory has. */
export const LIMITED_STOCK = 3;
/** How many `sku-limited` one limited order asks for. */
export const LIMITED_QUANTITY = 2;
/** The payment gateway declines totals above this, in minor units (5,000.00). */
export const PAYMENT_LIMIT_MINOR = 500_000n;
/** The card token the fake gateway declines. */
export const DECLINED_TOKEN = "tok_declined";
/** A card token the fake gateway charges. */
export const GOOD_TOKEN = "tok_visa_4242";

/** What kind of demo order number n is. */
export type DemoOrderKind = "valid" | "declined-card" | "limited" | "over-limit";

/** A product as the demo needs it: id and unit price in minor units. */
export interface DemoProduct {
  readonly productId: string;
  readonly priceMinor: bigint;
}

/** The kind of order number `n` (from 1). */
export function demoOrderKind(n: number): DemoOrderKind {
  if (n % 7 === 0) {
    return "declined-card";
  }
  if (n % 11 === 0) {
    return "limited";
  }
  if (n % 13 === 0) {
    return "over-limit";
  }
  return "valid";
}

/**
 * How orders 1…`placed` should end on a fresh system (empty stores, stock as
 * seeded): what the summary compares against.
 */
export function expectedOutcome(placed: number): { confirmed: number; cancelled: number } {
  let confirmed = 0;
  let cancelled = 0;
  let limitedLeft = LIMITED_STOCK;
  for (let n = 1; n <= placed; n++) {
    const kind = demoOrderKind(n);
    if (kind === "valid") {
      confirmed++;
    } else if (kind === "limited" && limitedLeft >= LIMITED_QUANTITY) {
      limitedLeft -= LIMITED_QUANTITY;
      confirmed++;
    } else {
      cancelled++;
    }
  }
  return { confirmed, cancelled };
}

/** A small, fast, seeded PRNG (mulberry32): the same seed gives the same orders. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const CUSTOMERS = [
  { name: "Ada Lovelace", city: "London", line1: "12 St James's Square", country: "GB" },
  { name: "Grace Hopper", city: "Arlington", line1: "1 Navy Yard", country: "US" },
  { name: "Alan Turing", city: "Manchester", line1: "43 Adlington Road", country: "GB" },
  { name: "Katherine Johnson", city: "Hampton", line1: "8 Langley Blvd", country: "US" },
  { name: "Emmy Noether", city: "Göttingen", line1: "Friedländer Weg 57", country: "DE" },
  { name: "Hedy Lamarr", city: "Vienna", line1: "Osterleitengasse 3", country: "AT" },
  { name: "Edsger Dijkstra", city: "Nuenen", line1: "Den Hof 4", country: "NL" },
] as const;

export type DemoOrderRequest = MessageInitShape<typeof PlaceOrderRequestSchema>;

/**
 * Builds the demo orders one after the other. Random choices come from the
 * seeded generator, so a run with the same seed and catalog places the same
 * baskets.
 */
export class DemoOrders {
  private readonly random: () => number;
  private readonly regular: readonly DemoProduct[];
  private readonly priciest: DemoProduct;

  /**
   * @param products the active products the catalog lists; `sku-limited` must be among them
   * @param runId makes request ids unique per run, so retries are idempotent within it only
   */
  constructor(
    products: readonly DemoProduct[],
    seed: number,
    private readonly runId: string,
    private readonly limitMinor: bigint = PAYMENT_LIMIT_MINOR,
  ) {
    this.random = seededRandom(seed);
    this.regular = products
      .filter((p) => p.productId !== LIMITED_SKU)
      .slice()
      .sort((a, b) => a.productId.localeCompare(b.productId));
    const priciest = [...this.regular].sort((a, b) =>
      a.priceMinor === b.priceMinor ? 0 : a.priceMinor > b.priceMinor ? -1 : 1,
    )[0];
    if (priciest === undefined) {
      throw new Error("the catalog lists no product besides sku-limited");
    }
    this.priciest = priciest;
  }

  /** Order number `n` (from 1). */
  order(n: number): { kind: DemoOrderKind; request: DemoOrderRequest } {
    const kind = demoOrderKind(n);
    const customer = CUSTOMERS[Math.floor(this.random() * CUSTOMERS.length)] ?? CUSTOMERS[0];
    const customerNumber = CUSTOMERS.indexOf(customer) + 1;
    let lines: { productId: string; quantity: number }[];
    if (kind === "limited") {
      lines = [{ productId: LIMITED_SKU, quantity: LIMITED_QUANTITY }];
    } else if (kind === "over-limit") {
      const quantity = Number(this.limitMinor / this.priciest.priceMinor) + 1;
      lines = [{ productId: this.priciest.productId, quantity }];
    } else {
      lines = this.basket();
    }
    return {
      kind,
      request: {
        requestId: `demo-${this.runId}-${n}`,
        customerId: `cust-${customerNumber}`,
        customerEmail: `customer${customerNumber}@example.com`,
        lines,
        shippingAddress: {
          recipientName: customer.name,
          line1: customer.line1,
          city: customer.city,
          countryCode: customer.country,
        },
        paymentToken: kind === "declined-card" ? DECLINED_TOKEN : GOOD_TOKEN,
      },
    };
  }

  /** 1–3 distinct regular products, 1–2 of each. */
  private basket(): { productId: string; quantity: number }[] {
    const pool = [...this.regular];
    const count = Math.min(pool.length, 1 + Math.floor(this.random() * 3));
    const lines: { productId: string; quantity: number }[] = [];
    for (let i = 0; i < count; i++) {
      const [product] = pool.splice(Math.floor(this.random() * pool.length), 1);
      if (product !== undefined) {
        lines.push({ productId: product.productId, quantity: 1 + Math.floor(this.random() * 2) });
      }
    }
    // A valid basket stays under the payment limit, whatever the catalog charges.
    const price = (id: string) => this.regular.find((p) => p.productId === id)?.priceMinor ?? 0n;
    const total = () => lines.reduce((sum, l) => sum + price(l.productId) * BigInt(l.quantity), 0n);
    while (total() > this.limitMinor && lines.length > 1) {
      lines.pop();
    }
    for (const line of lines) {
      if (total() > this.limitMinor) {
        line.quantity = 1;
      }
    }
    return lines;
  }
}
