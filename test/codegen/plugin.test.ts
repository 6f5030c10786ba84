import type { CodeGeneratorResponse } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { optionsProto } from "../../codegen/src/layout.js";
import { protocGenProtoevents } from "../../codegen/src/plugin.js";
import { Code, isProtoeventsError } from "../../runtime/src/errors.js";
import { compileRequest } from "../helpers/compile-proto.js";

const header = `syntax = "proto3";
package shop.v1;
import "google/protobuf/empty.proto";
import "protoevents/v1/options.proto";
`;

/** A valid event most cases start from. */
const cartEvent = `
message ItemAdded {
  option (protoevents.v1.event) = {
    topic: "shop.item-added"
    ordering_key: "cart_id"
    subject: "cart_id"
  };
  string cart_id = 1 [(protoevents.v1.rules) = { required: true, max_len: 36 }];
  int32 quantity = 2 [(protoevents.v1.rules) = { min: 1, max: 99 }];
}
`;

async function generate(source: string, parameter?: string): Promise<CodeGeneratorResponse> {
  const request = await compileRequest({ "shop/v1/shop.proto": header + source }, parameter);
  return protocGenProtoevents.run(request);
}

function fileContent(response: CodeGeneratorResponse, name: string): string {
  const file = response.file.find((f) => f.name === name);
  if (file === undefined) {
    throw new Error(`no ${name} in ${response.file.map((f) => f.name).join(", ")}`);
  }
  return file.content;
}

/** Generate and return the thrown contract error's message. */
async function refusal(source: string): Promise<string> {
  try {
    await generate(source);
  } catch (error) {
    expect(isProtoeventsError(error)).toBe(true);
    expect((error as { code: Code }).code).toBe(Code.InvalidContract);
    return (error as Error).message;
  }
  throw new Error("the plugin accepted a contract that cannot work");
}

/** Line number (1-based) of the first line of the whole test file containing `needle`. */
function lineOf(source: string, needle: string): number {
  const lines = (header + source).split("\n");
  const index = lines.findIndex((line) => line.includes(needle));
  expect(index, `"${needle}" is in the source`).toBeGreaterThanOrEqual(0);
  return index + 1;
}

function columnOf(source: string, needle: string): number {
  const line = (header + source).split("\n")[lineOf(source, needle) - 1] ?? "";
  return line.indexOf(needle) + 1;
}

