import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkContracts, type GateFinding } from "../../codegen/src/compat/check.js";
import { formatCheckMarkdown } from "../../codegen/src/compat/report.js";
import { formatLocation } from "../../codegen/src/location.js";
import { protoevents as run } from "../helpers/cli.js";
import { declareModes, fixtures, gateCase, root, workspace } from "./gate-harness.js";

const at = (f: GateFinding) => `${f.rule} at ${formatLocation(f.location)}`;
const file = "proto/shop/v1/shop.proto";

/**
 * The table of contract changes: each case is a committed before/after pair
 * under test/fixtures/compat/<case>/. "before" is recorded as release 0.1.0,
 * "after" is checked against it by the real gate (buf lint, buf breaking
 * WIRE_JSON, the event-level rules, the golden payloads).
 */
const breaking = [
  {
    name: "field-type-change",
    direction: "both",
    rule: "FIELD_WIRE_JSON_COMPATIBLE_TYPE",
    line: "52:3",
    what: "a field changes type",
  },
  {
    name: "field-number-reuse",
    direction: "both",
    rule: "FIELD_WIRE_JSON_COMPATIBLE_TYPE",
    line: "26:3",
    what: "a field number is reused with another type",
  },
  {
    name: "topic-rename",
    direction: "both",
    rule: "event-topic-changed",
    line: "13:5",
    what: "an event's topic is renamed",
  },
  {
    name: "ordering-key-change",
    direction: "both",
    rule: "ordering-key-changed",
    line: "14:5",
    what: "an event's ordering key changes",
  },
  {
    name: "event-removed-while-consumed",
    direction: "both",
    rule: "event-removed-while-consumed",
    line: "41:1",
    what: "a consumed event is removed",
  },
  {
    name: "new-required-rule",
    direction: "backward",
    rule: "field-rule-narrowed",
    line: "27:5",
    what: "an existing field becomes required",
  },
  {
    name: "enum-value-removed",
    direction: "both",
    rule: "ENUM_VALUE_NO_DELETE_UNLESS_NUMBER_RESERVED",
    line: "34:1",
    what: "an enum value is removed",
  },
  {
    name: "field-renamed-json",
    direction: "both",
    rule: "FIELD_SAME_JSON_NAME",
    line: "52:3",
    what: "a field is renamed for JSON",
  },
  {
    name: "event-type-changed",
    direction: "both",
    rule: "event-type-changed",
    line: "16:5",
    what: "an event's ce-type changes",
  },
  {
    name: "subject-removed",
    direction: "both",
    rule: "subject-changed",
    line: "12:10",
    what: "an event's subject is removed",
  },
  {
    name: "narrower-rule",
    direction: "backward",
    rule: "field-rule-narrowed",
    line: "26:46",
    what: "a max_len is lowered",
  },
  {
    name: "pattern-added",
    direction: "backward",
    rule: "field-rule-narrowed",
    line: "54:55",
    what: "a pattern is added to an existing field",
  },
  {
    name: "new-required-field",
    direction: "backward",
    rule: "new-field-required",
    line: "32:53",
    what: "a new field is required",
  },
  {
    name: "dead-letter-disabled",
    direction: undefined,
    rule: "dead-letter-disabled",
    line: "73:7",
    what: "a subscription turns dead-lettering off",
  },
  {
    name: "consumer-event-changed",
    direction: undefined,
    rule: "consumer-event-changed",
    line: "80:24",
    what: "a consumer rpc consumes another event",
  },
  {
    name: "json-field-removed",
    direction: "backward",
    rule: "golden-payload-unreadable",
    line: "41:1",
    what: "a field of a JSON-encoded event is removed",
  },
  {
    name: "json-field-added",
    direction: "forward",
    rule: "golden-payload-unreadable",
    line: "41:1",
    what: "a field is added to a JSON-encoded event (the release's consumers refuse unknown JSON fields)",
  },
  {
    name: "loosened-rule",
    direction: "forward",
    rule: "field-rule-loosened",
    line: "19:24",
    what: "a rule is loosened and required is dropped (the release's consumers refuse the new events)",
  },
] as const;

