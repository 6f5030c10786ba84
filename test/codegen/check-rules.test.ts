import { create, createFileRegistry, type DescMessage } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { checkRules } from "../../codegen/src/release/check-rules.js";
import { goldenSample } from "../../codegen/src/release/golden-sample.js";
import { compileRequest } from "../helpers/compile-proto.js";

/**
 * The rule kinds the checkout's events do not use (the fuzz test compares
 * checkRules with the generated validators on those): lengths counted in
 * code points, bytes, explicit presence, maps, oneofs and the lower and
 * upper samples built from them.
 */
const source = `syntax = "proto3";
package lab.v1;
import "protoevents/v1/options.proto";
message Probe {
  option (protoevents.v1.event) = { topic: "lab.probe" };
  string code = 1 [(protoevents.v1.rules) = { min_len: 2, max_len: 4 }];
  bytes blob = 2 [(protoevents.v1.rules) = { min_len: 1, max_len: 3 }];
  optional int32 level = 3 [(protoevents.v1.rules) = { min: 1, max: 5 }];
  map<string, Part> parts = 4 [(protoevents.v1.rules) = { max_items: 2 }];
  oneof choice {
    string name = 5 [(protoevents.v1.rules) = { pattern: "^[a-z]+$" }];
    Part part = 6;
  }
  int32 count = 7 [(protoevents.v1.rules) = { min: 3 }];
}
message Part {
  string id = 1 [(protoevents.v1.rules) = { required: true }];
}
`;

async function probe(): Promise<DescMessage> {
  const request = await compileRequest({ "lab/v1/lab.proto": source });
  const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: request.protoFile }));
  const desc = registry.getMessage("lab.v1.Probe");
  if (desc === undefined) {
    throw new Error("lab.v1.Probe not compiled");
  }
  return desc;
}

const rules = (desc: DescMessage, message: Record<string, unknown>) =>
  checkRules(desc, create(desc, message as never)).map((v) => `${v.path} ${v.rule}`);

describe("checkRules", () => {
  it("should count string lengths in code points and check bytes, ranges, maps and oneof members", async () => {
    const desc = await probe();
    // Zero counts: min 3 applies to every value, zero included.
    expect(rules(desc, {})).toEqual(["count min"]);
    expect(rules(desc, { code: "😀😀", count: 3 })).toEqual([]);
    expect(rules(desc, { code: "😀", count: 3 })).toEqual(["code min_len"]);
    expect(rules(desc, { code: "abcde", count: 3 })).toEqual(["code max_len"]);
    expect(rules(desc, { blob: new Uint8Array(4), count: 3 })).toEqual(["blob max_len"]);
    // Explicit presence: unset is not checked, a set 0 is.
    expect(rules(desc, { level: 0, count: 3 })).toEqual(["level min"]);
    expect(
      rules(desc, {
        count: 3,
        parts: { a: { id: "1" }, b: { id: "" }, c: { id: "3" } },
      }),
    ).toEqual(["parts max_items", 'parts["b"].id required']);
    expect(rules(desc, { count: 3, choice: { case: "name", value: "Ab" } })).toEqual([
      "name pattern",
    ]);
    expect(rules(desc, { count: 3, choice: { case: "part", value: { id: "" } } })).toEqual([
      "part.id required",
    ]);
  });

  it("should build lower and upper samples that sit on the rules' edges and pass them", async () => {
    const desc = await probe();
    const lower = goldenSample(desc, "lower") as unknown as Record<string, unknown>;
    const upper = goldenSample(desc, "upper") as unknown as Record<string, unknown>;
    expect(checkRules(desc, lower)).toEqual([]);
    expect(checkRules(desc, upper)).toEqual([]);
    // What the rules let a producer leave out is left out; the rest sits at the minimum.
    expect(lower.code).toBe("");
    expect(lower.level).toBeUndefined();
    expect(lower.count).toBe(3);
    expect(lower.parts).toEqual({});
    // The maxima: 4 code points, 3 bytes, level 5, 2 map entries.
    expect([...(upper.code as string)]).toHaveLength(4);
    expect((upper.blob as Uint8Array).length).toBe(3);
    expect(upper.level).toBe(5);
    expect(Object.keys(upper.parts as object)).toHaveLength(2);
  });
});