describe("protoc-gen-protoevents contract errors", () => {
  async function doTest(
    source: string,
    rule: string,
    at: string,
    message: RegExp,
    fix: RegExp,
  ): Promise<void> {
    const text = await refusal(source);
    const location = `shop/v1/shop.proto:${lineOf(source, at)}:${columnOf(source, at)}`;
    expect(text).toContain(`${location}: ${rule}: `);
    const line = text.split("\n").find((l) => l.startsWith(location)) ?? "";
    expect(line).toMatch(message);
    const fixLine = text.split("\n")[text.split("\n").indexOf(line) + 1] ?? "";
    expect(fixLine).toMatch(/^\s+fix: /);
    expect(fixLine).toMatch(fix);
  }

  it("should refuse an ordering key that is not a field", async () => {
    await doTest(
      cartEvent.replace('ordering_key: "cart_id"', 'ordering_key: "cart"'),
      "ordering-key-missing",
      'ordering_key: "cart"',
      /names ordering_key "cart", which is not a field/,
      /cart_id, quantity/,
    );
  });

  it("should refuse an ordering key that is not a scalar", async () => {
    await doTest(
      `${cartEvent.replace('ordering_key: "cart_id"', 'ordering_key: "tags"').replace("int32 quantity", "repeated string tags = 3;\n  int32 quantity")}`,
      "ordering-key-not-scalar",
      'ordering_key: "tags"',
      /uses tags as ordering_key, but it is a repeated string field/,
      /top-level string or integer field/,
    );
  });

  it("should refuse a subject that is not a field", async () => {
    await doTest(
      cartEvent.replace('subject: "cart_id"', 'subject: "cart_ids"'),
      "subject-missing",
      'subject: "cart_ids"',
      /names subject "cart_ids"/,
      /cart_id/,
    );
  });

  it("should refuse two events on one topic that consumers cannot tell apart", async () => {
    const source = `${cartEvent}
message ItemRemoved {
  option (protoevents.v1.event) = {
    topic: "shop.item-added"
    type: "shop.v1.ItemAdded"
  };
  string cart_id = 1;
}
`;
    await doTest(
      source,
      "event-type-ambiguous",
      'type: "shop.v1.ItemAdded"',
      /ItemAdded and shop\.v1\.ItemRemoved are both published on topic shop\.item-added with ce-type "shop\.v1\.ItemAdded"/,
      /distinct type .* or its own topic/,
    );
  });

  it("should refuse an event without a topic", async () => {
    await doTest(
      cartEvent.replace('topic: "shop.item-added"\n', ""),
      "event-topic-missing",
      "(protoevents.v1.event) = {",
      /has no topic/,
      /add topic: "shop\.item-added"/,
    );
  });

  it("should refuse a topic id Pub/Sub does not accept", async () => {
    await doTest(
      cartEvent.replace('topic: "shop.item-added"', 'topic: "goog-items"'),
      "event-topic-invalid",
      'topic: "goog-items"',
      /not a valid Pub\/Sub topic id/,
      /not starting with goog/,
    );
  });

  it("should refuse max delivery attempts outside 5 to 100", async () => {
    const source = `${cartEvent}
service CartService {
  option (protoevents.v1.application) = { name: "cart" };
  rpc CountItem(ItemAdded) returns (google.protobuf.Empty) {
    option (protoevents.v1.subscription) = { max_delivery_attempts: 3 };
  }
}
`;
    await doTest(
      source,
      "delivery-attempts-range",
      "max_delivery_attempts: 3",
      /rpc CartService\.CountItem sets max_delivery_attempts 3; Pub\/Sub allows 5 to 100/,
      /between 5 and 100 \(5 is the nearest\)/,
    );
  });

  it("should refuse a consumer rpc whose input is not an event", async () => {
    const source = `${cartEvent}
message Ping { string id = 1; }
service CartService {
  option (protoevents.v1.application) = { name: "cart" };
  rpc OnPing(Ping) returns (google.protobuf.Empty);
}
`;
    await doTest(
      source,
      "consumer-input-not-event",
      "Ping) returns",
      /rpc CartService\.OnPing consumes shop\.v1\.Ping, which is not an event/,
      /add option \(protoevents\.v1\.event\) to shop\.v1\.Ping/,
    );
  });

  it("should refuse a consumer rpc that returns something", async () => {
    const source = `${cartEvent}
service CartService {
  option (protoevents.v1.application) = { name: "cart" };
  rpc CountItem(ItemAdded) returns (ItemAdded);
}
`;
    await doTest(
      source,
      "consumer-output-not-empty",
      "ItemAdded);",
      /returns shop\.v1\.ItemAdded/,
      /google\.protobuf\.Empty/,
    );
  });

  it("should refuse a field rule on a field of the wrong type", async () => {
    await doTest(
      cartEvent.replace("{ min: 1, max: 99 }", '{ pattern: "^[0-9]+$" }'),
      "rule-type-mismatch",
      'pattern: "^[0-9]+$"',
      /field shop\.v1\.ItemAdded\.quantity is an int32 field; rule pattern applies to string fields/,
      /remove pattern/,
    );
  });

  it("should refuse min_items on a singular field", async () => {
    await doTest(
      cartEvent.replace("{ required: true, max_len: 36 }", "{ min_items: 1 }"),
      "rule-type-mismatch",
      "min_items: 1",
      /is a string field; rule min_items applies to repeated and map fields/,
      /remove min_items/,
    );
  });

  it("should refuse a pattern that is not a regular expression", async () => {
    await doTest(
      cartEvent.replace("{ required: true, max_len: 36 }", '{ pattern: "([a-z" }'),
      "rule-pattern-invalid",
      'pattern: "([a-z"',
      /not a valid regular expression/,
      /ECMAScript regular expression/,
    );
  });

  it("should refuse a pattern that can backtrack super-linearly where the linear engine cannot run it", async () => {
    await doTest(
      cartEvent.replace("{ required: true, max_len: 36 }", '{ pattern: "^(a+)+\\\\1$" }'),
      "rule-pattern-unsafe",
      'pattern: "^(a+)+',
      /can take time super-linear in the length of a value \(exponential backtracking on a long run of "a"\), and the linear-time engine that would run it instead cannot run the backreference \\1: one crafted value could stall every consumer/,
      /no two quantifiers can match the same characters/,
    );
  });

  it("should refuse a max_bytes above what Pub/Sub accepts in a message", async () => {
    await doTest(
      cartEvent.replace('subject: "cart_id"', 'subject: "cart_id"\n    max_bytes: 20000000'),
      "event-max-bytes-invalid",
      "max_bytes: 20000000",
      /max_bytes 20000000, above the 10000000 bytes Pub\/Sub accepts in a message/,
      /at most 10000000, or leave it out for 1048576/,
    );
  });

  it("should refuse a range no value can pass", async () => {
    await doTest(
      cartEvent.replace("{ min: 1, max: 99 }", "{ min: 10, max: 2 }"),
      "rule-range-invalid",
      "min: 10",
      /min 10 above max 2/,
      /make min at most max/,
    );
  });

  it("should refuse required on a bool without presence", async () => {
    await doTest(
      cartEvent.replace(
        "int32 quantity",
        "bool gift = 3 [(protoevents.v1.rules) = { required: true }];\n  int32 quantity",
      ),
      "rule-required-unsupported",
      "required: true }];\n".trim(),
      /is a bool without presence/,
      /enum/,
    );
  });

  it("should refuse an ordered subscription on an event without ordering key", async () => {
    const source = `${cartEvent.replace('ordering_key: "cart_id"\n', "")}
service CartService {
  option (protoevents.v1.application) = { name: "cart" };
  rpc CountItem(ItemAdded) returns (google.protobuf.Empty) {
    option (protoevents.v1.subscription) = { ordered: true };
  }
}
`;
    await doTest(
      source,
      "ordered-without-key",
      "ordered: true",
      /has no ordering key/,
      /declare ordering_key/,
    );
  });

  it("should refuse backoff bounds in the wrong order", async () => {
    const source = `${cartEvent}
service CartService {
  option (protoevents.v1.application) = { name: "cart" };
  rpc CountItem(ItemAdded) returns (google.protobuf.Empty) {
    option (protoevents.v1.subscription) = { min_backoff_seconds: 60 max_backoff_seconds: 10 };
  }
}
`;
    await doTest(
      source,
      "backoff-range",
      "min_backoff_seconds: 60",
      /min_backoff_seconds 60 above max_backoff_seconds 10/,
      /at most/,
    );
  });

  it.each([
    [
      "an expiry past Pub/Sub's 365 days",
      "expiration_ttl_days: 400",
      "expiration-range",
      /expiration_ttl_days 400; Pub\/Sub allows 1 to 365 days/,
      /leave it out so the subscription never expires/,
    ],
    [
      "an expiry not longer than the retention",
      "expiration_ttl_days: 7",
      "expiration-range",
      /expiration_ttl_days 7, not longer than its message retention \(604800 s\)/,
      /set expiration_ttl_days above 7/,
    ],
    [
      "a retention under 10 minutes",
      "message_retention_seconds: 60",
      "retention-range",
      /message_retention_seconds 60; Pub\/Sub allows 600/,
      /between 600 and 604800/,
    ],
  ])("should refuse %s at its option", async (_case, option, rule, message, fix) => {
    const source = `${cartEvent}
service CartService {
  option (protoevents.v1.application) = { name: "cart" };
  rpc CountItem(ItemAdded) returns (google.protobuf.Empty) {
    option (protoevents.v1.subscription) = { ${option} };
  }
}
`;
    await doTest(source, rule, option, message, fix);
  });

  it("should refuse a topic retention past Pub/Sub's 31 days at the event's option", async () => {
    await doTest(
      cartEvent.replace(
        'ordering_key: "cart_id"',
        'ordering_key: "cart_id"\n    message_retention_seconds: 9999999',
      ),
      "retention-range",
      "message_retention_seconds: 9999999",
      /sets message_retention_seconds 9999999; Pub\/Sub keeps a topic's messages 600 \(10 minutes\) to 2678400 \(31 days\) seconds/,
      /between 600 and 2678400/,
    );
  });

  it("should refuse a retired subscription that an rpc still consumes", async () => {
    const source = `${cartEvent}
service CartService {
  option (protoevents.v1.application) = { name: "cart" retired_subscriptions: ["cart.count-item"] };
  rpc CountItem(ItemAdded) returns (google.protobuf.Empty);
}
`;
    await doTest(
      source,
      "retired-subscription-in-use",
      'retired_subscriptions: ["cart.count-item"]',
      /application cart lists cart\.count-item in retired_subscriptions, but rpc CartService\.CountItem still consumes it/,
      /remove "cart\.count-item" from retired_subscriptions/,
    );
  });

  it("should refuse two files of one package that set different compatibility defaults", async () => {
    const defaults = (mode: string) =>
      `${header}option (protoevents.v1.defaults) = {compatibility: COMPATIBILITY_${mode}};\n`;
    const request = await compileRequest({
      "shop/v1/cart.proto": `${defaults("BACKWARD")}${cartEvent}`,
      "shop/v1/order.proto": `${defaults("FULL")}message OrderPlaced {\n  option (protoevents.v1.event) = { topic: "shop.order-placed" };\n  string order_id = 1;\n}\n`,
    });
    let text = "";
    try {
      await protocGenProtoevents.run(request);
    } catch (error) {
      expect(isProtoeventsError(error)).toBe(true);
      text = (error as Error).message;
    }
    // The option is line 5 of order.proto; its value starts at column 37.
    expect(text).toContain(
      "shop/v1/order.proto:5:37: package-defaults-conflict: file shop/v1/order.proto sets compatibility FULL for package shop.v1, but shop/v1/cart.proto sets BACKWARD: a package has one default",
    );
    expect(text).toContain("set the same compatibility in both files, or set it in one file only");
    // Agreeing files, or one file only, generate.
    const agreeing = await compileRequest({
      "shop/v1/cart.proto": `${defaults("BACKWARD")}${cartEvent}`,
      "shop/v1/order.proto": `${header}message OrderPlaced {\n  option (protoevents.v1.event) = { topic: "shop.order-placed" };\n  string order_id = 1;\n}\n`,
    });
    const response = await protocGenProtoevents.run(agreeing);
    expect(response.file.length).toBeGreaterThan(0);
  });

  it("should refuse two rpcs that share a subscription id", async () => {
    const source = `${cartEvent}
service CartService {
  option (protoevents.v1.application) = { name: "cart" };
  rpc CountItem(ItemAdded) returns (google.protobuf.Empty);
}
service CartAuditService {
  option (protoevents.v1.application) = { name: "cart" };
  rpc CountItem(ItemAdded) returns (google.protobuf.Empty);
}
`;
    const text = await refusal(source);
    expect(text).toMatch(
      /subscription-name-duplicate: rpc CartAuditService\.CountItem and rpc CartService\.CountItem both use subscription id "cart\.count-item"/,
    );
  });

  it("should refuse publishing an event that does not exist, suggesting the full name", async () => {
    const source = `${cartEvent}
service CartService {
  option (protoevents.v1.application) = { name: "cart" publishes: ["ItemAdded"] };
}
`;
    await doTest(
      source,
      "publishes-unknown",
      "publishes: [",
      /publishes "ItemAdded", which is not an event/,
      /shop\.v1\.ItemAdded/,
    );
  });

  it("should list every finding at once, sorted by location", async () => {
    const text = await refusal(
      cartEvent
        .replace('ordering_key: "cart_id"', 'ordering_key: "nope"')
        .replace("{ min: 1, max: 99 }", "{ max_len: 3 }"),
    );
    expect(text).toMatch(/^\[invalid_contract\] 2 contract errors:\n/);
    const lines = text.split("\n").filter((l) => l.startsWith("shop/"));
    expect(lines.map((l) => l.split(": ")[1])).toEqual([
      "ordering-key-missing",
      "rule-type-mismatch",
    ]);
  });

  it("should prefix locations with path_prefix", async () => {
    const request = await compileRequest(
      {
        "shop/v1/shop.proto": header + cartEvent.replace('topic: "shop.item-added"', 'topic: "x"'),
      },
      "target=ts,path_prefix=proto/",
    );
    expect(() => protocGenProtoevents.run(request)).toThrow(
      /proto\/shop\/v1\/shop\.proto:\d+:\d+: event-topic-invalid/,
    );
  });
});

