/**
 * `protoevents generate`: keep the managed options.proto in step with the
 * installed toolkit, run `buf generate` with the plugins that come with the
 * CLI, then `protoevents sync`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { readModulePath, runBuf } from "@protoevents/codegen/buf";
import { OPTIONS_PROTO_PATH, optionsProto, PLUGIN_BIN_DIR } from "@protoevents/codegen/layout";
import { Code, ProtoeventsError } from "@protoevents/runtime/errors";
import { CONFIG_FILE, type Config, contractsDir, shown } from "./config.js";

const require = createRequire(import.meta.url);

/** The first line of a managed options.proto. */
const MANAGED = "// Managed by protoevents";

/**
 * Directories buf finds the `local:` plugins of buf.gen.yaml in:
 * `protoc-gen-protoevents` and `protoc-gen-es` of the installed packages, so
 * `local: protoc-gen-es` works without node_modules/.bin on PATH.
 */
export function pluginPath(): string[] {
  const dirs = [PLUGIN_BIN_DIR];
  try {
    const manifest = require.resolve("@bufbuild/protoc-gen-es/package.json");
    dirs.push(join(dirname(manifest), "bin"));
  } catch {
    // Not installed next to the CLI: buf looks on PATH, and says so when it is not there.
  }
  return dirs;
}

/** What {@link writeOptionsProto} did; `foreign`: left alone, it is not a managed copy. */
export type OptionsProtoChange = "created" | "updated" | "unchanged" | "foreign";

/** The error for a file where the managed options.proto belongs that protoevents did not write. */
export function foreignOptionsProto(config: Config): ProtoeventsError {
  const file = join(config.root, config.contracts, OPTIONS_PROTO_PATH);
  return new ProtoeventsError(
    Code.InvalidConfig,
    `${shown(file)} is not the copy protoevents manages (it lacks the "${MANAGED}" header): it was copied by hand or is your own file. Delete it, or run \`protoevents init --force\`, so that protoevents writes the options.proto of the installed version there.`,
  );
}

/**
 * Write `<contracts>/protoevents/v1/options.proto` from the installed
 * package when it is missing or out of date. A file there that is not a
 * managed copy (a user's own) is left alone unless `force`.
 */
export function writeOptionsProto(config: Config, force = false): OptionsProtoChange {
  const file = join(contractsDir(config), OPTIONS_PROTO_PATH);
  const text = optionsProto(config.extensionNumbers);
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
    return "created";
  }
  const current = readFileSync(file, "utf8");
  if (current === text) {
    return "unchanged";
  }
  if (!force && !current.startsWith(MANAGED)) {
    return "foreign";
  }
  writeFileSync(file, text);
  return "updated";
}

/** Check that buf.yaml's module is the configured contract root. */
export async function checkModule(config: Config): Promise<void> {
  if (!existsSync(join(config.root, "buf.yaml"))) {
    throw new ProtoeventsError(
      Code.InvalidConfig,
      `no buf.yaml in ${shown(config.root) || "."}: run \`protoevents init\` (it writes buf.yaml, buf.gen.yaml and ${CONFIG_FILE})`,
    );
  }
  const module = await readModulePath(config.root);
  if (module !== config.contracts) {
    throw new ProtoeventsError(
      Code.InvalidConfig,
      `buf.yaml's module is ${module}/ but the contracts are ${config.contracts}/ (${config.file === undefined ? `the default; there is no ${CONFIG_FILE}` : `"contracts" in ${CONFIG_FILE}`}): make them the same`,
    );
  }
}

/** `buf generate` with the plugins of the installed toolkit; stderr goes through. */
export async function bufGenerate(config: Config): Promise<void> {
  if (!existsSync(join(config.root, "buf.gen.yaml"))) {
    throw new ProtoeventsError(
      Code.InvalidConfig,
      "no buf.gen.yaml: run `protoevents init` to write one with protoc-gen-es and protoc-gen-protoevents",
    );
  }
  const run = await runBuf({ dir: config.root, pluginPath: pluginPath() }, ["generate"]);
  process.stdout.write(run.stdout);
  if (run.code !== 0) {
    throw new ProtoeventsError(Code.InvalidContract, `buf generate failed:\n${run.stderr.trim()}`);
  }
  process.stderr.write(run.stderr);
}
