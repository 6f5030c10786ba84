import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { OrderPlacedInput } from "../../generated/checkout/v1/order_events_pe.js";

/** A valid OrderPlaced: every field rule passes. */
export function validOrderPlaced(orderId = "ord-1001"): OrderPlacedInput {
  return {
    orderId,
    customerId: "cust-42",
    customerEmail: "ada@example.com",
    items: [
      {
        productId: "sku-keyboard",
        productName: "Keyboard",
        quantity: 1,
        unitPrice: { currencyCode: "EUR", amountMinor: 7990n },
      },
      {
        productId: "sku-mouse",
        quantity: 2,
        unitPrice: { currencyCode: "EUR", amountMinor: 2495n },
      },
    ],
    total: { currencyCode: "EUR", amountMinor: 12980n },
    shippingAddress: {
      recipientName: "Ada Lovelace",
      line1: "12 St James's Square",
      city: "London",
      postalCode: "SW1Y 4JH",
      countryCode: "GB",
    },
    paymentToken: "tok_visa_4242",
    placedAt: timestampFromDate(new Date("2026-11-26T10:00:00Z")),
  };
}
