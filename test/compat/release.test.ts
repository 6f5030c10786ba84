import { createHash } from "node:crypto";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { create, createFileRegistry, type DescMessage } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { bufBuild } from "../../codegen/src/buf.js";
import { snapshotContracts } from "../../codegen/src/compat/contract-snapshot.js";
import { checkGolden } from "../../codegen/src/compat/golden-check.js";
import { readImage } from "../../codegen/src/compat/image.js";
import { compareGolden, decodeGolden, readGolden } from "../../codegen/src/release/golden.js";
import { goldenSample } from "../../codegen/src/release/golden-sample.js";
import {
  listReleases,
  ReleaseFile,
  readReleaseManifest,
} from "../../codegen/src/release/releases.js";
import { registry } from "../../generated/protoevents_registry.js";
import { decodeValidEvent } from "../../runtime/src/envelope.js";
import { Code, isProtoeventsError } from "../../runtime/src/errors.js";
import { compileRequest } from "../helpers/compile-proto.js";
import { FIXTURE_BUF_YAML, fixtures, gateCase, root, workspace } from "./gate-harness.js";

const CONTENT_TYPE = { binary: "application/protobuf", json: "application/json" } as const;

describe("golden payloads of the committed releases", () => {
  it("should match every image to its manifest and hold a payload pair per event when releases/ is read", async () => {
    const releases = await listReleases(root);
    expect(releases.map((r) => r.version)).toContain("0.2.0");
    for (const release of releases) {
      const manifest = await readReleaseManifest(release);
      expect(manifest.version).toBe(release.version);
      const image = await readFile(join(release.dir, ReleaseFile.image));
      expect(createHash("sha256").update(image).digest("hex")).toBe(manifest.imageSha256);
      expect(manifest.events.length).toBeGreaterThan(0);
      for (const event of manifest.events) {
        expect((await stat(join(release.dir, event.golden.binary))).size).toBeGreaterThan(0);
        expect((await stat(join(release.dir, event.golden.json))).size).toBeGreaterThan(0);
      }
    }
  });

  it("should decode every release's golden payloads with today's generated code when the contracts only grew", async () => {
    let decoded = 0;
    for (const release of await listReleases(root)) {
      const manifest = await readReleaseManifest(release);
      const image = readImage(await readFile(join(release.dir, ReleaseFile.image)));
      const releaseDesc = (name: string): DescMessage => {
        const desc = image.registry.getMessage(name);
        if (desc === undefined) {
          throw new Error(`${name} is not in the image of ${release.version}`);
        }
        return desc;
      };
      for (const event of manifest.events) {
        const contract = registry.events.find((e) => e.schema.typeName === event.name);
        expect(contract, `${event.name} of release ${release.version} today`).toBeDefined();
        if (contract === undefined) {
          continue;
        }
        const golden = await readGolden(release, event);
        const released = decodeGolden(releaseDesc(event.name), golden, event.encoding, {
          strict: true,
        });
        for (const encoding of ["binary", "json"] as const) {
          // What a consumer does with a message the release's producers published.
          const { event: today } = decodeValidEvent(contract, {
            data: encoding === "binary" ? golden.binary : new TextEncoder().encode(golden.json),
            attributes: {
              "ce-specversion": "1.0",
              "ce-id": `golden-${release.version}`,
              "ce-type": event.type,
              "ce-source": "golden",
              "content-type": CONTENT_TYPE[encoding],
            },
          });
          expect(
            compareGolden(releaseDesc(event.name), released, contract.schema, today),
            `${encoding} golden of ${event.name} in ${release.version}`,
          ).toEqual([]);
          decoded++;
        }
      }
    }
    expect(decoded).toBeGreaterThanOrEqual(24);
  });

  it.each(["typical", "upper", "lower"] as const)(
    "should build %s samples that pass every field rule when sampling today's events",
    (variant) => {
      for (const contract of registry.events) {
        expect(contract.validate(goldenSample(contract.schema, variant)), contract.type).toEqual(
          [],
        );
      }
    },
  );
});

