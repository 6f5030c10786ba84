import { execFile } from "node:child_process";
import { cp, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { protoevents } from "../helpers/cli.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const run = promisify(execFile);

/**
 * The edit-contract workflow on a copy of the repository's contracts, with
 * the real buf CLI and the real TypeScript compiler: add a required field,
 * regenerate, and let tsc find the producer that does not set it.
 */
describe("edit a contract, regenerate, compile", () => {
  let dir = "";

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "protoevents-workflow-"));
    await cp(join(root, "proto"), join(dir, "proto"), { recursive: true });
    await cp(join(root, "buf.yaml"), join(dir, "buf.yaml"));
    await cp(join(root, "buf.gen.yaml"), join(dir, "buf.gen.yaml"));
    await writeFile(
      join(dir, "protoevents.json"),
      JSON.stringify({ contracts: "proto", generated: "generated" }),
    );
    await symlink(join(root, "node_modules"), join(dir, "node_modules"));
    await writeFile(join(dir, "package.json"), JSON.stringify({ private: true, type: "module" }));
    // The root tsconfig resolves @protoevents/runtime to its sources, like everywhere in the repository.
    await writeFile(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        extends: join(root, "tsconfig.json"),
        compilerOptions: { types: ["node"], typeRoots: [join(root, "node_modules/@types")] },
        include: ["generated", "producer.ts"],
      }),
    );
    // A producer written against today's contract.
    await writeFile(
      join(dir, "producer.ts"),
      `import type { PubSub } from "@google-cloud/pubsub";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { createOrderSagaServicePublisher } from "./generated/checkout/v1/applications_pe.js";

export async function placeOrder(pubsub: PubSub): Promise<void> {
  await createOrderSagaServicePublisher(pubsub).publishOrderPlaced({
    orderId: "ord-1",
    customerId: "cust-1",
    customerEmail: "a@example.com",
    items: [{ productId: "p", quantity: 1, unitPrice: { currencyCode: "EUR", amountMinor: 1n } }],
    total: { currencyCode: "EUR", amountMinor: 1n },
    shippingAddress: { recipientName: "A", line1: "1 Road", city: "Town", countryCode: "GB" },
    paymentToken: "tok",
    placedAt: timestampNow(),
  });
}
`,
    );
  }, 60_000);

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function generate(): Promise<void> {
    const generated = await protoevents(["generate", "--no-sync"], { cwd: dir });
    expect(generated.code, generated.stderr).toBe(0);
  }

  async function typecheck(): Promise<string> {
    try {
      await run(join(root, "node_modules/.bin/tsc"), ["--noEmit", "-p", "tsconfig.json"], {
        cwd: dir,
      });
      return "";
    } catch (error) {
      return (error as { stdout?: string }).stdout ?? String(error);
    }
  }

  it("should compile today's producer against today's contracts", async () => {
    await generate();
    expect(await typecheck()).toBe("");
  });

  it("should type a new required field everywhere and flag the producer that misses it", async () => {
    const file = join(dir, "proto/checkout/v1/order_events.proto");
    const source = await readFile(file, "utf8");
    const edited = source.replace(
      "  google.protobuf.Timestamp placed_at = 8 [(protoevents.v1.rules) = {required: true}];",
      `  google.protobuf.Timestamp placed_at = 8 [(protoevents.v1.rules) = {required: true}];
  // How the customer wants the order wrapped.
  string gift_wrap = 9 [(protoevents.v1.rules) = {required: true, max_len: 20}];`,
    );
    expect(edited).not.toBe(source);
    await writeFile(file, edited);
    await generate();

    const shape = await readFile(join(dir, "generated/checkout/v1/order_events_pb.ts"), "utf8");
    expect(shape).toContain("giftWrap: string;");
    const events = await readFile(join(dir, "generated/checkout/v1/order_events_pe.ts"), "utf8");
    expect(events).toMatch(/export type OrderPlacedInput =[\s\S]*?giftWrap: string;/);
    expect(events).toContain(
      '(out ??= []).push({ path: path + "gift_wrap", rule: "required", message: "is required" });',
    );

    const output = await typecheck();
    const errors = output.split("\n").filter((line) => /error TS/.test(line));
    // Exactly one error: the one place that must change.
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^producer\.ts\(\d+,\d+\): error TS2345: /);
    expect(output).toContain("Property 'giftWrap' is missing");
  });
});
