/**
 * `protoevents init`: start using protoevents in a repository, empty or not.
 * Writes what is missing (protoevents.json, buf.yaml, buf.gen.yaml, the
 * managed options.proto and, when there are no contracts yet, one sample
 * event and application) and never overwrites an existing file unless
 * `--force`. Running it twice changes nothing.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { OPTIONS_PROTO_PATH } from "@protoevents/codegen/layout";
import { CONFIG_FILE, type Config, DEFAULTS, loadConfig } from "./config.js";
import { writeOptionsProto } from "./generate.js";

/** Options of {@link runInit}. */
export interface InitOptions {
  /** The repository root. @default the current directory */
  readonly dir?: string;
  /** Overwrite files that exist. */
  readonly force?: boolean;
  /** The contract root to configure, when protoevents.json is written. */
  readonly contracts?: string;
  /** The generated directory to configure, when protoevents.json is written. */
  readonly generated?: string;
}

/** What happened to one file. */
export interface InitStep {
  /** Path relative to the repository root. */
  readonly file: string;
  readonly outcome: "created" | "overwritten" | "kept" | "updated" | "unchanged" | "foreign";
}

/** The sample's files, relative to the contract root. */
const SAMPLE_EVENT = "example/v1/task_events.proto";
const SAMPLE_APPLICATIONS = "example/v1/applications.proto";

function configJson(contracts: string, generated: string): string {
  return `${JSON.stringify(
    {
      contracts,
      generated,
      releases: DEFAULTS.releases,
      handlers: [...DEFAULTS.handlers],
    },
    null,
    2,
  )}\n`;
}

function bufYaml(config: Config, applicationFiles: readonly string[]): string {
  const ignore =
    applicationFiles.length === 0
      ? ""
      : `  ignore_only:
    # An application's rpcs are subscriptions: each takes the event it consumes
    # and returns google.protobuf.Empty, so the request/response naming rules of
    # RPC APIs do not apply. List every file that declares applications here.
${["RPC_REQUEST_STANDARD_NAME", "RPC_RESPONSE_STANDARD_NAME", "RPC_REQUEST_RESPONSE_UNIQUE"]
  .map((rule) => `    ${rule}:\n${applicationFiles.map((f) => `      - ${f}\n`).join("")}`)
  .join("")}`;
  return `# The buf module of the contracts. Nothing remote: protoevents/v1/options.proto
# is a copy \`protoevents generate\` keeps in step with the installed toolkit, and
# google/protobuf/*.proto come with buf.
version: v2
modules:
  - path: ${config.contracts}
lint:
  use:
    - STANDARD
${ignore}breaking:
  use:
    - WIRE_JSON
`;
}

function bufGenYaml(config: Config): string {
  return `# \`protoevents generate\` runs buf generate with this template: protoc-gen-es
# writes the message types, protoc-gen-protoevents the typed producers,
# consumers, validators and the contract registry. Both plugins come with
# @protoevents/cli; nothing is downloaded.
version: v2
clean: true
plugins:
  - local: protoc-gen-es
    out: ${config.generated}
    opt:
      - target=ts
      - import_extension=js
  - local: protoc-gen-protoevents
    out: ${config.generated}
    # One registry of every event and application: the plugin sees all files at once.
    strategy: all
    opt:
      - target=ts
      - import_extension=js
      - path_prefix=${config.contracts === "." ? "" : `${config.contracts}/`}
`;
}

const SAMPLE_EVENT_PROTO = `// A sample event written by \`protoevents init\`: change it, rename it or
// delete it. Every option is explained in protoevents/v1/options.proto.
syntax = "proto3";

package example.v1;

import "google/protobuf/timestamp.proto";
import "protoevents/v1/options.proto";

// A task was created.
message TaskCreated {
  option (protoevents.v1.event) = {
    topic: "example.task-created"
    ordering_key: "task_id"
    subject: "task_id"
  };
  // The task's id: its events are delivered in order per task.
  string task_id = 1 [(protoevents.v1.rules) = {
    required: true
    max_len: 64
  }];
  // What is to be done.
  string title = 2 [(protoevents.v1.rules) = {
    required: true
    max_len: 200
  }];
  // When the task was created.
  google.protobuf.Timestamp created_at = 3 [(protoevents.v1.rules) = {required: true}];
}
`;