describe("protoc-gen-protoevents parameters", () => {
  it("should reject an unknown parameter", async () => {
    await expect(generate(cartEvent, "target=ts,colour=blue")).rejects.toThrow(
      'invalid option "colour=blue": unknown option; protoc-gen-protoevents accepts runtime and path_prefix',
    );
  });

  it("should reject a malformed runtime", async () => {
    await expect(generate(cartEvent, "target=ts,runtime=")).rejects.toThrow(
      /invalid option "runtime=": must be a module specifier/,
    );
  });

  it("should reject a path_prefix without a trailing slash", async () => {
    await expect(generate(cartEvent, "target=ts,path_prefix=proto")).rejects.toThrow(
      /must end with \//,
    );
  });

  it("should import the runtime from the runtime parameter", async () => {
    const response = await generate(cartEvent, "target=ts,runtime=@acme/events-runtime");
    expect(fileContent(response, "shop/v1/shop_pe.ts")).toContain('from "@acme/events-runtime";');
  });
});

describe("protoc-gen-protoevents output", () => {
  const source = `${cartEvent}
service CartService {
  option (protoevents.v1.application) = { name: "cart" publishes: ["shop.v1.ItemAdded"] };
  // Counts items per cart.
  rpc CountItem(ItemAdded) returns (google.protobuf.Empty) {
    option (protoevents.v1.subscription) = { max_delivery_attempts: 7 ordered: true };
  }
}
`;

  it("should mark every file as generated", async () => {
    const response = await generate(source);
    for (const file of response.file) {
      expect(file.content.split("\n")[0]).toMatch(
        /^\/\/ @generated by protoc-gen-protoevents v\d+\.\d+\.\d+ with parameter "target=ts,import_extension=js"$/,
      );
    }
    expect(response.file.map((f) => f.name).sort()).toEqual([
      "protoevents_registry.ts",
      "shop/v1/shop_pe.ts",
    ]);
  });

  it("should emit topic and type constants and the event contract", async () => {
    const lines = fileContent(await generate(source), "shop/v1/shop_pe.ts").split("\n");
    expect(lines).toContain('export const ITEM_ADDED_TOPIC = "shop.item-added";');
    expect(lines).toContain('export const ITEM_ADDED_TYPE = "shop.v1.ItemAdded";');
    expect(lines).toContain("  orderingKey: (event) => event.cartId,");
    expect(lines).toContain('  orderingKeyField: "cart_id",');
    expect(lines).toContain("  validate: validateItemAdded,");
  });

  it("should emit a validator with one check per rule", async () => {
    const lines = fileContent(await generate(source), "shop/v1/shop_pe.ts").split("\n");
    expect(lines).toContain(
      '      (out ??= []).push({ path: path + "cart_id", rule: "required", message: "is required" });',
    );
    expect(lines).toContain("    if (v < 1) {");
    expect(lines).toContain("    if (v > 99) {");
  });

  it("should emit a handler interface, subscribe functions with and without a store, and a typed publisher", async () => {
    const text = fileContent(await generate(source), "shop/v1/shop_pe.ts");
    expect(text).toContain("export interface CartServiceHandlers<Context = CartServiceContext> {");
    expect(text).toContain(
      "  countItem(event: ItemAdded, context: HandlerContext<typeof ItemAddedSchema> & Context): Promise<void> | void;",
    );
    expect(text).toContain("Counts items per cart.");
    expect(text).toContain(
      "Subscription `cart.count-item`: 7 delivery attempts, ack deadline 60 s, backoff 10–600 s, ordered, dead letters to `cart.count-item.dead-letter`.",
    );
    expect(text).toContain(
      "export function subscribeCartService<DB>(pubsub: PubSub, handlers: CartServiceHandlers<CartServiceContext<DB>>, options: ConsumerOptions & { readonly store: Store<DB> }): Consumer {",
    );
    expect(text).toContain(
      "    bindHandler(CartServiceSubscriptions.countItem, (event, c) => handlers.countItem(event as ItemAdded, withTransaction(c, context))),",
    );
    expect(text).toContain(
      'export function subscribeCartServiceAtLeastOnce(pubsub: PubSub, handlers: CartServiceHandlers<CartServiceAtLeastOnceContext>, options?: Omit<ConsumerOptions, "store">): Consumer {',
    );
    expect(text).toContain(
      "  publishItemAdded(event: ItemAddedInput, options?: PublishOptions): Promise<PublishResult>;",
    );
    expect(text).toContain("export function createCartServicePublisher(");
    expect(text).toContain(
      "export function cartServiceOutbox<DB>(tx: StoreTransaction<DB>): CartServicePublisher {",
    );
    expect(text).toContain('  return bindCartServicePublisher(createOutboxSink(tx, "cart"));');
  });

  it("should make required fields mandatory in the producer input", async () => {
    const text = fileContent(await generate(source), "shop/v1/shop_pe.ts");
    expect(text).toMatch(
      /export type ItemAddedInput =\n {2}\| ItemAdded\n {2}\| \(Exclude<MessageInitShape<typeof ItemAddedSchema>, ItemAdded> & \{\n {6}cartId: string;\n {4}\}\);/,
    );
  });

  it("should add a ce-type filter to subscriptions on a shared topic", async () => {
    const shared = `${cartEvent}
message CartCleared {
  option (protoevents.v1.event) = { topic: "shop.item-added" };
  string cart_id = 1;
}
service CartService {
  option (protoevents.v1.application) = { name: "cart" };
  rpc CountItem(ItemAdded) returns (google.protobuf.Empty) {
    option (protoevents.v1.subscription) = { filter: "attributes.region = \\"eu\\"" };
  }
}
`;
    const text = fileContent(await generate(shared), "shop/v1/shop_pe.ts");
    expect(text).toContain(
      `    filter: "(attributes.region = \\"eu\\") AND attributes.\\"ce-type\\" = \\"shop.v1.ItemAdded\\"",`,
    );
    expect(text).toContain('    siblingTypes: ["shop.v1.CartCleared"],');
  });

  it("should list every event and application in the registry", async () => {
    const text = fileContent(await generate(source), "protoevents_registry.ts");
    expect(text).toContain(
      "export const registry: ContractRegistry = /*@__PURE__*/ defineRegistry({",
    );
    expect(text).toMatch(/events: \[\n {4}ItemAddedEvent,\n {2}\],/);
    expect(text).toMatch(/applications: \[\n {4}CartServiceApplication,\n {2}\],/);
  });
});

