import { create, createFileRegistry, type DescFile } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import {
  CompatRule,
  compareContracts,
  nextVersionName,
} from "../../codegen/src/compat/compare-contracts.js";
import {
  type ContractSnapshot,
  snapshotContracts,
} from "../../codegen/src/compat/contract-snapshot.js";
import { formatLocation } from "../../codegen/src/location.js";
import { compileRequest } from "../helpers/compile-proto.js";

const header = `syntax = "proto3";
package shop.v1;
import "google/protobuf/empty.proto";
import "protoevents/v1/options.proto";
`;

/** An event, its options and fields, and a consumer: the parts each case edits. */
function contract(parts: {
  event?: string;
  fields?: string;
  rpc?: string;
  extra?: string;
  app?: string;
}): string {
  return `${header}
message ItemAdded {
  option (protoevents.v1.event) = {
    ${parts.event ?? 'topic: "shop.item-added" ordering_key: "cart_id" subject: "cart_id"'}
  };
  ${parts.fields ?? "string cart_id = 1 [(protoevents.v1.rules) = { max_len: 36 }];\n  int32 quantity = 2 [(protoevents.v1.rules) = { min: 1, max: 99 }];"}
}
message CartCleared {
  option (protoevents.v1.event) = { topic: "shop.cart-cleared" };
  string cart_id = 1;
}
${parts.extra ?? ""}
service StockService {
  option (protoevents.v1.application) = { ${parts.app ?? 'name: "stock"'} };
  ${parts.rpc ?? "rpc Reserve(ItemAdded) returns (google.protobuf.Empty);"}
}
`;
}

async function snapshot(source: string): Promise<ContractSnapshot> {
  const request = await compileRequest({ "shop/v1/shop.proto": source });
  const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: request.protoFile }));
  const files = request.fileToGenerate
    .map((name) => registry.getFile(name))
    .filter((f): f is DescFile => f !== undefined);
  return snapshotContracts(files, "proto/");
}

async function compare(before: string, after: string) {
  const [old, current] = await Promise.all([snapshot(before), snapshot(after)]);
  return compareContracts(old, current);
}

/** `rule file:line:column`, the shape the assertions read. */
async function doTest(
  before: Parameters<typeof contract>[0],
  after: Parameters<typeof contract>[0],
): Promise<string[]> {
  const findings = await compare(contract(before), contract(after));
  return findings.map(
    (f) => `${f.rule} ${f.location.file}:${f.location.line}:${f.location.column}`,
  );
}

