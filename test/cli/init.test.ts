import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { formatInit, runInit } from "../../cli/src/init.js";
import { bufLint } from "../../codegen/src/buf.js";
import { optionsProto } from "../../codegen/src/layout.js";
import { protoevents } from "../helpers/cli.js";

describe("protoevents init", () => {
  let dir = "";
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "protoevents-init-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const read = (file: string) => readFile(join(dir, file), "utf8");

  it("should write a repository that buf lints clean, and change nothing the second time", async () => {
    const steps = runInit({ dir });
    expect(steps).toEqual([
      { file: "protoevents.json", outcome: "created" },
      { file: "buf.yaml", outcome: "created" },
      { file: "buf.gen.yaml", outcome: "created" },
      { file: "proto/protoevents/v1/options.proto", outcome: "created" },
      { file: "proto/example/v1/task_events.proto", outcome: "created" },
      { file: "proto/example/v1/applications.proto", outcome: "created" },
    ]);
    expect(JSON.parse(await read("protoevents.json"))).toEqual({
      contracts: "proto",
      generated: "src/gen",
      releases: "releases",
      handlers: ["src"],
    });
    expect(await read("buf.gen.yaml")).toContain(
      "- local: protoc-gen-protoevents\n    out: src/gen",
    );
    expect(await read("proto/protoevents/v1/options.proto")).toBe(optionsProto());
    expect(await bufLint({ dir })).toEqual([]);

    const before = await Promise.all(steps.map((s) => read(s.file)));
    const again = runInit({ dir });
    expect(again.map((s) => s.outcome)).toEqual(["kept", "kept", "kept", "unchanged"]);
    expect(formatInit(again)).toContain("nothing to do: every file is there");
    expect(await Promise.all(steps.map((s) => read(s.file)))).toEqual(before);
  });

  it("should keep a user's files, write only what is missing, and add no sample to existing contracts", async () => {
    await writeFile(join(dir, "buf.yaml"), "version: v2\nmodules:\n  - path: proto\n# mine\n");
    await mkdir(join(dir, "proto/shop/v1"), { recursive: true });
    await writeFile(
      join(dir, "proto/shop/v1/shop.proto"),
      'syntax = "proto3";\npackage shop.v1;\n',
    );
    const steps = runInit({ dir });
    expect(steps).toEqual([
      { file: "protoevents.json", outcome: "created" },
      { file: "buf.yaml", outcome: "kept" },
      { file: "buf.gen.yaml", outcome: "created" },
      { file: "proto/protoevents/v1/options.proto", outcome: "created" },
    ]);
    expect(await read("buf.yaml")).toContain("# mine");
    expect(formatInit(steps)).toContain("kept        buf.yaml (it exists; --force overwrites it)");
  });

  it("should overwrite with --force, and keep a hand-made options.proto without it", async () => {
    await mkdir(join(dir, "proto/protoevents/v1"), { recursive: true });
    await writeFile(join(dir, "proto/protoevents/v1/options.proto"), "// my own copy\n");
    await writeFile(join(dir, "buf.gen.yaml"), "# mine\n");
    const kept = runInit({ dir });
    expect(kept.find((s) => s.file === "proto/protoevents/v1/options.proto")?.outcome).toBe(
      "foreign",
    );
    expect(await read("proto/protoevents/v1/options.proto")).toBe("// my own copy\n");
    expect(await read("buf.gen.yaml")).toBe("# mine\n");

    const forced = runInit({ dir, force: true });
    expect(forced.find((s) => s.file === "buf.gen.yaml")?.outcome).toBe("overwritten");
    expect(forced.find((s) => s.file === "proto/protoevents/v1/options.proto")?.outcome).toBe(
      "updated",
    );
    expect(await read("proto/protoevents/v1/options.proto")).toBe(optionsProto());
  });

  it("should refuse to generate over a hand-made options.proto, naming it and the way out", async () => {
    runInit({ dir });
    await writeFile(join(dir, "proto/protoevents/v1/options.proto"), "// copied by hand\n");
    const run = await protoevents(["generate"], { cwd: dir });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      "protoevents: [invalid_config] proto/protoevents/v1/options.proto is not the copy protoevents manages",
    );
    expect(run.stderr).toContain("run `protoevents init --force`");
  });

  it("should number the options from extensionNumbers", async () => {
    await writeFile(join(dir, "protoevents.json"), JSON.stringify({ extensionNumbers: 60500 }));
    runInit({ dir });
    const options = await read("proto/protoevents/v1/options.proto");
    expect(options).toContain("EventOptions event = 60500;");
    expect(options).toContain("FieldRules rules = 60503;");
    expect(await bufLint({ dir })).toEqual([]);
  });
});
