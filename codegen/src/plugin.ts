import { createRequire } from "node:module";
import { createEcmaScriptPlugin, type Plugin, type Schema } from "@bufbuild/protoplugin";
import { analyse } from "./emit/analysis.js";
import { emitFile } from "./emit/file.js";
import { peFileName } from "./emit/names.js";
import { emitRegistry, registryHeader } from "./emit/registry.js";
import { REGISTRY_FILE } from "./layout.js";
import { buildModel } from "./model.js";

const { version } = createRequire(import.meta.url)("../package.json") as { version: string };

/** Parameters of protoc-gen-protoevents, besides protoplugin's own (target, import_extension, …). */
export interface PluginOptions {
  /**
   * Module specifier the generated code imports the runtime from.
   * @default "@protoevents/runtime"
   */
  readonly runtime: string;
  /**
   * Prepended to .proto paths in error locations so they open from the
   * repository root, e.g. `proto/` when buf.yaml's module path is `proto`.
   * @default ""
   */
  readonly pathPrefix: string;
}

function parseOptions(raw: Array<{ key: string; value: string }>): PluginOptions {
  let runtime = "@protoevents/runtime";
  let pathPrefix = "";
  for (const { key, value } of raw) {
    switch (key) {
      case "runtime":
        if (value === "" || /\s/.test(value)) {
          throw new Error("must be a module specifier, e.g. runtime=@protoevents/runtime");
        }
        runtime = value;
        break;
      case "path_prefix":
        if (value !== "" && !value.endsWith("/")) {
          throw new Error("must end with /, e.g. path_prefix=proto/");
        }
        pathPrefix = value;
        break;
      default:
        throw new Error(`unknown option; protoc-gen-protoevents accepts runtime and path_prefix`);
    }
  }
  return { runtime, pathPrefix };
}

function generateTs(schema: Schema<PluginOptions>): void {
  const model = buildModel(schema.files, schema.allFiles, schema.options.pathPrefix);
  const analysis = analyse(schema, model);
  for (const file of schema.files) {
    emitFile(schema.generateFile(`${peFileName(file)}.ts`), file, model, analysis, {
      runtime: schema.options.runtime,
    });
  }
  if (model.events.size > 0 || model.applications.length > 0) {
    emitRegistry(schema.generateFile(REGISTRY_FILE), schema, model, {
      runtime: schema.options.runtime,
    });
  }
}

/**
 * protoc-gen-protoevents: typed producers, typed consumers, validators and a
 * contract registry for events declared with protoevents' custom options.
 * Run it with `runNodeJs` (see `bin/protoc-gen-protoevents`), or call `run()` on a
 * CodeGeneratorRequest in tests.
 */
const plugin = createEcmaScriptPlugin<PluginOptions>({
  name: "protoc-gen-protoevents",
  version: `v${version}`,
  parseOptions,
  generateTs,
});

export const protocGenProtoevents: Plugin = {
  name: plugin.name,
  version: plugin.version,
  run(request) {
    const response = plugin.run(request);
    for (const file of response.file) {
      if (file.name === REGISTRY_FILE) {
        file.content = registryHeader(plugin.version, request.parameter) + file.content;
      }
    }
    return response;
  },
};