const safe = [
  { name: "new-optional-field", what: "an optional field is added" },
  { name: "new-event", what: "an event is added" },
  { name: "new-consumer", what: "a consumer rpc is added" },
  { name: "reserved-removal", what: "a field is removed with its number and name reserved" },
  { name: "comment-change", what: "only comments change" },
  { name: "unconsumed-event-removed", what: "an event nobody consumes is removed" },
  { name: "ordering-key-added", what: "an event without ordering key gets one" },
] as const;

describe("protoevents check on a table of contract changes", () => {
  it.concurrent.each(breaking)(
    "should refuse the change with $rule at $line when $what ($name), in the modes that check its direction",
    async ({ name, rule, line, direction }) => {
      const report = await gateCase(name);
      expect(report.findings.map(at)).toContain(`${rule} at ${file}:${line}`);
      for (const finding of report.findings) {
        expect(finding.releases).toEqual(["0.1.0"]);
        expect(finding.fix).not.toBe("");
      }
      const finding = report.findings.find((f) => at(f) === `${rule} at ${file}:${line}`);
      // Every case changes something billing or the mailer consumes.
      expect(finding?.consumers.length).toBeGreaterThan(0);
      // Nothing declares a mode: FULL_TRANSITIVE, and the verdicts say which modes would refuse it.
      expect(finding?.direction).toBe(direction);
      expect(report.modes.find((m) => m.event === "shop.v1.OrderPlaced")).toEqual({
        event: "shop.v1.OrderPlaced",
        mode: "FULL_TRANSITIVE",
        from: "default",
      });
      const refusing = report.verdicts.filter((v) => v.refused > 0).map((v) => v.mode);
      expect(refusing).toEqual(REFUSES[direction ?? "both"]);
    },
  );

  it.concurrent.each(safe)("should accept the change when $what ($name)", async ({ name }) => {
    const report = await gateCase(name);
    expect(report.findings.map(at)).toEqual([]);
    expect(report.releases).toEqual(["0.1.0"]);
    expect(report.goldenPayloads).toBeGreaterThan(0);
  });

  it("should locate the event in the release and name its consumers when a consumed event is removed", async () => {
    const report = await gateCase("event-removed-while-consumed");
    const finding = report.findings.find((f) => f.rule === "event-removed-while-consumed");
    expect(finding?.locationIn).toBe("release");
    expect(finding?.consumers).toEqual([
      {
        application: "mailer",
        subscription: "mailer.send-shipping-mail",
        event: "shop.v1.OrderShipped",
      },
    ]);
    expect(finding?.message).toContain('on topic "shop.order-shipped"');
  });
});

/** The cases that break one deploy order: each is accepted under the mode that allows it. */
const directional = breaking.filter(
  (c): c is (typeof breaking)[number] & { direction: "backward" | "forward" } =>
    (c.direction === "backward" || c.direction === "forward") &&
    // One case per rule and direction: pattern-added and new-required-rule are field-rule-narrowed again.
    c.name !== "pattern-added" &&
    c.name !== "new-required-rule",
);

/** Whether a mode checks a direction, as the table in docs/compatibility.md states it. */
const REFUSES: Record<string, readonly string[]> = {
  backward: ["BACKWARD", "BACKWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE"],
  forward: ["FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE"],
  both: [
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
  ],
};

