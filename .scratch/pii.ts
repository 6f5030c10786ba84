import { fromJsonString } from "@bufbuild/protobuf";
import { OrderPlacedSchema } from "../generated/checkout/v1/order_events_pb.ts";
for (const j of ['{"customerEmail": 12345}', '{"customerEmail": ["secret@x.com"]}', '{"paymentToken": {"x":"tok_secret"}}', '{"total": {"amountMinor": "notanumber-secret"}}', '{"shippingAddress": {"line1": 7}}', '{"unknownField": "secret"}', '{"orderId": "a", "customerEmail": "ok@x.y", "items": [{"quantity": "12x-secret"}]}']) {
  try { fromJsonString(OrderPlacedSchema, j); console.log("ok", j); } catch (e) { console.log((e as Error).message); }
}
