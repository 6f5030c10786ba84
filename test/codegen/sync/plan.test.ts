import { describe, expect, it } from "vitest";
import { type PlanSyncInput, planSync, type SyncEdit } from "../../../codegen/src/sync/plan.js";
import type { HandlerRpc, HandlerSpec } from "../../../codegen/src/sync/sync-services.js";

/**
 * The planner on sources held in memory, under a directory that does not
 * exist: no buf, no disk, no type checking.
 */
const DIR = "/nowhere/services";

/** A consumer rpc of the payment application. */
function rpc(name: string, deadLetter = true): HandlerRpc {
  const kebab = name.replace(/[A-Z]/g, (c, i: number) => (i === 0 ? "" : "-") + c.toLowerCase());
  return {
    method: name.charAt(0).toLowerCase() + name.slice(1),
    rpc: name,
    subscription: `payment.${kebab}`,
    event: "checkout.v1.OrderPlaced",
    deadLetterTopic: deadLetter ? `payment.${kebab}.dead-letter` : undefined,
  };
}

const PAYMENT: HandlerSpec = {
  interfaceName: "PaymentServiceHandlers",
  serviceName: "PaymentService",
  application: "payment",
  rpcs: [rpc("ChargeOrder"), rpc("VoidCharge")],
};

const GENERATED = `import type { PaymentServiceHandlers } from "../generated/checkout/v1/applications_pe.js";`;

function plan(files: Record<string, string>, overrides: Partial<PlanSyncInput> = {}) {
  return planSync({
    sources: Object.entries(files).map(([name, text]) => ({ path: `${DIR}/${name}`, text })),
    specs: [PAYMENT],
    servicesDirs: [DIR],
    cwd: "/nowhere",
    ...overrides,
  });
}

/** The text with the edits made, as the plan means them (later edits at one position after earlier ones). */
function edited(text: string, edits: readonly SyncEdit[]): string {
  const ordered = edits.map((e, i) => ({ ...e, i })).sort((a, b) => b.start - a.start || b.i - a.i);
  return ordered.reduce((t, e) => t.slice(0, e.start) + e.text + t.slice(e.end), text);
}

/** The only file the plan edits, made. */
function onlyFile(result: ReturnType<typeof plan>) {
  expect(result.files).toHaveLength(1);
  const [file] = result.files;
  if (file === undefined) {
    throw new Error("no file planned");
  }
  return { ...file, after: edited(file.text, file.edits) };
}

const stub = (
  indent: string,
  method: string,
  names = { error: "ProtoeventsError", code: "Code" },
) =>
  `${indent}async ${method}(_event, _context) {\n${indent}  throw new ${names.error}(\n${indent}    ${names.code}.HandlerFailed,\n`;

