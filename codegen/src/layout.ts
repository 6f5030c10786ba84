/**
 * The files and names protoevents agrees on with a repository that uses it,
 * in a module light enough for the CLI to load at start.
 *
 * options.proto, the custom options every contract imports, reaches a user's
 * buf build from this installed package: `protoevents init` and
 * `protoevents generate` write it into the contract root as
 * `protoevents/v1/options.proto`, a managed copy like generated code, so buf
 * lint, buf breaking and editors see it as one more file of the module, and
 * nothing is downloaded.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { Code, ProtoeventsError } from "@protoevents/runtime/errors";

const { version } = createRequire(import.meta.url)("../package.json") as { version: string };

/** The contract registry protoc-gen-protoevents writes into the output directory. */
export const REGISTRY_FILE = "protoevents_registry.ts";

/** Where `protoevents catalog` writes by default: under the ignored data directory. */
export const DEFAULT_CATALOG_DIR = ".data/catalog";

/** Where the managed copy lives inside a contract root (a buf module). */
export const OPTIONS_PROTO_PATH = "protoevents/v1/options.proto";

/**
 * The number of the first extension: `event`, `application`, `subscription`
 * `rules` and `defaults` take it and the next four. 51800–51804 lie in 50000–99999, the
 * range protobuf reserves for use inside one organisation.
 */
export const DEFAULT_EXTENSION_NUMBER = 51800;

/** The extensions in the order they take numbers. */
const EXTENSIONS = ["event", "application", "subscription", "rules", "defaults"] as const;

/** The directory of the `protoc-gen-protoevents` binary, for buf's PATH. */
export const PLUGIN_BIN_DIR = fileURLToPath(new URL("../bin", import.meta.url));

const SHIPPED = new URL(`../proto/${OPTIONS_PROTO_PATH}`, import.meta.url);

/**
 * The text of the managed `protoevents/v1/options.proto`: the shipped file
 * under a header that says who writes it, with the five extensions numbered
 * from `firstNumber`.
 *
 * @throws ProtoeventsError `invalid_config` when the numbers leave
 *   50000–99999 or hit protobuf's reserved 19000–19999.
 */
export function optionsProto(firstNumber: number = DEFAULT_EXTENSION_NUMBER): string {
  if (!Number.isInteger(firstNumber) || firstNumber < 50_000 || firstNumber + 4 > 99_999) {
    throw new ProtoeventsError(
      Code.InvalidConfig,
      `extension numbers must be whole numbers in 50000–99999, the range protobuf keeps for use inside one organisation; got ${firstNumber} (the five options take it and the next four)`,
    );
  }
  let text = readFileSync(fileURLToPath(SHIPPED), "utf8");
  for (const [i, name] of EXTENSIONS.entries()) {
    const declaration = new RegExp(`(\\s${name} = )${DEFAULT_EXTENSION_NUMBER + i};`);
    if (!declaration.test(text)) {
      throw new ProtoeventsError(
        Code.Internal,
        `the shipped options.proto has no extension "${name} = ${DEFAULT_EXTENSION_NUMBER + i}"`,
      );
    }
    text = text.replace(declaration, `$1${firstNumber + i};`);
  }
  return `${header(firstNumber)}${text}`;
}

function header(firstNumber: number): string {
  const numbers =
    firstNumber === DEFAULT_EXTENSION_NUMBER
      ? ""
      : `// Extension numbers moved to ${firstNumber}–${firstNumber + 4} by "extensionNumbers" in protoevents.json.\n`;
  return (
    `// Managed by protoevents: \`protoevents generate\` writes this file from\n` +
    `// @protoevents/codegen ${version}. Do not edit it; to move the extension numbers,\n` +
    `// set "extensionNumbers" in protoevents.json.\n${numbers}\n`
  );
}