describe("protoc-gen-protoevents pattern rules", () => {
  it("should match a pattern that can backtrack super-linearly with the linear-time engine, and one that cannot with RegExp", async () => {
    const source = cartEvent
      .replace("{ required: true, max_len: 36 }", '{ max_len: 36, pattern: "^(\\\\w+\\\\s?)*$" }')
      .replace(
        "int32 quantity = 2",
        'string sku = 3 [(protoevents.v1.rules) = { pattern: "^[A-Z]{3}$" }];\n  int32 quantity = 2',
      );
    const code = fileContent(await generate(source), "shop/v1/shop_pe.ts");
    expect(code).toContain(
      'const PATTERN_ItemAdded_cart_id = /*@__PURE__*/ linearPattern("^(?:(?:(?:\\\\w)+',
    );
    expect(code).toMatch(/import \{[^}]*\blinearPattern\b[^}]*\} from "@protoevents\/runtime";/);
    expect(code).toContain(
      'const PATTERN_ItemAdded_sku = /*@__PURE__*/ new RegExp("^[A-Z]{3}$", "u");',
    );
    expect(code).toContain("  maxBytes: 1048576,");
    // A value over max_len never reaches the pattern.
    expect(code).toContain("} else if (!PATTERN_ItemAdded_cart_id.test(v)) {");
  });
});