describe("planSync", () => {
  it("should plan nothing and note nothing when every rpc has a handler, however it is written", () => {
    const result = plan({
      "payment.ts": `${GENERATED}
export const handlers: PaymentServiceHandlers = {
  chargeOrder() {},
  "voidCharge": async () => {},
};
`,
    });
    expect(result).toEqual({ files: [], notes: [], implementations: 1 });
  });

  it("should plan a stub for the missing handler and keep the existing one when an rpc has none", () => {
    const text = `${GENERATED}
import { Code, ProtoeventsError } from "@protoevents/runtime";

export function createHandlers(): PaymentServiceHandlers {
  return {
    async chargeOrder() {},
  };
}
`;
    const file = onlyFile(plan({ "payment.ts": text }));
    expect(file.file).toBe("services/payment.ts");
    expect(file.text).toBe(text);
    expect(file.stubs).toEqual([
      { interfaceName: "PaymentServiceHandlers", rpc: rpc("VoidCharge"), implementation: 0 },
    ]);
    expect(file.runtimeImport).toEqual({
      kind: "reuse",
      specifier: "@protoevents/runtime",
      added: [],
      code: "Code",
      error: "ProtoeventsError",
    });
    const at = text.indexOf("  };\n}");
    expect(file.after).toBe(
      `${text.slice(0, at)}    async voidCharge(_event, _context) {
      throw new ProtoeventsError(
        Code.HandlerFailed,
        "not implemented: PaymentService.VoidCharge (subscription payment.void-charge, event checkout.v1.OrderPlaced) has no handler yet. protoevents sync added this stub when the contract gained the rpc: implement it; until then every delivery fails and is retried, then dead-lettered to payment.void-charge.dead-letter.",
      );
    },
${text.slice(at)}`,
    );
  });

  it("should end the stub's message at the retries when the subscription has no dead-letter topic", () => {
    const file = onlyFile(
      plan(
        {
          "payment.ts": `${GENERATED}\nexport const h: PaymentServiceHandlers = {\n  chargeOrder() {},\n};\n`,
        },
        { specs: [{ ...PAYMENT, rpcs: [rpc("ChargeOrder"), rpc("VoidCharge", false)] }] },
      ),
    );
    expect(file.after).toContain(
      'until then every delivery fails and is retried.",\n    );\n  },\n};\n',
    );
    expect(file.after).not.toContain("dead-lettered");
  });

  it("should add the missing comma and stub every missing rpc in order, in each implementing literal", () => {
    const text = `${GENERATED}
import { Code, ProtoeventsError } from "@protoevents/runtime";
export const a = { chargeOrder() {} } satisfies PaymentServiceHandlers;
export const b: PaymentServiceHandlers = {
\tchargeOrder() {}
};
`;
    const result = plan(
      { "payment.ts": text },
      {
        specs: [
          { ...PAYMENT, rpcs: [rpc("ChargeOrder"), rpc("VoidCharge"), rpc("CaptureCharge")] },
        ],
      },
    );
    const file = onlyFile(result);
    expect(file.stubs.map((s) => [s.implementation, s.rpc.method])).toEqual([
      [0, "voidCharge"],
      [0, "captureCharge"],
      [1, "voidCharge"],
      [1, "captureCharge"],
    ]);
    // A one-line literal opens up (the space before its brace stays, as every
    // byte does); a multi-line one gets stubs indented like its members.
    expect(file.after).toContain(
      `export const a = { chargeOrder() {}, \n${stub("  ", "voidCharge")}`,
    );
    expect(file.after).toContain(`\n  },\n${stub("  ", "captureCharge")}`);
    expect(file.after).toContain(`\tchargeOrder() {},\n${stub("\t", "voidCharge")}`);
    expect(file.after).toMatch(/\n {2}\},\n\} satisfies PaymentServiceHandlers;\n/);
    expect(result.implementations).toBe(2);
  });

  it("should find literals returned, assigned and checked with satisfies, also behind an aliased import", () => {
    const result = plan({
      "forms.ts": `import type { PaymentServiceHandlers as Handlers } from "./gen/applications_pe";
import { Code, ProtoeventsError } from "@protoevents/runtime";
export const arrow = (): Handlers => ({ chargeOrder() {} });
export function returned(): Handlers {
  function inner() {
    return { notAHandler: 1 };
  }
  inner();
  return { chargeOrder() {} };
}
export const typed: Handlers = { chargeOrder() {} };
export const checked = { chargeOrder() {} } satisfies Handlers;
export const asserted = { chargeOrder() {} } as Handlers;
export const untyped = { chargeOrder() {} };
`,
    });
    expect(result.implementations).toBe(4);
    const file = onlyFile(result);
    expect(file.stubs.map((s) => s.implementation)).toEqual([0, 1, 2, 3]);
    expect(file.after).toContain("export const asserted = { chargeOrder() {} } as Handlers;\n");
    expect(file.after).toContain("export const untyped = { chargeOrder() {} };\n");
    expect(file.after).toContain("return { notAHandler: 1 };\n");
  });

  it("should merge the missing names into a one-line import of the runtime in Biome's order", () => {
    const file = onlyFile(
      plan({
        "payment.ts": `${GENERATED}
import { PermanentError } from "@protoevents/runtime";
export const h: PaymentServiceHandlers = { chargeOrder() {} };
`,
      }),
    );
    expect(file.runtimeImport).toMatchObject({
      kind: "merge",
      specifier: "@protoevents/runtime",
      added: ["Code", "ProtoeventsError"],
    });
    expect(file.after).toContain(
      `import { Code, PermanentError, ProtoeventsError } from "@protoevents/runtime";\n`,
    );
  });

  it("should wrap a merged import the way Biome does when it outgrows the line", () => {
    const file = onlyFile(
      plan({
        "payment.ts": `${GENERATED}
import { definePaymentGatewayWithAVeryLongName, PermanentError } from "@protoevents/runtime";
export const h: PaymentServiceHandlers = { chargeOrder() {} };
`,
      }),
    );
    expect(file.after).toContain(`import {
  Code,
  definePaymentGatewayWithAVeryLongName,
  PermanentError,
  ProtoeventsError,
} from "@protoevents/runtime";
`);
  });

  it("should insert into a multi-line import of the runtime, keeping its trailing comma", () => {
    const file = onlyFile(
      plan({
        "payment.ts": `${GENERATED}
import {
  Code,
  PermanentError,
} from "../../runtime/src/index.js";
export const h: PaymentServiceHandlers = { chargeOrder() {} };
`,
      }),
    );
    expect(file.runtimeImport).toMatchObject({
      kind: "merge",
      specifier: "../../runtime/src/index.js",
      added: ["ProtoeventsError"],
    });
    expect(file.after).toContain(
      `import {\n  Code,\n  PermanentError,\n  ProtoeventsError,\n} from "../../runtime/src/index.js";\n`,
    );
  });

  it("should reuse aliased imports and alias names the file already binds", () => {
    const reused = onlyFile(
      plan({
        "a.ts": `${GENERATED}
import { Code as C, ProtoeventsError as E } from "@protoevents/runtime/errors";
export const h: PaymentServiceHandlers = { chargeOrder() {} };
`,
      }),
    );
    expect(reused.runtimeImport).toMatchObject({ kind: "reuse", code: "C", error: "E" });
    expect(reused.edits.map((e) => e.text).join("")).not.toContain("import");
    expect(reused.after).toContain(stub("  ", "voidCharge", { error: "E", code: "C" }));

    const clashing = onlyFile(
      plan({
        "b.ts": `${GENERATED}
import type { ProtoeventsError } from "@protoevents/runtime";
enum Code { Mine }
export const h: PaymentServiceHandlers = { chargeOrder() {} };
`,
      }),
    );
    expect(clashing.runtimeImport).toEqual({
      kind: "add",
      specifier: "@protoevents/runtime",
      added: ["Code as ProtoeventsCode", "ProtoeventsError as ProtoeventsProtoeventsError"],
      code: "ProtoeventsCode",
      error: "ProtoeventsProtoeventsError",
    });
    expect(clashing.after).toContain(
      `import type { ProtoeventsError } from "@protoevents/runtime";\nimport { Code as ProtoeventsCode, ProtoeventsError as ProtoeventsProtoeventsError } from "@protoevents/runtime";\n`,
    );
  });

  describe("the specifier of an added runtime import", () => {
    const source = (imports: string) =>
      `${imports}\nexport const h: PaymentServiceHandlers = { chargeOrder() {} };\n`;
    const added = (imports: string, runtimeModule?: string) => {
      const file = onlyFile(
        plan(
          { "pay/payment.ts": source(imports) },
          runtimeModule === undefined ? {} : { runtimeModule },
        ),
      );
      expect(file.runtimeImport.kind).toBe("add");
      return file.after.split("\n").find((l) => l.startsWith("import { Code"));
    };

    it("should be the runtime package by default, after the last import", () => {
      const file = onlyFile(plan({ "payment.ts": source(GENERATED) }));
      expect(file.after.split("\n").slice(0, 2)).toEqual([
        GENERATED,
        `import { Code, ProtoeventsError } from "@protoevents/runtime";`,
      ]);
    });

    it("should be relative to the file when the runtime is given as an absolute path", () => {
      expect(added(GENERATED, "/nowhere/runtime/src/index.js")).toBe(
        `import { Code, ProtoeventsError } from "../../runtime/src/index.js";`,
      );
      expect(added(GENERATED, "/nowhere/services/pay/rt.js")).toBe(
        `import { Code, ProtoeventsError } from "./rt.js";`,
      );
    });

    it("should follow a type import of the runtime the file already has", () => {
      expect(
        added(`${GENERATED}\nimport type { Store } from "../../../runtime/src/store.js";`),
      ).toBe(`import { Code, ProtoeventsError } from "../../../runtime/src/index.js";`);
      expect(added(`${GENERATED}\nimport type { Store } from "@protoevents/runtime/store";`)).toBe(
        `import { Code, ProtoeventsError } from "@protoevents/runtime";`,
      );
    });
  });

  it("should note a handler whose rpc is gone, and keep it", () => {
    const text = `${GENERATED}
export const h: PaymentServiceHandlers = {
  chargeOrder() {},
  voidCharge() {},
  refundOrder() {},
};
`;
    const result = plan({ "payment.ts": text });
    expect(result.files).toEqual([]);
    expect(result.notes).toEqual([
      {
        kind: "handler-without-rpc",
        at: "services/payment.ts:5:3",
        message:
          "handler refundOrder of PaymentServiceHandlers has no rpc in PaymentService any more: delete it once the subscription it served has drained (sync never deletes code)",
        anchor: { path: `${DIR}/payment.ts`, implementation: 0, property: "refundOrder" },
      },
    ]);
  });

  it("should note, not edit, a literal with a spread or of an interface the contracts no longer have", () => {
    const result = plan({
      "payment.ts": `import type { PaymentServiceHandlers, LedgerServiceHandlers } from "./applications_pe.js";
const base = { chargeOrder() {} };
export const spread: PaymentServiceHandlers = { ...base };
export const gone: LedgerServiceHandlers = { post() {} };
`,
    });
    expect(result.files).toEqual([]);
    expect(result.implementations).toBe(2);
    expect(result.notes.map((n) => [n.kind, n.at, n.anchor?.implementation])).toEqual([
      ["not-edited", "services/payment.ts:3:47", 0],
      ["handler-without-rpc", "services/payment.ts:4:44", 1],
    ]);
    expect(result.notes[0]?.message).toBe(
      "implements PaymentServiceHandlers with a spread (...base), so sync cannot tell which handlers it has; add chargeOrder, voidCharge yourself if it lacks them",
    );
    expect(result.notes[1]?.message).toMatch(
      /^implements LedgerServiceHandlers, but no application of the contracts has consumer rpcs under that name any more/,
    );
  });

  it("should note an interface nobody implements, naming the directories searched", () => {
    const result = plan(
      { "other.ts": `export const x = 1;\n` },
      { servicesDirs: [DIR, "/nowhere"], cwd: "/nowhere" },
    );
    expect(result).toEqual({
      files: [],
      implementations: 0,
      notes: [
        {
          kind: "no-implementation",
          message:
            "no object literal in services, . implements PaymentServiceHandlers (application payment: ChargeOrder, VoidCharge); write one, e.g. a function returning PaymentServiceHandlers with one method per rpc",
        },
      ],
    });
  });

  it("should plan the files in path order whatever order they come in", () => {
    const handlers = `${GENERATED}\nexport const h: PaymentServiceHandlers = { chargeOrder() {} };\n`;
    const result = plan({ "z.ts": handlers, "a.ts": handlers, "m/b.ts": handlers });
    expect(result.files.map((f) => f.file)).toEqual([
      "services/a.ts",
      "services/m/b.ts",
      "services/z.ts",
    ]);
  });
});
