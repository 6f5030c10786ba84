import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, createFileRegistry, type DescFile } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { Project, ts } from "ts-morph";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readContracts } from "../../../codegen/src/read-contracts.js";
import {
  formatSyncReport,
  type HandlerSpec,
  handlerSpecs,
  syncServices,
} from "../../../codegen/src/sync/sync-services.js";
import { protoevents, ROOT as root } from "../../helpers/cli.js";
import { compileRequest } from "../../helpers/compile-proto.js";

const fixtures = join(root, "test", "fixtures", "sync");

/** The payment and shipping applications, with extra rpcs as a case needs them. */
async function specs(rpcs: { payment: string[]; shipping: string[] }): Promise<HandlerSpec[]> {
  const rpc = (line: string) => `  rpc ${line} returns (google.protobuf.Empty);`;
  const request = await compileRequest({
    "checkout/v1/fixture.proto": `syntax = "proto3";
package checkout.v1;
import "google/protobuf/empty.proto";
import "protoevents/v1/options.proto";
message OrderPlaced { option (protoevents.v1.event) = { topic: "checkout.order-placed" }; string order_id = 1; }
message OrderCancelled { option (protoevents.v1.event) = { topic: "checkout.order-cancelled" }; string order_id = 1; }
message OrderConfirmed { option (protoevents.v1.event) = { topic: "checkout.order-confirmed" }; string order_id = 1; }
service PaymentService {
  option (protoevents.v1.application) = { name: "payment" };
${rpcs.payment.map(rpc).join("\n")}
}
service ShippingService {
  option (protoevents.v1.application) = { name: "shipping" };
${rpcs.shipping.map(rpc).join("\n")}
}
`,
  });
  const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: request.protoFile }));
  const files = request.fileToGenerate
    .map((name) => registry.getFile(name))
    .filter((f): f is DescFile => f !== undefined);
  return handlerSpecs(readContracts(files).model);
}

const today = {
  payment: ["ChargeOrder(OrderPlaced)", "RefundOrder(OrderCancelled)"],
  shipping: ["PrepareShipment(OrderConfirmed)"],
};

/** The common prefix and suffix of two texts, and what lies between them in each. */
function difference(
  before: string,
  after: string,
): { removed: string; inserted: string; at: number } {
  let start = 0;
  while (start < before.length && before[start] === after[start]) {
    start++;
  }
  let end = 0;
  while (
    end < before.length - start &&
    before[before.length - 1 - end] === after[after.length - 1 - end]
  ) {
    end++;
  }
  return {
    removed: before.slice(start, before.length - end),
    inserted: after.slice(start, after.length - end),
    at: start,
  };
}

/**
 * tsc's diagnostics (syntax, types, declarations) of the given files only,
 * one per entry as tsc prints them, paths relative to `dir`.
 */
function typeErrors(project: Project, dir: string, paths: readonly string[]): string[] {
  const program = project.getProgram().compilerObject;
  return paths.flatMap((path) => {
    const file = program.getSourceFile(path);
    if (file === undefined) {
      return [`${path}: not in the program`];
    }
    const host = {
      getCanonicalFileName: (name: string) => name,
      getCurrentDirectory: () => dir,
      getNewLine: () => "\n",
    };
    return ts.getPreEmitDiagnostics(program, file).map((d) => ts.formatDiagnostic(d, host).trim());
  });
}