describe("protoevents check under compatibility modes", () => {
  it.concurrent.each(directional)(
    "should accept $name with its deploy order when the package declares the mode that allows a $direction break",
    async ({ name, rule, direction }) => {
      const allowing = direction === "backward" ? "FORWARD" : "BACKWARD";
      const report = await gateCase(name, { modes: { package: allowing } });
      expect(report.findings.map((f) => f.rule)).toEqual([]);
      expect(report.allowed.map((f) => [f.rule, f.direction])).toContainEqual([rule, direction]);
      expect(report.modes.find((m) => m.event === "shop.v1.OrderShipped")).toEqual({
        event: "shop.v1.OrderShipped",
        mode: allowing,
        from: "package",
      });
      const markdown = formatCheckMarkdown(report);
      expect(markdown).toContain("## ✅ protoevents check: compatible with releases 0.1.0");
      expect(markdown).toContain(
        direction === "forward"
          ? "deploy consumers first, then producers"
          : "deploy producers first, then consumers once the events published under the old contract have drained",
      );
    },
  );

  it("should refuse a both-ways change in the mode that allows one direction", async () => {
    const report = await gateCase("topic-rename", { modes: { package: "FORWARD" } });
    expect(report.findings.map((f) => f.rule)).toEqual(["event-topic-changed"]);
    expect(report.allowed).toEqual([]);
  });

  it("should let an event's own mode override its package's default", async () => {
    // narrower-rule narrows OrderPlaced.note: FORWARD on the event allows it although the package says FULL.
    const allowed = await gateCase("narrower-rule", {
      modes: { package: "FULL", events: { OrderPlaced: "FORWARD" } },
    });
    expect(allowed.findings).toEqual([]);
    expect(allowed.modes.find((m) => m.event === "shop.v1.OrderPlaced")).toMatchObject({
      mode: "FORWARD",
      from: "event",
    });
    const refused = await gateCase("narrower-rule", {
      modes: { package: "FORWARD", events: { OrderPlaced: "BACKWARD" } },
    });
    expect(refused.findings.map((f) => `${f.rule} ${f.direction}`)).toContain(
      "field-rule-narrowed backward",
    );
    const markdown = formatCheckMarkdown(refused);
    expect(markdown).toMatch(/^## ❌ protoevents check: \d+ findings? against releases 0\.1\.0$/m);
    expect(markdown).toMatch(
      /^\| `shop\.v1\.OrderPlaced` \| BACKWARD \| field-rule-narrowed[^|]*\| ❌ refused \| would pass as FORWARD: deploy producers first/m,
    );
    expect(markdown).toContain("| FORWARD | producers first, then consumers | ✅ passes |");
    expect(markdown).toMatch(
      /^\| BACKWARD \| consumers first, then producers \| ❌ \d+ findings? \|$/m,
    );
  }, 60_000);
});

describe("protoevents check over every release", () => {
  it("should refuse a change that is safe against the last release when it breaks an earlier one", async () => {
    const ws = await workspace();
    try {
      await ws.contracts(join(fixtures, "transitive", "release-0.1.0"));
      await ws.release("0.1.0");
      await ws.contracts(join(fixtures, "transitive", "release-0.2.0"));
      await ws.release("0.2.0");
      await ws.contracts(join(fixtures, "transitive", "today"));

      const report = await ws.check();
      expect(report.releases).toEqual(["0.1.0", "0.2.0"]);
      const rules = report.findings.map((f) => `${f.rule} ${f.releases.join(",")}`);
      expect(rules).toContain("event-topic-changed 0.1.0");
      expect(rules).toContain("FIELD_WIRE_JSON_COMPATIBLE_TYPE 0.1.0");
      // Nothing breaks against the last release: buf alone, comparing with it, would pass.
      expect(report.findings.filter((f) => f.releases.includes("0.2.0"))).toEqual([]);

      // FULL (not transitive) checks against the newest release only: the breaks against 0.1.0 are allowed.
      await declareModes(ws.dir, { package: "FULL" });
      const newestOnly = await ws.check();
      expect(newestOnly.findings).toEqual([]);
      expect(newestOnly.allowed.map((f) => `${f.rule} ${f.releases.join(",")}`)).toEqual(
        expect.arrayContaining([
          "event-topic-changed 0.1.0",
          "FIELD_WIRE_JSON_COMPATIBLE_TYPE 0.1.0",
        ]),
      );

      await declareModes(ws.dir, { events: { CartAbandoned: "FULL_TRANSITIVE" } });
      expect((await ws.check()).findings.map((f) => f.rule)).toContain("event-topic-changed");

      await rm(join(ws.dir, "releases", "0.1.0"), { recursive: true });
      expect((await ws.check()).findings).toEqual([]);
    } finally {
      await ws.remove();
    }
  });

  it("should report one finding listing every release when one change breaks several", async () => {
    const ws = await workspace();
    try {
      const before = join(fixtures, "topic-rename", "before");
      await ws.contracts(before);
      await ws.release("0.1.0");
      await ws.release("0.1.1");
      await ws.contracts(join(fixtures, "topic-rename", "after"));
      const report = await ws.check();
      expect(report.findings.map((f) => [f.rule, f.releases])).toEqual([
        ["event-topic-changed", ["0.1.0", "0.1.1"]],
      ]);
    } finally {
      await ws.remove();
    }
  });

  it("should pass when the repository's contracts are checked against its committed releases", async () => {
    const report = await checkContracts({ dir: root });
    expect(report.releases).toContain("0.2.0");
    expect(report.findings.map((f) => `${at(f)}: ${f.message}`)).toEqual([]);
    expect(report.goldenPayloads).toBeGreaterThanOrEqual(24);
  });
});

const protoevents = (cwd: string, args: string[]) => run(args, { cwd, timeoutMs: 60_000 });

describe("the CI gate", () => {
  it("should run npm run check right after buf lint when CI runs .ci/run", async () => {
    const ci = await readFile(join(root, ".ci", "run"), "utf8");
    const pkg = JSON.parse(await readFile(join(root, "package.json"), "utf8")) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts.check).toBe("protoevents check");
    const lint = ci.indexOf("npx buf lint");
    const check = ci.indexOf("npm run check");
    expect(lint).toBeGreaterThan(0);
    expect(check).toBeGreaterThan(lint);
    expect(ci.slice(lint, check)).not.toMatch(/npm run generate|npm test/);
    expect(ci).toContain("set -euo pipefail");
  });

  it("should fail with exit code 1 and the finding when a copy of the repository gets a breaking edit", async () => {
    const dir = await mkdtemp(join(tmpdir(), "protoevents-gate-"));
    try {
      await cp(join(root, "proto"), join(dir, "proto"), { recursive: true });
      await cp(join(root, "buf.yaml"), join(dir, "buf.yaml"));
      await cp(join(root, "releases"), join(dir, "releases"), { recursive: true });

      const clean = await protoevents(dir, ["check"]);
      expect(clean.code).toBe(0);
      expect(clean.stderr).toMatch(/check: compatible with release 0\.2\.0/);

      const path = join(dir, "proto", "checkout", "v1", "order_events.proto");
      const source = await readFile(path, "utf8");
      const edited = source.replace('topic: "checkout.order-placed"', 'topic: "checkout.orders"');
      expect(edited).not.toBe(source);
      await writeFile(path, edited);
      const line = edited.split("\n").findIndex((l) => l.includes('topic: "checkout.orders"')) + 1;

      const broken = await protoevents(dir, ["check"]);
      expect(broken.code).toBe(1);
      expect(broken.stdout).toContain(
        `proto/checkout/v1/order_events.proto:${line}:5: event-topic-changed: event checkout.v1.OrderPlaced is published on topic "checkout.orders" instead of "checkout.order-placed"`,
      );
      expect(broken.stdout).toContain("    breaks against release 0.2.0\n");
      expect(broken.stdout).toContain(
        "    consumers: inventory (inventory.reserve-stock), payment (payment.charge-order)\n",
      );
      expect(broken.stdout).toContain(
        'fix: keep topic "checkout.order-placed"; to move the event, add a new event checkout.v2.OrderPlaced',
      );
      expect(broken.stderr).toMatch(/check: 1 finding against release 0\.2\.0/);

      const json = await protoevents(dir, ["check", "--format", "json"]);
      expect(json.code).toBe(1);
      const parsed = JSON.parse(json.stdout);
      expect(parsed).toMatchObject({ compatible: false, releases: ["0.2.0"], allowed: [] });
      expect(parsed.verdicts).toHaveLength(6);
      expect(parsed.findings).toEqual([
        {
          file: "proto/checkout/v1/order_events.proto",
          line,
          column: 5,
          rule: "event-topic-changed",
          source: "protoevents",
          message: expect.stringContaining('instead of "checkout.order-placed"'),
          releases: ["0.2.0"],
          locationIn: "today",
          direction: "both",
          events: ["checkout.v1.OrderPlaced"],
          producers: ["order"],
          consumers: [
            {
              application: "inventory",
              subscription: "inventory.reserve-stock",
              event: "checkout.v1.OrderPlaced",
            },
            {
              application: "payment",
              subscription: "payment.charge-order",
              event: "checkout.v1.OrderPlaced",
            },
          ],
          fix: expect.stringContaining("publish both during migration"),
        },
      ]);

      const markdown = await protoevents(dir, ["check", "--format", "markdown"]);
      expect(markdown.code).toBe(1);
      expect(markdown.stdout).toContain(
        "## ❌ protoevents check: 1 finding against releases 0.2.0",
      );
      expect(markdown.stdout).toContain(
        "| `checkout.v1.OrderPlaced` | FULL_TRANSITIVE (default) | event-topic-changed | ❌ refused | no deploy order is safe: see the fixes |",
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 240_000); // four CLI processes, each compiling the CLI with tsx
});