/** A case's release and today's contracts, as the gate reads them, for the golden checks alone. */
async function goldenSides(name: string) {
  const ws = await workspace();
  try {
    await ws.contracts(join(fixtures, name, "before"));
    await ws.release("0.1.0");
    await ws.contracts(join(fixtures, name, "after"));
    const [release] = await listReleases(ws.dir);
    if (release === undefined) {
      throw new Error("no release recorded");
    }
    const released = readImage(
      await readFile(join(release.dir, ReleaseFile.image)),
      "release",
    ).files;
    const todays = readImage(await bufBuild({ dir: ws.dir }, "proto"), "today").files;
    // With nothing covered by the rule findings, every refusal the samples find is reported.
    return await checkGolden(
      release,
      snapshotContracts(released, "proto/"),
      snapshotContracts(todays, "proto/"),
      new Set(),
    );
  } finally {
    await ws.remove();
  }
}

describe("golden payloads both ways", () => {
  it("should refuse today's samples with the release's rules when a rule is loosened (forward)", async () => {
    const { findings } = await goldenSides("loosened-rule");
    expect(
      findings.map((f) => [
        f.rule,
        f.direction,
        f.field,
        `${f.location.line}:${f.location.column}`,
      ]),
    ).toEqual([
      // note's max_len went from 200 to 500: today's upper sample has 500 characters.
      ["golden-payload-refused", "forward", "shop.v1.OrderPlaced.note", "23:3"],
      // order_id lost required: today's lower sample leaves it empty.
      ["golden-payload-refused", "forward", "shop.v1.OrderPlaced.order_id", "19:3"],
    ]);
    expect(findings[1]?.message).toContain(
      "order_id of shop.v1.OrderPlaced breaks the release's required in today's lower-edge sample",
    );
    expect(findings[0]?.message).toContain(
      "note of shop.v1.OrderPlaced breaks the release's max_len in today's upper-edge sample",
    );
    expect(findings[0]?.fix).toContain("deploy the consumers first, then the producers");
  });

  it("should refuse the release's samples with today's rules when a rule is narrowed (backward)", async () => {
    const { findings } = await goldenSides("narrower-rule");
    expect(findings.map((f) => [f.rule, f.direction, f.field])).toEqual([
      ["golden-payload-refused", "backward", "shop.v1.OrderPlaced.note"],
    ]);
    expect(findings[0]?.message).toContain(
      "note of shop.v1.OrderPlaced breaks max_len in the release's upper-edge sample",
    );
  });

  it("should find a JSON field the release's consumers do not know in today's samples (forward)", async () => {
    const { findings } = await goldenSides("json-field-added");
    expect(findings.map((f) => [f.rule, f.direction])).toEqual([
      ["golden-payload-unreadable", "forward"],
    ]);
    expect(findings[0]?.message).toContain("does not decode with the release's schema");
    expect(findings[0]?.message).toContain("deliveryDay");
  });

  it("should find nothing both ways when an optional field is added to a binary event", async () => {
    const { findings, payloads } = await goldenSides("new-optional-field");
    expect(findings).toEqual([]);
    expect(payloads).toBe(21);
  });
});

describe("golden payloads in the gate", () => {
  it("should turn red when a field number is reused with another type, even with buf's rules off", async () => {
    const lenient = FIXTURE_BUF_YAML.replace(
      "breaking:\n  use:\n    - WIRE_JSON\n",
      "breaking:\n  use:\n    - WIRE_JSON\n  except:\n    - FIELD_WIRE_JSON_COMPATIBLE_TYPE\n    - FIELD_SAME_NAME\n    - FIELD_SAME_JSON_NAME\n",
    );
    expect(lenient).not.toBe(FIXTURE_BUF_YAML);
    const report = await gateCase("field-number-reuse", { bufYaml: lenient });
    expect(report.findings.filter((f) => f.source === "buf breaking")).toEqual([]);
    expect(report.findings.map((f) => f.rule)).toContain("golden-payload-unreadable");
    expect(report.findings.map((f) => f.rule)).toContain("golden-payload-changed");
    const changed = report.findings.find((f) => f.rule === "golden-payload-changed");
    expect(changed?.message).toContain(
      'field priority of the release\'s golden JSON payload differently: "note-1" in the release',
    );
  });

  it("should stay green and decode every payload when a field is added", async () => {
    const report = await gateCase("new-optional-field");
    expect(report.findings).toEqual([]);
    // OrderPlaced, OrderShipped and CartAbandoned: the stored binary and JSON
    // payloads, the release's upper and lower samples (backward) and today's
    // three samples (forward), 7 each.
    expect(report.goldenPayloads).toBe(21);
  });
});

