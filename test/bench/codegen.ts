/**
 * Codegen time: protoc-gen-protoevents against protoc-gen-es alone, both run
 * as buf runs them (a Node.js process reading a CodeGeneratorRequest on
 * stdin), on synthetic contracts of 10, 100 and 1,000 events (ten events per
 * file, each with six fields and rules, all consumed by one application).
 * Entries `codegen-10`, `codegen-100`, `codegen-1000`; the note gives the time
 * per event, which stays flat when codegen scales linearly.
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { CodeGeneratorRequestSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { runBuf } from "../../codegen/src/buf.js";
import { type BenchResult, summarise } from "./report.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Write a buf module with `events` events and return a serialized CodeGeneratorRequest for it. */
async function syntheticRequest(dir: string, events: number): Promise<Uint8Array> {
  await writeFile(join(dir, "buf.yaml"), "version: v2\n");
  await mkdir(join(dir, "protoevents/v1"), { recursive: true });
  await writeFile(
    join(dir, "protoevents/v1/options.proto"),
    await readFile(join(root, "proto/protoevents/v1/options.proto"), "utf8"),
  );
  await mkdir(join(dir, "bench/v1"), { recursive: true });
  const files: string[] = [];
  for (let first = 0; first < events; first += 10) {
    const name = `bench/v1/events_${first / 10}.proto`;
    files.push(name);
    const messages = Array.from({ length: Math.min(10, events - first) }, (_, k) => {
      const n = first + k;
      return `
// Event number ${n}.
message Event${n} {
  option (protoevents.v1.event) = { topic: "bench.event-${n}" ordering_key: "key" subject: "key" };
  // The aggregate id.
  string key = 1 [(protoevents.v1.rules) = { required: true, max_len: 64 }];
  int64 amount_minor = 2 [(protoevents.v1.rules) = { min: 0 }];
  string email = 3 [(protoevents.v1.rules) = { pattern: "^[^@]+@[^@]+$", pii: true }];
  repeated string tags = 4 [(protoevents.v1.rules) = { max_items: 10, max_len: 20 }];
  google.protobuf.Timestamp at = 5 [(protoevents.v1.rules) = { required: true }];
  bool flag = 6;
}`;
    });
    await writeFile(
      join(dir, name),
      `syntax = "proto3";\npackage bench.v1;\nimport "google/protobuf/timestamp.proto";\nimport "protoevents/v1/options.proto";\n${messages.join("\n")}\n`,
    );
  }
  const rpcs = Array.from(
    { length: events },
    (_, n) => `  rpc OnEvent${n}(Event${n}) returns (google.protobuf.Empty);`,
  );
  files.push("bench/v1/app.proto");
  await writeFile(
    join(dir, "bench/v1/app.proto"),
    `syntax = "proto3";\npackage bench.v1;\nimport "google/protobuf/empty.proto";\nimport "protoevents/v1/options.proto";\n${files
      .slice(0, -1)
      .map((f) => `import "${f}";`)
      .join(
        "\n",
      )}\nservice BenchService {\n  option (protoevents.v1.application) = { name: "bench" };\n${rpcs.join("\n")}\n}\n`,
  );
  const run = await runBuf({ dir }, ["build", "--as-file-descriptor-set", "-o", "-"]);
  if (run.code !== 0) {
    throw new Error(`buf build failed: ${run.stderr}`);
  }
  const set = fromBinary(FileDescriptorSetSchema, run.stdout);
  return toBinary(
    CodeGeneratorRequestSchema,
    create(CodeGeneratorRequestSchema, {
      fileToGenerate: files,
      parameter: "target=ts,import_extension=js",
      protoFile: set.file,
    }),
  );
}

/** Run a plugin process on a request; milliseconds from spawn to exit. */
function runPlugin(args: readonly string[], request: Uint8Array): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(process.execPath, args, { cwd: root, stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      if (code === 0) {
        resolve(performance.now() - start);
      } else {
        reject(new Error(`${args.join(" ")} exited ${code}: ${stderr}`));
      }
    });
    child.stdin.end(Buffer.from(request));
  });
}

const PROTOC_GEN_ES = ["node_modules/@bufbuild/protoc-gen-es/bin/protoc-gen-es"];
/** The built plugin, as users run it (`npm run bench` builds the packages first). */
const PROTOC_GEN_PROTOEVENTS = ["codegen/bin/protoc-gen-protoevents"];

/** The three codegen entries. */
export async function benchCodegen(rounds: number): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  for (const events of [10, 100, 1000]) {
    const dir = await mkdtemp(join(tmpdir(), "protoevents-codegen-"));
    try {
      const request = await syntheticRequest(dir, events);
      await runPlugin(PROTOC_GEN_PROTOEVENTS, request); // warm the disk cache
      await runPlugin(PROTOC_GEN_ES, request);
      const ours: number[] = [];
      const theirs: number[] = [];
      for (let round = 0; round < rounds; round++) {
        if (round % 2 === 0) {
          ours.push(await runPlugin(PROTOC_GEN_PROTOEVENTS, request));
          theirs.push(await runPlugin(PROTOC_GEN_ES, request));
        } else {
          theirs.push(await runPlugin(PROTOC_GEN_ES, request));
          ours.push(await runPlugin(PROTOC_GEN_PROTOEVENTS, request));
        }
      }
      const result = summarise(`codegen-${events}`, "ms", "lower", ours, theirs);
      results.push({
        ...result,
        note: `${events} events in ${Math.ceil(events / 10)} files + one application with ${events} rpcs; per event ${(result.value / events).toFixed(2)} ms (protoc-gen-es ${(result.baseline / events).toFixed(2)} ms), process start included`,
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  return results;
}