describe("protoevents sync", () => {
  let dir = "";
  const payment = () => join(dir, "payment-service.ts");
  const shipping = () => join(dir, "shipping-service.ts");
  const sync = async (rpcs: typeof today) =>
    syncServices({
      servicesDir: dir,
      specs: await specs(rpcs),
      runtimeModule: "@protoevents/runtime",
      cwd: dir,
    });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "protoevents-sync-"));
    await cp(fixtures, dir, { recursive: true });
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("should change nothing when every rpc has a handler", async () => {
    const before = [await readFile(payment(), "utf8"), await readFile(shipping(), "utf8")];
    const report = await sync(today);
    expect(report.added).toEqual([]);
    expect(report.notes).toEqual([]);
    expect(report.implementations).toBe(2);
    expect([await readFile(payment(), "utf8"), await readFile(shipping(), "utf8")]).toEqual(before);
    expect(formatSyncReport(report)).toBe("sync: 2 implementations up to date with the contracts");
  });

  it("should add exactly one typed stub and keep every other byte when the contract adds a consumer rpc", async () => {
    const before = await readFile(payment(), "utf8");
    const shippingBefore = await readFile(shipping(), "utf8");
    const report = await sync({
      ...today,
      payment: [...today.payment, "VoidCharge(OrderCancelled)"],
    });

    expect(report.added.map((a) => [a.file, a.line, a.interfaceName, a.rpc.method])).toEqual([
      ["payment-service.ts", 30, "PaymentServiceHandlers", "voidCharge"],
    ]);
    const after = await readFile(payment(), "utf8");
    // Inserted right before the literal's closing brace, after the user's trailing comment.
    const at = before.indexOf("  };\n}\n");
    expect(before.slice(0, at)).toMatch(/\}, \/\/ a trailing comment that stays on its line\n$/);
    const stub = `    async voidCharge(_event, _context) {
      throw new ProtoeventsError(
        Code.HandlerFailed,
        "not implemented: PaymentService.VoidCharge (subscription payment.void-charge, event checkout.v1.OrderCancelled) has no handler yet. protoevents sync added this stub when the contract gained the rpc: implement it; until then every delivery fails and is retried, then dead-lettered to payment.void-charge.dead-letter.",
      );
    },
`;
    expect(after).toBe(before.slice(0, at) + stub + before.slice(at));
    expect(difference(before, after).removed).toBe("");
    expect(await readFile(shipping(), "utf8")).toBe(shippingBefore);

    const again = await sync({
      ...today,
      payment: [...today.payment, "VoidCharge(OrderCancelled)"],
    });
    expect(again.added).toEqual([]);
    expect(again.filesChanged).toEqual([]);
    expect(await readFile(payment(), "utf8")).toBe(after);
  });

  it("should import the error type and add the missing comma when the file has neither", async () => {
    const report = await sync({
      ...today,
      shipping: [...today.shipping, "CancelShipment(OrderCancelled)"],
    });
    expect(report.filesChanged).toEqual(["shipping-service.ts"]);
    expect(await readFile(shipping(), "utf8")).toBe(`/**
 * Fixture of the \`protoevents sync\` tests: the shipping application's
 * handlers as a \`satisfies\` object, in a file that imports nothing from the
 * runtime yet.
 */
import type { ShippingServiceHandlers } from "../../../generated/checkout/v1/applications_pe.js";
import { Code, ProtoeventsError } from "@protoevents/runtime";

/** Shipments this fixture has "prepared", by order id. */
export const prepared: string[] = [];

/** The shipping handlers of the fixture. */
export const fixtureShippingHandlers = {
  prepareShipment(event) {
    prepared.push(event.orderId);
  },
  async cancelShipment(_event, _context) {
    throw new ProtoeventsError(
      Code.HandlerFailed,
      "not implemented: ShippingService.CancelShipment (subscription shipping.cancel-shipment, event checkout.v1.OrderCancelled) has no handler yet. protoevents sync added this stub when the contract gained the rpc: implement it; until then every delivery fails and is retried, then dead-lettered to shipping.cancel-shipment.dead-letter.",
    );
  },
} satisfies ShippingServiceHandlers;
`);
  });

  it("should report and keep a handler when its rpc was removed", async () => {
    const before = await readFile(payment(), "utf8");
    const report = await sync({ ...today, payment: ["ChargeOrder(OrderPlaced)"] });
    expect(report.added).toEqual([]);
    expect(report.notes).toEqual([
      {
        kind: "handler-without-rpc",
        at: "payment-service.ts:24:5",
        message: expect.stringContaining(
          "handler refundOrder of PaymentServiceHandlers has no rpc in PaymentService any more",
        ),
      },
    ]);
    expect(await readFile(payment(), "utf8")).toBe(before);
    expect(formatSyncReport(report)).toContain(
      "payment-service.ts:24:5: handler-without-rpc: handler refundOrder",
    );
  });

  it("should report an application when nobody implements its handlers", async () => {
    await rm(shipping());
    const report = await sync(today);
    expect(report.notes.map((n) => [n.kind, n.message.split(" (")[0]])).toEqual([
      ["no-implementation", "no object literal in . implements ShippingServiceHandlers"],
    ]);
  });
});

