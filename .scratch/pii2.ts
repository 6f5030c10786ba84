import { fromJsonString } from "@bufbuild/protobuf";
import { OrderPlacedSchema } from "../generated/checkout/v1/order_events_pb.js";
for (const j of ['{"customerEmail": "ada@secret.com" x}', '{"customerEmail": "ada@secret.com"', 'ada@secret.com']) {
  try { fromJsonString(OrderPlacedSchema, j); } catch (e) { console.log(JSON.stringify((e as Error).message), (e as Error).name); }
}
