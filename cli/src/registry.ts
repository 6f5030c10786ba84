/**
 * The contract registry protoc-gen-protoevents writes next to the generated
 * code (`protoevents_registry.ts`): what `provision`, `emulator` and `dlq`
 * work from. A TypeScript registry is loaded through tsx, so a repository
 * that compiles with tsc (or never compiles at all) needs no build step for
 * the CLI; its imports resolve from the repository's own node_modules.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { ContractRegistry } from "@protoevents/runtime";
import { Code, ProtoeventsError } from "@protoevents/runtime/errors";
import { CONFIG_FILE, type Config, registryPath, shown } from "./config.js";

/**
 * Load the registry module at `path` (default: the one in the configured
 * generated directory).
 *
 * @throws ProtoeventsError `invalid_argument` naming the file when it is
 *   missing, does not load, or exports no `registry`.
 */
export async function loadRegistry(config: Config, path?: string): Promise<ContractRegistry> {
  const file = path === undefined ? registryPath(config) : resolve(path);
  if (!existsSync(file)) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      path === undefined
        ? `no contract registry at ${shown(file)}: run \`protoevents generate\` first, or set "generated" in ${CONFIG_FILE} to the out directory of buf.gen.yaml`
        : `no contract registry at ${shown(file)} (--registry): pass the protoevents_registry.ts that protoc-gen-protoevents writes`,
    );
  }
  const url = pathToFileURL(file).href;
  let module: { registry?: ContractRegistry };
  try {
    module = (
      /\.[cm]?ts$/.test(file)
        ? await (await import("tsx/esm/api")).tsImport(url, import.meta.url)
        : await import(url)
    ) as {
      registry?: ContractRegistry;
    };
  } catch (cause) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `cannot load the contract registry ${shown(file)}: ${(cause as Error).message}. Run \`protoevents generate\` to rewrite it.`,
      { cause },
    );
  }
  if (module.registry === undefined) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `${shown(file)} exports no \`registry\`; it should be the protoevents_registry.ts that protoc-gen-protoevents writes`,
    );
  }
  return module.registry;
}