describe("protoevents sync on the real contracts", () => {
  it("should add a stub that compiles against the regenerated interface when an application gains an rpc", async () => {
    const dir = await mkdtemp(join(tmpdir(), "protoevents-sync-e2e-"));
    try {
      await cp(join(root, "proto"), join(dir, "proto"), { recursive: true });
      await cp(join(root, "buf.yaml"), join(dir, "buf.yaml"));
      await mkdir(join(dir, "test", "fixtures"), { recursive: true });
      await cp(fixtures, join(dir, "test", "fixtures", "sync"), { recursive: true });
      await symlink(join(root, "node_modules"), join(dir, "node_modules"));
      await cp(join(root, "buf.gen.yaml"), join(dir, "buf.gen.yaml"));
      await writeFile(join(dir, "package.json"), JSON.stringify({ private: true, type: "module" }));
      await writeFile(
        join(dir, "protoevents.json"),
        JSON.stringify({
          contracts: "proto",
          generated: "generated",
          handlers: ["test/fixtures/sync"],
        }),
      );
      // The root tsconfig resolves @protoevents/runtime to its sources, like everywhere in the repository.
      await writeFile(
        join(dir, "tsconfig.json"),
        JSON.stringify({
          extends: join(root, "tsconfig.json"),
          compilerOptions: { types: ["node"], typeRoots: [join(root, "node_modules/@types")] },
          include: ["generated", "test/fixtures/sync"],
        }),
      );
      const apps = join(dir, "proto", "checkout", "v1", "applications.proto");
      const source = await readFile(apps, "utf8");
      const edited = source.replace(
        "  // Refunds the order's charge when the saga asks for it; publishes",
        "  // Voids the authorization of a cancelled order.\n  rpc VoidCharge(OrderCancelled) returns (google.protobuf.Empty);\n\n  // Refunds the order's charge when the saga asks for it; publishes",
      );
      expect(edited).not.toBe(source);
      await writeFile(apps, edited);
      const before = await readFile(join(dir, "test/fixtures/sync/payment-service.ts"), "utf8");
      // generate: buf generate with the packages' plugins, then sync over the configured handlers.
      const { stdout, code, stderr } = await protoevents(["generate"], { cwd: dir });
      expect(code, stderr).toBe(0);
      expect(stdout).toContain(
        "test/fixtures/sync/payment-service.ts:30:5: added stub voidCharge to PaymentServiceHandlers for rpc VoidCharge (subscription payment.void-charge): implement it",
      );
      expect(stdout).toContain("sync: added 1 stub in test/fixtures/sync/payment-service.ts");
      const after = await readFile(join(dir, "test/fixtures/sync/payment-service.ts"), "utf8");
      expect(difference(before, after).removed).toBe("");

      // The stub compiles against the regenerated interface. Only the edited
      // file is type-checked, in a ts-morph project on the directory's
      // tsconfig that holds it and what it imports rather than the whole
      // include (the runtime's sources are shared with the repository and
      // checked by its own typecheck). Beside it, in memory, the file as it
      // was before sync: the same check fails there, so it sees the new rpc.
      const project = new Project({
        tsConfigFilePath: join(dir, "tsconfig.json"),
        skipAddingFilesFromTsConfig: true,
        skipFileDependencyResolution: true,
      });
      const synced = project.addSourceFileAtPath(
        join(dir, "test/fixtures/sync/payment-service.ts"),
      );
      const unsynced = project.createSourceFile(
        join(dir, "test/fixtures/sync/payment-service.before-sync.ts"),
        before,
      );
      expect(typeErrors(project, dir, [synced.getFilePath()])).toEqual([]);
      expect(typeErrors(project, dir, [unsynced.getFilePath()])).toEqual([
        expect.stringMatching(
          /^test\/fixtures\/sync\/payment-service\.before-sync\.ts\(\d+,\d+\): error TS2741: Property 'voidCharge' is missing/,
        ),
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    // buf generate and sync in the CLI, then one type check: parsing what the
    // file imports (~800 files, most of them declarations) dominates it.
  }, 180_000);
});