describe("protoevents release", () => {
  it("should write byte-identical images and payloads when the contracts did not change", async () => {
    const ws = await workspace();
    try {
      await ws.contracts(join(fixtures, "comment-change", "before"));
      await ws.release("1.0.0");
      await ws.release("1.1.0");
      const [a, b] = await listReleases(ws.dir);
      expect([a?.version, b?.version]).toEqual(["1.0.0", "1.1.0"]);
      if (a === undefined || b === undefined) {
        return;
      }
      const files = [
        ReleaseFile.image,
        ...(await readReleaseManifest(a)).events.flatMap((e) => [e.golden.binary, e.golden.json]),
      ];
      expect(files).toContain("golden/shop.v1.OrderPlaced.binpb");
      for (const file of files) {
        expect(await readFile(join(b.dir, file)), file).toEqual(await readFile(join(a.dir, file)));
      }
      const manifest = await readReleaseManifest(b);
      expect(manifest.date).toBe("2025-01-01");
      expect(manifest.events.find((e) => e.name === "shop.v1.OrderShipped")).toMatchObject({
        topic: "shop.order-shipped",
        orderingKey: "order_id",
        encoding: "json",
      });
      expect(manifest.applications.map((app) => app.subscriptions.map((s) => s.name))).toEqual([
        ["billing.charge-order"],
        ["mailer.send-shipping-mail"],
      ]);
      // Every setting provisioning applies is recorded, expiry "never" as absent.
      const charge = manifest.applications[0]?.subscriptions[0];
      expect(charge).toMatchObject({
        messageRetentionSeconds: 604_800,
        retainAckedMessages: false,
      });
      expect(charge).not.toHaveProperty("expirationTtlDays");
    } finally {
      await ws.remove();
    }
  });

  it("should refuse and leave the release untouched when its version exists", async () => {
    const ws = await workspace();
    try {
      await ws.contracts(join(fixtures, "topic-rename", "before"));
      await ws.release("0.1.0");
      const image = join(ws.dir, "releases", "0.1.0", ReleaseFile.image);
      const bytes = await readFile(image);
      await ws.contracts(join(fixtures, "topic-rename", "after"));
      const refused = await ws.release("0.1.0").then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(isProtoeventsError(refused) && refused.code).toBe(Code.InvalidArgument);
      expect(String((refused as Error).message)).toContain(
        "release 0.1.0 exists (releases/0.1.0); releases are never overwritten",
      );
      expect(await readFile(image)).toEqual(bytes);
    } finally {
      await ws.remove();
    }
  });

  it("should write nothing when codegen refuses the contracts", async () => {
    const ws = await workspace();
    try {
      await ws.contracts(join(fixtures, "topic-rename", "before"));
      const path = join(ws.dir, "proto", "shop", "v1", "shop.proto");
      await writeFile(
        path,
        (await readFile(path, "utf8")).replace('ordering_key: "order_id"', 'ordering_key: "order"'),
      );
      const refused = await ws.release("0.1.0").then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(String((refused as Error).message)).toContain("ordering-key-missing");
      expect(await listReleases(ws.dir)).toEqual([]);
    } finally {
      await ws.remove();
    }
  });

  it("should name the field when no example matches its pattern", async () => {
    const request = await compileRequest({
      "shop/v1/shop.proto": `syntax = "proto3";
package shop.v1;
import "protoevents/v1/options.proto";
message Parcel {
  option (protoevents.v1.event) = { topic: "shop.parcel" };
  string tracking = 1 [(protoevents.v1.rules) = { pattern: "^TR-[0-9]{6}$" }];
}
`,
    });
    const message = createFileRegistry(
      create(FileDescriptorSetSchema, { file: request.protoFile }),
    ).getMessage("shop.v1.Parcel");
    expect(message).toBeDefined();
    if (message === undefined) {
      return;
    }
    expect(() => goldenSample(message)).toThrow(
      /golden sample of field shop\.v1\.Parcel\.tracking: no example matches its pattern "\^TR-\[0-9\]\{6\}\$"; add one to PATTERN_EXAMPLES/,
    );
  });
});
