import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  contractsDir,
  DEFAULTS,
  handlerDirs,
  loadConfig,
  registryPath,
} from "../../cli/src/config.js";
import { Code, isProtoeventsError } from "../../runtime/src/errors.js";

describe("protoevents.json", () => {
  let dir = "";
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "protoevents-config-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const write = (config: unknown) =>
    writeFile(
      join(dir, "protoevents.json"),
      typeof config === "string" ? config : JSON.stringify(config, null, 2),
    );

  /** The message of the invalid_config error `use` throws, without its `[invalid_config] ` prefix. */
  function error(use: () => unknown = () => loadConfig(dir)): string {
    try {
      use();
    } catch (e) {
      expect(isProtoeventsError(e)).toBe(true);
      expect((e as { code: Code }).code).toBe(Code.InvalidConfig);
      const message = (e as Error).message;
      expect(message.startsWith("[invalid_config] ")).toBe(true);
      return message.slice("[invalid_config] ".length);
    }
    throw new Error("the configuration was accepted");
  }

  it("should apply the conventional layout when there is no file", () => {
    const config = loadConfig(dir);
    expect(config).toEqual({ root: dir, file: undefined, ...DEFAULTS, setAt: {} });
    expect(registryPath(config)).toBe(join(dir, "src/gen/protoevents_registry.ts"));
  });

  it("should read every key, normalising the paths", async () => {
    await mkdir(join(dir, "contracts"));
    await mkdir(join(dir, "app", "handlers"), { recursive: true });
    await write({
      $schema: "ignored",
      contracts: "./contracts/",
      generated: "app/gen",
      releases: "api/releases",
      handlers: "app/handlers",
      extensionNumbers: 60100,
    });
    expect(loadConfig(dir)).toEqual({
      root: dir,
      file: join(dir, "protoevents.json"),
      contracts: "contracts",
      generated: "app/gen",
      releases: "api/releases",
      handlers: ["app/handlers"],
      extensionNumbers: 60100,
      setAt: {
        contracts: "protoevents.json:3:3",
        generated: "protoevents.json:4:3",
        releases: "protoevents.json:5:3",
        handlers: "protoevents.json:6:3",
        extensionNumbers: "protoevents.json:7:3",
      },
    });
  });

  it("should name the file, the line and the closest key for an unknown key", async () => {
    await write('{\n  "contracts": "proto",\n  "handler": ["src"]\n}\n');
    await mkdir(join(dir, "proto"));
    expect(error()).toBe(
      'protoevents.json:3:3: unknown key "handler": did you mean "handlers"? the keys are contracts, generated, releases, handlers, extensionNumbers',
    );
  });

  it("should name the key and the directory when a directory it reads is missing", async () => {
    await write({ contracts: "protos" });
    expect(error(() => contractsDir(loadConfig(dir)))).toBe(
      'protoevents.json:2:3: "contracts" names protos/, which does not exist: create it, or set "contracts" to the contract root, the buf module with your .proto files',
    );
    await write({ handlers: ["src/handlers"] });
    expect(error(() => handlerDirs(loadConfig(dir)))).toMatch(
      /^protoevents\.json:2:3: "handlers" names src\/handlers\/, which does not exist/,
    );
    // A default handler directory that is not there is simply not searched.
    await write({});
    expect(handlerDirs(loadConfig(dir))).toEqual([]);
  });

  it("should refuse values of the wrong type, paths outside the repository and bad JSON", async () => {
    await write({ generated: 3 });
    expect(error()).toMatch(/"generated" must be a directory path \(a non-empty string\).*got 3$/);
    await write({ releases: "../elsewhere" });
    expect(error()).toMatch(/"releases" must stay inside the repository, got "\.\.\/elsewhere"$/);
    await write({ generated: "/tmp/out" });
    expect(error()).toMatch(/"generated" must be relative to the repository root/);
    await write({ extensionNumbers: 1000 });
    expect(error()).toMatch(/"extensionNumbers" must be a whole number from 50000 to 99995/);
    await write('{ "contracts": "proto", }');
    expect(error()).toMatch(/^protoevents\.json:1:\d+: not valid JSON: /);
    await write("[]");
    expect(error()).toMatch(/^protoevents\.json: must hold a JSON object/);
  });

  it("should refuse a generated directory that holds the contracts, since buf generate empties it", async () => {
    await write({ generated: ".", contracts: "proto" });
    await mkdir(join(dir, "proto"));
    expect(error()).toMatch(
      /"generated" \(\.\) must be a directory of its own: buf generate empties it/,
    );
    await write({ generated: "api", contracts: "api/proto" });
    expect(error()).toMatch(
      /"generated" \(api\) must be a directory of its own.*"contracts" \(api\/proto\)/,
    );
  });

  it("should say how to start when the default contract root is missing", () => {
    expect(error(() => contractsDir(loadConfig(dir)))).toBe(
      'no contracts directory proto/ (the default; there is no "contracts" in protoevents.json): run `protoevents init` to start one, or set "contracts" in protoevents.json',
    );
  });
});
