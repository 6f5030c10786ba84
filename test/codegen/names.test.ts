import { describe, expect, it } from "vitest";
import {
  applicationNames,
  eventNames,
  handlerMethodName,
  isGeneratedModule,
  messageNames,
  peFileName,
} from "../../codegen/src/emit/names.js";
import { protocGenProtoevents } from "../../codegen/src/plugin.js";
import * as applications from "../../generated/checkout/v1/applications_pe.js";
import { registry } from "../../generated/protoevents_registry.js";
import { compileRequest } from "../helpers/compile-proto.js";

/** The exports of a generated module, by name. */
type Exports = Record<string, unknown>;

describe("names of generated code", () => {
  it("should name what each event's module exports", async () => {
    expect(registry.events.length).toBeGreaterThan(0);
    for (const event of registry.events) {
      const url = new URL(`../../generated/${peFileName(event.schema.file)}.js`, import.meta.url);
      const module: Exports = await import(/* @vite-ignore */ url.href);
      const names = eventNames(event.schema.name);
      const types = messageNames(event.schema.name);
      expect(module[names.contract], names.contract).toBe(event);
      expect(module[names.topicConstant], names.topicConstant).toBe(event.topic);
      expect(module[names.typeConstant], names.typeConstant).toBe(event.type);
      expect(module[types.validator], types.validator).toBe(event.validate);
      for (const name of [names.encode, names.decode, types.checker]) {
        expect(typeof module[name], name).toBe("function");
      }
    }
  });

  it("should name what each application exports, with one subscription per handler method", () => {
    const module: Exports = applications;
    expect(registry.applications.length).toBeGreaterThan(0);
    for (const app of registry.applications) {
      const names = applicationNames(app.service.slice(app.service.lastIndexOf(".") + 1));
      expect(module[names.application], names.application).toBe(app);
      const exported = [
        ...(app.subscriptions.length > 0 ? [names.subscribe, names.subscribeAtLeastOnce] : []),
        ...(app.publishes.length > 0
          ? [names.bindPublisher, names.createPublisher, names.outbox]
          : []),
      ];
      for (const name of exported) {
        expect(typeof module[name], name).toBe("function");
      }
      const subscriptions = module[names.subscriptions] as Record<string, unknown>;
      expect(Object.keys(subscriptions)).toEqual(
        app.subscriptions.map((s) => handlerMethodName(s.rpc)),
      );
      for (const subscription of app.subscriptions) {
        expect(subscriptions[handlerMethodName(subscription.rpc)]).toBe(subscription);
      }
    }
  });

  it("should start a nested event's names from the shape name protoc-gen-es gives it", async () => {
    const request = await compileRequest({
      "shop/v1/shop.proto": `syntax = "proto3";
package shop.v1;
import "google/protobuf/empty.proto";
import "protoevents/v1/options.proto";
message Cart {
  message ItemAdded {
    option (protoevents.v1.event) = { topic: "shop.item-added" };
    optional string cart_id = 1 [(protoevents.v1.rules) = { required: true }];
  }
}
service CartService {
  option (protoevents.v1.application) = { name: "cart" publishes: ["shop.v1.Cart.ItemAdded"] };
  rpc CountItem(Cart.ItemAdded) returns (google.protobuf.Empty);
}
`,
    });
    const file = protocGenProtoevents
      .run(request)
      .file.find((f) => f.name === "shop/v1/shop_pe.ts");
    const text = file?.content ?? "";
    const event = eventNames("Cart_ItemAdded");
    const types = messageNames("Cart_ItemAdded");
    const app = applicationNames("CartService");
    expect(event.topicConstant).toBe("CART_ITEM_ADDED_TOPIC");
    for (const [declaration, name] of [
      ["const", event.topicConstant],
      ["const", event.typeConstant],
      ["const", event.contract],
      ["function", event.encode],
      ["function", event.decode],
      ["type", types.input],
      ["type", types.valid],
      ["function", types.validator],
      ["function", types.checker],
      ["const", app.subscriptions],
      ["const", app.application],
      ["interface", app.publisher],
      ["interface", app.handlers],
      ["function", app.outbox],
      ["function", app.subscribe],
      ["function", app.subscribeAtLeastOnce],
    ] as const) {
      expect(text).toMatch(new RegExp(`^export ${declaration} ${name}\\b`, "m"));
    }
    expect(text).toContain(`  ${event.publish}(event: ${types.input}`);
    expect(text).toContain(`  ${handlerMethodName("CountItem")}(event: ${types.valid}`);
  });

  it("should tell the modules protoc-gen-protoevents writes from others", () => {
    const doTest = (specifier: string, generated: boolean) =>
      expect(isGeneratedModule(specifier), specifier).toBe(generated);
    doTest("../../generated/checkout/v1/applications_pe.js", true);
    doTest("./shop_pe", true);
    doTest("./shop_pe.ts", true);
    doTest("../../generated/checkout/v1/applications_pb.js", false);
    doTest("./recipe.js", false);
    doTest("./shop_pe.json", false);
  });
});