const SAMPLE_APPLICATIONS_PROTO = `// A sample application written by \`protoevents init\`: an application is a
// deployable unit; each of its rpcs is one Pub/Sub subscription.
syntax = "proto3";

package example.v1;

import "example/v1/task_events.proto";
import "google/protobuf/empty.proto";
import "protoevents/v1/options.proto";

// The task service publishes TaskCreated and indexes every task created.
service TaskService {
  option (protoevents.v1.application) = {
    name: "tasks"
    publishes: ["example.v1.TaskCreated"]
  };
  // Subscription tasks.index-task: up to 5 delivery attempts, then its dead-letter topic.
  rpc IndexTask(TaskCreated) returns (google.protobuf.Empty);
}
`;

/** Whether the contract root holds any .proto file besides the managed options. */
function hasContracts(dir: string): boolean {
  if (!existsSync(dir)) {
    return false;
  }
  const stack = [dir];
  while (stack.length > 0) {
    const current = stack.pop() as string;
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== "node_modules") {
          stack.push(path);
        }
      } else if (entry.name.endsWith(".proto") && !path.endsWith(OPTIONS_PROTO_PATH)) {
        return true;
      }
    }
  }
  return false;
}

/** Write protoevents' starting files into a repository; returns what happened to each. */
export function runInit(options: InitOptions = {}): InitStep[] {
  const root = options.dir ?? process.cwd();
  const force = options.force === true;
  const steps: InitStep[] = [];
  const write = (file: string, text: string): void => {
    const path = join(root, file);
    const exists = existsSync(path);
    if (exists && !force) {
      steps.push({ file, outcome: "kept" });
      return;
    }
    if (exists && statSync(path).isFile() && readFileSync(path, "utf8") === text) {
      steps.push({ file, outcome: "unchanged" });
      return;
    }
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    steps.push({ file, outcome: exists ? "overwritten" : "created" });
  };

  // The configuration first: every other file follows it.
  const existingConfig = existsSync(join(root, CONFIG_FILE));
  if (!existingConfig || force) {
    const previous = existingConfig ? loadConfig(root) : undefined;
    write(
      CONFIG_FILE,
      configJson(
        options.contracts ?? previous?.contracts ?? DEFAULTS.contracts,
        options.generated ?? previous?.generated ?? DEFAULTS.generated,
      ),
    );
  } else {
    steps.push({ file: CONFIG_FILE, outcome: "kept" });
  }
  const config = loadConfig(root);
  const contracts = join(root, config.contracts);
  const sample = !hasContracts(contracts);
  const prefix = config.contracts === "." ? "" : `${config.contracts}/`;

  write("buf.yaml", bufYaml(config, sample ? [`${prefix}${SAMPLE_APPLICATIONS}`] : []));
  write("buf.gen.yaml", bufGenYaml(config));
  mkdirSync(contracts, { recursive: true });
  steps.push({ file: `${prefix}${OPTIONS_PROTO_PATH}`, outcome: writeOptionsProto(config, force) });
  if (sample) {
    write(`${prefix}${SAMPLE_EVENT}`, SAMPLE_EVENT_PROTO);
    write(`${prefix}${SAMPLE_APPLICATIONS}`, SAMPLE_APPLICATIONS_PROTO);
  }
  return steps;
}

/** The report `protoevents init` prints. */
export function formatInit(steps: readonly InitStep[]): string {
  const lines = steps.map((s) => {
    switch (s.outcome) {
      case "kept":
        return `  kept        ${s.file} (it exists; --force overwrites it)`;
      case "foreign":
        return `  kept        ${s.file} (not the copy protoevents manages; --force replaces it)`;
      default:
        return `  ${s.outcome.padEnd(11)} ${s.file}`;
    }
  });
  if (steps.every((s) => s.outcome === "kept" || s.outcome === "unchanged")) {
    lines.push("nothing to do: every file is there");
  }
  lines.push(
    "next: `npx protoevents generate` (buf generate, then sync), `npx protoevents check` in CI,",
    "      `npx protoevents provision --dry-run` to see what Pub/Sub needs",
  );
  return lines.join("\n");
}
