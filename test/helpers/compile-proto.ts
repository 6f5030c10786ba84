import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { create, fromBinary } from "@bufbuild/protobuf";
import {
  type CodeGeneratorRequest,
  CodeGeneratorRequestSchema,
  FileDescriptorSetSchema,
} from "@bufbuild/protobuf/wkt";
import { runBuf } from "../../codegen/src/buf.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/**
 * Compile inline .proto sources with the real buf CLI (next to the
 * options.proto that @protoevents/codegen ships, or `optionsProto` when
 * given) and return a CodeGeneratorRequest for them, so tests can run the
 * plugin in-process with `plugin.run(request)`.
 */
export function compileRequest(
  files: Record<string, string>,
  parameter = "target=ts,import_extension=js",
  optionsProto?: string,
): Promise<CodeGeneratorRequest> {
  // The same sources compile to the same request: tests share the base contracts they edit.
  const key = JSON.stringify([files, parameter, optionsProto ?? null]);
  let compiled = compiled_.get(key);
  if (compiled === undefined) {
    compiled = compile(files, parameter, optionsProto);
    compiled_.set(key, compiled);
    // A failure is not remembered: the next caller sees buf's error afresh.
    compiled.catch(() => compiled_.delete(key));
  }
  return compiled;
}

/** Requests compiled in this process, by their inputs. Callers must not change them. */
const compiled_ = new Map<string, Promise<CodeGeneratorRequest>>();

async function compile(
  files: Record<string, string>,
  parameter: string,
  optionsProto: string | undefined,
): Promise<CodeGeneratorRequest> {
  const dir = await mkdtemp(join(tmpdir(), "protoevents-codegen-"));
  try {
    await writeFile(join(dir, "buf.yaml"), "version: v2\n");
    const options =
      optionsProto ??
      (await readFile(join(root, "codegen/proto/protoevents/v1/options.proto"), "utf8"));
    await mkdir(join(dir, "protoevents/v1"), { recursive: true });
    await writeFile(join(dir, "protoevents/v1/options.proto"), options);
    for (const [name, content] of Object.entries(files)) {
      await mkdir(dirname(join(dir, name)), { recursive: true });
      await writeFile(join(dir, name), content);
    }
    const run = await runBuf({ dir }, ["build", "--as-file-descriptor-set", "-o", "-"]);
    if (run.code !== 0) {
      throw new Error(`buf build failed: ${run.stderr}`);
    }
    const set = fromBinary(FileDescriptorSetSchema, run.stdout);
    return create(CodeGeneratorRequestSchema, {
      fileToGenerate: Object.keys(files),
      parameter,
      protoFile: set.file,
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