describe("protoc-gen-protoevents with options moved to other extension numbers", () => {
  it("should read events, rules and their locations through the contracts' own options.proto", async () => {
    const moved = optionsProto(60500);
    const source = `${cartEvent}
service CartService {
  option (protoevents.v1.application) = { name: "cart" };
  rpc CountItem(ItemAdded) returns (google.protobuf.Empty) {
    option (protoevents.v1.subscription) = { max_delivery_attempts: 7 };
  }
}
`;
    const request = await compileRequest(
      { "shop/v1/shop.proto": header + source },
      undefined,
      moved,
    );
    const events = fileContent(protocGenProtoevents.run(request), "shop/v1/shop_pe.ts");
    expect(events).toContain('export const ITEM_ADDED_TOPIC = "shop.item-added";');
    expect(events).toContain('rule: "max_len"');
    expect(events).toContain("maxDeliveryAttempts: 7");

    // A broken rule is located through the moved numbers too.
    const broken = source.replace("max_delivery_attempts: 7", "max_delivery_attempts: 700");
    const refused = await compileRequest(
      { "shop/v1/shop.proto": header + broken },
      undefined,
      moved,
    );
    let message = "";
    try {
      protocGenProtoevents.run(refused);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain(
      `shop/v1/shop.proto:${lineOf(broken, "max_delivery_attempts: 700")}:${columnOf(broken, "max_delivery_attempts: 700")}: `,
    );
  });
});