describe("compareContracts", () => {
  it("should find nothing when the contracts are the same", async () => {
    expect(await doTest({}, {})).toEqual([]);
  });

  it("should report event-topic-changed at the topic when an event moves topic", async () => {
    expect(
      await doTest(
        {},
        { event: 'topic: "shop.cart-items" ordering_key: "cart_id" subject: "cart_id"' },
      ),
    ).toEqual(["event-topic-changed proto/shop/v1/shop.proto:8:5"]);
  });

  it("should report event-type-changed when the ce-type changes", async () => {
    expect(
      await doTest(
        {},
        {
          event:
            'topic: "shop.item-added" ordering_key: "cart_id" subject: "cart_id" type: "item.added"',
        },
      ),
    ).toEqual(["event-type-changed proto/shop/v1/shop.proto:8:73"]);
  });

  it("should report ordering-key-changed and subject-changed when both are removed", async () => {
    const findings = await compare(contract({}), contract({ event: 'topic: "shop.item-added"' }));
    expect(findings.map((f) => f.rule).sort()).toEqual([
      CompatRule.orderingKeyChanged,
      CompatRule.subjectChanged,
    ]);
    expect(findings[0]?.message).toContain('it was field "cart_id"');
  });

  it("should find nothing when an event without ordering key and subject gets them", async () => {
    const before = contract({});
    const after = before.replace(
      'option (protoevents.v1.event) = { topic: "shop.cart-cleared" };',
      'option (protoevents.v1.event) = { topic: "shop.cart-cleared" ordering_key: "cart_id" subject: "cart_id" };',
    );
    expect(await compare(before, after)).toEqual([]);
  });

  it.each([
    ["min_len raised", "{ min_len: 1 }", "{ min_len: 2 }", "min_len raised from 1 to 2"],
    ["max_len lowered", "{ max_len: 36 }", "{ max_len: 20 }", "max_len lowered from 36 to 20"],
    ["pattern added", "{}", '{ pattern: "^c-" }', 'pattern "^c-" added'],
    [
      "pattern changed",
      '{ pattern: "^c-" }',
      '{ pattern: "^cart-" }',
      'pattern changed from "^c-" to "^cart-"',
    ],
    ["required added", "{ max_len: 36 }", "{ required: true, max_len: 36 }", "required added"],
  ])("should report field-rule-narrowed when %s", async (_, before, after, description) => {
    const findings = await compare(
      contract({ fields: `string cart_id = 1 [(protoevents.v1.rules) = ${before}];` }),
      contract({ fields: `string cart_id = 1 [(protoevents.v1.rules) = ${after}];` }),
    );
    // Two patterns cannot be compared: a changed one is checked both ways.
    const loosenedToo = before.includes("pattern") && after.includes("pattern");
    expect(findings.map((f) => [f.rule, f.direction])).toEqual([
      ...(loosenedToo ? [[CompatRule.fieldRuleLoosened, "forward"]] : []),
      [CompatRule.fieldRuleNarrowed, "backward"],
    ]);
    const narrowed = findings.find((f) => f.rule === CompatRule.fieldRuleNarrowed);
    expect(narrowed?.message).toContain(description);
    expect(narrowed?.consumers).toEqual([
      { application: "stock", subscription: "stock.reserve", event: "shop.v1.ItemAdded" },
    ]);
    expect(narrowed?.field).toBe("shop.v1.ItemAdded.cart_id");
    expect(narrowed?.fix).toContain(
      "declare compatibility: COMPATIBILITY_FORWARD on shop.v1.ItemAdded",
    );
  });

  it.each([
    ["min raised", "{ min: 1, max: 99 }", "{ min: 2, max: 99 }"],
    ["max lowered", "{ min: 1, max: 99 }", "{ min: 1, max: 50 }"],
  ])("should report field-rule-narrowed when a number's %s", async (_, before, after) => {
    const findings = await compare(
      contract({
        fields: `string cart_id = 1;\n  int32 quantity = 2 [(protoevents.v1.rules) = ${before}];`,
      }),
      contract({
        fields: `string cart_id = 1;\n  int32 quantity = 2 [(protoevents.v1.rules) = ${after}];`,
      }),
    );
    expect(findings.map((f) => f.rule)).toEqual([CompatRule.fieldRuleNarrowed]);
  });

  it.each([
    ["min_items raised", "{ min_items: 1 }", "{ min_items: 2 }"],
    ["max_items lowered", "{ max_items: 10 }", "{ max_items: 5 }"],
  ])("should report field-rule-narrowed when a list's %s", async (_, before, after) => {
    const findings = await compare(
      contract({
        fields: `string cart_id = 1;\n  repeated string skus = 3 [(protoevents.v1.rules) = ${before}];`,
      }),
      contract({
        fields: `string cart_id = 1;\n  repeated string skus = 3 [(protoevents.v1.rules) = ${after}];`,
      }),
    );
    expect(findings.map((f) => f.rule)).toEqual([CompatRule.fieldRuleNarrowed]);
  });

  it("should report one forward field-rule-loosened finding naming every loosening when rules are loosened or removed", async () => {
    const findings = await compare(
      contract({
        fields:
          'string cart_id = 1 [(protoevents.v1.rules) = { required: true, min_len: 2, max_len: 36, pattern: "^c" }];',
      }),
      contract({
        fields: "string cart_id = 1 [(protoevents.v1.rules) = { min_len: 1, max_len: 64 }];",
      }),
    );
    expect(findings.map((f) => [f.rule, f.direction, formatLocation(f.location)])).toEqual([
      [CompatRule.fieldRuleLoosened, "forward", "proto/shop/v1/shop.proto:10:23"],
    ]);
    expect(findings[0]?.message).toContain(
      'required dropped, min_len lowered from 2 to 1, max_len raised from 36 to 64, pattern "^c" removed',
    );
    expect(findings[0]?.fix).toContain("keep required and min_len 2 and max_len 36 and pattern");
    expect(findings[0]?.fix).toContain(
      "declare compatibility: COMPATIBILITY_BACKWARD on shop.v1.ItemAdded (option (protoevents.v1.event)) and deploy the consumers first, then the producers",
    );
  });

  it.each([
    [
      "a number's max raised",
      "{ min: 1, max: 99 }",
      "{ min: 1, max: 500 }",
      "max raised from 99 to 500",
    ],
    [
      "a number's min lowered",
      "{ min: 1, max: 99 }",
      "{ min: 0, max: 99 }",
      "min lowered from 1 to 0",
    ],
    ["a range removed", "{ min: 1, max: 99 }", "{}", "min 1 removed, max 99 removed"],
  ])("should report field-rule-loosened when %s", async (_, before, after, description) => {
    const fields = (rule: string) =>
      `string cart_id = 1;\n  int32 quantity = 2 [(protoevents.v1.rules) = ${rule}];`;
    const findings = await compare(
      contract({ fields: fields(before) }),
      contract({ fields: fields(after) }),
    );
    expect(findings.map((f) => [f.rule, f.direction])).toEqual([
      [CompatRule.fieldRuleLoosened, "forward"],
    ]);
    expect(findings[0]?.message).toContain(description);
  });

  it("should report required-field-removed, forward, when a field the release requires is removed", async () => {
    const findings = await compare(
      contract({
        fields:
          "string cart_id = 1;\n  string sku = 2 [(protoevents.v1.rules) = { required: true }];\n  string note = 3;",
      }),
      contract({ fields: 'string cart_id = 1;\n  reserved 2, 3;\n  reserved "sku", "note";' }),
    );
    // sku was required; note had no rule, so losing it refuses nothing.
    expect(findings.map((f) => [f.rule, f.direction, f.field])).toEqual([
      [CompatRule.requiredFieldRemoved, "forward", "shop.v1.ItemAdded.sku"],
    ]);
    expect(findings[0]?.message).toContain("the release's consumers check required on it");
    expect(findings[0]?.producers).toEqual([]);
  });

  it("should report max-bytes-lowered backward and max-bytes-raised forward", async () => {
    const event = (bytes: number) =>
      `topic: "shop.item-added" ordering_key: "cart_id" subject: "cart_id" max_bytes: ${bytes}`;
    const lowered = await compare(
      contract({ event: event(4096) }),
      contract({ event: event(2048) }),
    );
    expect(lowered.map((f) => [f.rule, f.direction])).toEqual([
      [CompatRule.maxBytesLowered, "backward"],
    ]);
    const raised = await compare(
      contract({ event: event(4096) }),
      contract({ event: event(8192) }),
    );
    expect(raised.map((f) => [f.rule, f.direction])).toEqual([
      [CompatRule.maxBytesRaised, "forward"],
    ]);
    // Unset means the default (1 MiB): setting it to the default changes nothing.
    expect(await compare(contract({}), contract({ event: event(1_048_576) }))).toEqual([]);
  });

  it("should report subscription-filter-changed when another event joins or leaves the topic of a consumed event", async () => {
    const sibling =
      'message ItemRemoved {\n  option (protoevents.v1.event) = { topic: "shop.item-added" };\n  string cart_id = 1;\n}';
    const joined = await compare(contract({}), contract({ extra: sibling }));
    expect(joined.map((f) => [f.rule, f.direction, formatLocation(f.location)])).toEqual([
      [CompatRule.subscriptionFilterChanged, undefined, "proto/shop/v1/shop.proto:23:3"],
    ]);
    expect(joined[0]?.message).toContain(
      `would be provisioned with the filter "attributes.\\"ce-type\\" = \\"shop.v1.ItemAdded\\"" instead of "": another event now shares topic "shop.item-added"`,
    );
    expect(joined[0]?.fix).toContain("publish the new event on a topic of its own");
    const left = await compare(contract({ extra: sibling }), contract({}));
    expect(left.map((f) => f.rule)).toEqual([CompatRule.subscriptionFilterChanged]);
    expect(left[0]?.message).toContain("no longer shares topic");
    // A sibling on another topic changes no filter.
    expect(
      await compare(
        contract({}),
        contract({ extra: sibling.replace("shop.item-added", "shop.items-removed") }),
      ),
    ).toEqual([]);
  });

  it("should name the producers and mark event options both ways and subscription rules mode-free", async () => {
    const findings = await compare(
      contract({ app: 'name: "stock" publishes: ["shop.v1.ItemAdded"]' }),
      contract({
        app: 'name: "stock" publishes: ["shop.v1.ItemAdded"]',
        event: 'topic: "shop.items" ordering_key: "cart_id" subject: "cart_id"',
        rpc: "rpc Reserve(ItemAdded) returns (google.protobuf.Empty) { option (protoevents.v1.subscription) = { dead_letter: false }; }",
      }),
    );
    expect(findings.map((f) => [f.rule, f.direction, f.events, f.producers])).toEqual([
      [CompatRule.eventTopicChanged, "both", ["shop.v1.ItemAdded"], ["stock"]],
      [CompatRule.deadLetterDisabled, undefined, ["shop.v1.ItemAdded"], ["stock"]],
    ]);
  });

  it("should report a nested message's field once when an event carries it", async () => {
    const money = (rule: string) =>
      `message Money { string currency = 1 [(protoevents.v1.rules) = ${rule}]; }`;
    const fields = "string cart_id = 1;\n  Money price = 2;";
    const findings = await compare(
      contract({ fields, extra: money("{ max_len: 3 }") }),
      contract({ fields, extra: money('{ max_len: 3, pattern: "^[A-Z]{3}$" }') }),
    );
    expect(findings.map((f) => [f.rule, f.message.split(" accepts")[0]])).toEqual([
      [CompatRule.fieldRuleNarrowed, "field shop.v1.Money.currency (in shop.v1.ItemAdded)"],
    ]);
  });

  it("should report new-field-required when a field added to an existing event is required", async () => {
    expect(
      await doTest(
        { fields: "string cart_id = 1;" },
        {
          fields:
            "string cart_id = 1;\n  string sku = 2 [(protoevents.v1.rules) = { required: true }];",
        },
      ),
    ).toEqual(["new-field-required proto/shop/v1/shop.proto:11:46"]);
  });

  it("should report event-removed-while-consumed at the release's declaration when a consumed event is removed", async () => {
    const before = contract({ rpc: "rpc Clear(CartCleared) returns (google.protobuf.Empty);" });
    const after = contract({ rpc: "" }).replace(/message CartCleared \{[\s\S]*?\n\}\n/, "");
    const findings = await compare(before, after);
    expect(findings.map((f) => [f.rule, f.locationIn, f.location.line])).toEqual([
      [CompatRule.eventRemovedWhileConsumed, "release", 13],
    ]);
    expect(findings[0]?.consumers).toEqual([
      { application: "stock", subscription: "stock.clear", event: "shop.v1.CartCleared" },
    ]);
  });

  it("should find nothing when an event nobody consumes is removed", async () => {
    const before = contract({});
    const after = before.replace(/message CartCleared \{[\s\S]*?\n\}\n/, "");
    expect(await compare(before, after)).toEqual([]);
  });

  it("should report consumer-event-changed at the rpc's input when a subscription consumes another event", async () => {
    expect(
      await doTest({}, { rpc: "rpc Reserve(CartCleared) returns (google.protobuf.Empty);" }),
    ).toEqual(["consumer-event-changed proto/shop/v1/shop.proto:20:15"]);
  });

  it("should report dead-letter-disabled when a subscription turns dead-lettering off", async () => {
    const findings = await compare(
      contract({}),
      contract({
        rpc: "rpc Reserve(ItemAdded) returns (google.protobuf.Empty) {\n    option (protoevents.v1.subscription) = { dead_letter: false };\n  }",
      }),
    );
    expect(findings.map((f) => f.rule)).toEqual([CompatRule.deadLetterDisabled]);
    expect(findings[0]?.message).toContain("stock.reserve.dead-letter");
  });

  describe("subscriptions are contracts", () => {
    const renamed = "rpc ReserveStock(ItemAdded) returns (google.protobuf.Empty);";

    it("should report subscription-renamed at the new rpc when a rename changes the derived subscription id", async () => {
      const findings = await compare(contract({}), contract({ rpc: renamed }));
      expect(
        findings.map((f) => `${f.rule} ${f.location.file}:${f.location.line}:${f.location.column}`),
      ).toEqual(["subscription-renamed proto/shop/v1/shop.proto:20:3"]);
      expect(findings[0]?.message).toContain(
        "rpc StockService.ReserveStock takes over from rpc Reserve with subscription stock.reserve-stock instead of stock.reserve (derived from the rpc's name)",
      );
      expect(findings[0]?.fix).toContain(
        'keep the subscription: option (protoevents.v1.subscription) = { name: "stock.reserve" } on rpc ReserveStock',
      );
      expect(findings[0]?.consumers.map((c) => c.subscription)).toEqual([
        "stock.reserve",
        "stock.reserve-stock",
      ]);
    });

    it("should accept a rename that keeps the subscription's name, or retires the old one", async () => {
      expect(
        await doTest(
          {},
          {
            rpc: 'rpc ReserveStock(ItemAdded) returns (google.protobuf.Empty) {\n    option (protoevents.v1.subscription) = { name: "stock.reserve" };\n  }',
          },
        ),
      ).toEqual([]);
      expect(
        await doTest(
          {},
          { rpc: renamed, app: 'name: "stock" retired_subscriptions: ["stock.reserve"]' },
        ),
      ).toEqual([]);
    });

    it("should report consumer-removed at the application when a consumer rpc goes without being retired", async () => {
      const without = "rpc Clear(CartCleared) returns (google.protobuf.Empty);";
      const findings = await compare(contract({}), contract({ rpc: without }));
      expect(
        findings.map((f) => `${f.rule} ${f.location.file}:${f.location.line}:${f.location.column}`),
      ).toEqual(["consumer-removed proto/shop/v1/shop.proto:18:1"]);
      expect(findings[0]?.message).toContain(
        "rpc StockService.Reserve (subscription stock.reserve) was removed: its subscription keeps receiving shop.v1.ItemAdded events",
      );
      expect(findings[0]?.fix).toContain('add "stock.reserve" to retired_subscriptions');
      expect(
        await doTest(
          {},
          { rpc: without, app: 'name: "stock" retired_subscriptions: ["stock.reserve"]' },
        ),
      ).toEqual([]);
    });

    it("should report subscription-filter-changed and subscription-ordering-changed with the migration path", async () => {
      const findings = await compare(
        contract({}),
        contract({
          rpc: 'rpc Reserve(ItemAdded) returns (google.protobuf.Empty) {\n    option (protoevents.v1.subscription) = { filter: "attributes.region = \\"eu\\"" ordered: true };\n  }',
        }),
      );
      expect(findings.map((f) => f.rule).sort()).toEqual([
        CompatRule.subscriptionFilterChanged,
        CompatRule.subscriptionOrderingChanged,
      ]);
      for (const finding of findings) {
        expect(finding.fix).toContain(
          "add a new rpc (a new subscription) with the new setting, let both run, drain the old subscription",
        );
        expect(finding.location.line).toBe(21);
      }
    });
  });

  it("should find nothing when an event and a consumer rpc are added", async () => {
    expect(
      await doTest(
        {},
        {
          extra:
            'message ItemRemoved { option (protoevents.v1.event) = { topic: "shop.item-removed" }; string cart_id = 1; }',
          rpc: "rpc Reserve(ItemAdded) returns (google.protobuf.Empty);\n  rpc Release(ItemRemoved) returns (google.protobuf.Empty);",
        },
      ),
    ).toEqual([]);
  });
});

describe("nextVersionName", () => {
  it.each([
    ["checkout.v1.OrderPlaced", "checkout.v2.OrderPlaced"],
    ["acme.shop.v9.Cart", "acme.shop.v10.Cart"],
    ["shop.v1beta1.Cart", "shop.v2.Cart"],
    ["shop.Cart", "shop.v2.Cart"],
  ])("should name the next version of %s %s when asked for a fix", (name, next) => {
    expect(nextVersionName(name)).toBe(next);
  });
});
