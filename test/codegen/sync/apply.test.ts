import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { applySyncPlan } from "../../../codegen/src/sync/apply.js";
import { planSync, type SyncPlan } from "../../../codegen/src/sync/plan.js";
import type { HandlerSpec } from "../../../codegen/src/sync/sync-services.js";
import { isProtoeventsError } from "../../../runtime/src/errors.js";

const PAYMENT: HandlerSpec = {
  interfaceName: "PaymentServiceHandlers",
  serviceName: "PaymentService",
  application: "payment",
  rpcs: ["ChargeOrder", "VoidCharge"].map((rpc) => ({
    method: rpc.charAt(0).toLowerCase() + rpc.slice(1),
    rpc,
    subscription: `payment.${rpc.toLowerCase()}`,
    event: "checkout.v1.OrderPlaced",
    deadLetterTopic: `payment.${rpc.toLowerCase()}.dead-letter`,
  })),
};

/** Handlers lacking `voidCharge` and still having `refundOrder`, in a file that imports nothing from the runtime. */
const SOURCE = `import type { PaymentServiceHandlers } from "./applications_pe.js";

export const handlers: PaymentServiceHandlers = {
  chargeOrder() {},
  refundOrder() {},
};
`;

function plan(path: string, text = SOURCE): SyncPlan {
  return planSync({ sources: [{ path, text }], specs: [PAYMENT], servicesDirs: [], cwd: "/" });
}

/** 1-based line of the first line of `text` that contains `what`. */
function lineOf(text: string, what: string): number {
  return text.split("\n").findIndex((l) => l.includes(what)) + 1;
}

describe("applySyncPlan", () => {
  it("should report each stub where the edited file has it, and write nothing on a dry run", async () => {
    // The path does not exist: a dry run applies the edits in memory only.
    const planned = plan("/nowhere/payment.ts");
    const report = await applySyncPlan(planned, { write: false });
    // Line 7 of the edited file, below the import line sync adds; line 6 of the file as read.
    expect(report.added.map((a) => [a.file, a.line, a.column, a.rpc.method])).toEqual([
      ["nowhere/payment.ts", 7, 3, "voidCharge"],
    ]);
    expect(report.filesChanged).toEqual([]);
    expect(report.implementations).toBe(1);
  });

  it("should tell apart stubs of the same name in two implementations of one file", async () => {
    const ledger: HandlerSpec = {
      ...PAYMENT,
      interfaceName: "LedgerServiceHandlers",
      serviceName: "LedgerService",
      application: "ledger",
    };
    const text = `import type { LedgerServiceHandlers, PaymentServiceHandlers } from "./applications_pe.js";
import { Code, ProtoeventsError } from "@protoevents/runtime";

export const payment: PaymentServiceHandlers = {
  chargeOrder() {},
};

export const ledger: LedgerServiceHandlers = {
  chargeOrder() {},
};
`;
    const planned = planSync({
      sources: [{ path: "/nowhere/both.ts", text }],
      specs: [PAYMENT, ledger],
      servicesDirs: [],
      cwd: "/",
    });
    const report = await applySyncPlan(planned, { write: false });
    // Each stub is six lines: payment's starts on line 6, ledger's below it and payment's stub.
    expect(report.added.map((a) => [a.interfaceName, a.line, a.rpc.method])).toEqual([
      ["PaymentServiceHandlers", 6, "voidCharge"],
      ["LedgerServiceHandlers", 16, "voidCharge"],
    ]);
  });

  it("should point a note about an edited file at the line its code is on after the edit", async () => {
    const planned = plan("/nowhere/payment.ts");
    // Planned against the text as read: refundOrder is on line 5 there.
    expect(planned.notes.map((n) => n.at)).toEqual(["nowhere/payment.ts:5:3"]);
    const report = await applySyncPlan(planned, { write: false });
    // The import line sync adds above it moves it to line 6.
    expect(report.notes).toEqual([
      {
        kind: "handler-without-rpc",
        at: "nowhere/payment.ts:6:3",
        message: expect.stringContaining("handler refundOrder of PaymentServiceHandlers"),
      },
    ]);
  });

  it("should save the edited text and refuse a file that changed after it was planned", async () => {
    const dir = await mkdtemp(join(tmpdir(), "protoevents-apply-"));
    try {
      const path = join(dir, "payment.ts");
      await writeFile(path, SOURCE);
      const planned = plan(path);
      const changed = SOURCE.replace("refundOrder() {},\n", "");
      await writeFile(path, changed);
      const refused = await applySyncPlan(planned).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(isProtoeventsError(refused) && refused.code).toBe("invalid_argument");
      expect(String(refused)).toContain("changed after sync read it; nothing was written");
      expect(await readFile(path, "utf8")).toBe(changed);

      const report = await applySyncPlan(plan(path, changed));
      expect(report.filesChanged).toEqual([path.slice(1)]);
      const written = await readFile(path, "utf8");
      expect(written).toBe(
        changed
          .replace(
            `";\n\nexport`,
            `";\nimport { Code, ProtoeventsError } from "@protoevents/runtime";\n\nexport`,
          )
          .replace(
            "  chargeOrder() {},\n",
            `  chargeOrder() {},
  async voidCharge(_event, _context) {
    throw new ProtoeventsError(
      Code.HandlerFailed,
      "not implemented: PaymentService.VoidCharge (subscription payment.voidcharge, event checkout.v1.OrderPlaced) has no handler yet. protoevents sync added this stub when the contract gained the rpc: implement it; until then every delivery fails and is retried, then dead-lettered to payment.voidcharge.dead-letter.",
    );
  },
`,
          ),
      );
      expect(report.added.map((a) => a.line)).toEqual([lineOf(written, "async voidCharge")]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("should refuse overlapping edits rather than garble the file", async () => {
    const planned = plan("/nowhere/payment.ts");
    const [file] = planned.files;
    if (file === undefined) {
      throw new Error("no file planned");
    }
    const overlapping: SyncPlan = {
      ...planned,
      files: [
        {
          ...file,
          edits: [...file.edits, { start: 0, end: 10, text: "" }, { start: 5, end: 5, text: "x" }],
        },
      ],
    };
    await expect(applySyncPlan(overlapping, { write: false })).rejects.toThrow(
      /overlapping edits of nowhere\/payment\.ts/,
    );
  });
});
