/**
 * A team adopts protoevents in a repository of its own: the packed tarballs
 * of @protoevents/runtime, /codegen and /cli installed into a fresh directory
 * outside this repository (no workspace links), the README's steps run
 * there, on contracts that are not the checkout's, and a user program
 * compiled with `tsc --strict` publishes and consumes through the real
 * emulator under plain `node`.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  copyFile,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ROOT } from "../helpers/cli.js";

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run a command in the adopting repository; never throws, the caller asserts. */
async function sh(
  cwd: string,
  command: string,
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
  timeoutMs = 240_000,
): Promise<Run> {
  try {
    const { stdout, stderr } = await promisify(execFile)(command, [...args], {
      cwd,
      env: { ...process.env, ...env },
      timeout: timeoutMs,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string; message?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? "", stderr: e.stderr ?? e.message ?? "" };
  }
}

function ok(run: Run, what: string): Run {
  expect(run.code, `${what} failed:\n${run.stdout}\n${run.stderr}`).toBe(0);
  return run;
}

/** What `npm pack --json` reports per package. */
interface Packed {
  readonly name: string;
  readonly filename: string;
  readonly size: number;
  readonly unpackedSize: number;
  readonly files: ReadonlyArray<{ readonly path: string }>;
}

/** The better-sqlite3 this repository installed (and compiled). */
const SQLITE_VERSION = (
  JSON.parse(
    readFileSync(join(ROOT, "node_modules", "better-sqlite3", "package.json"), "utf8"),
  ) as { version: string }
).version;

/** Installs from the npm cache the repository's own install filled. */
const NPM_INSTALL = ["install", "--prefer-offline", "--no-audit", "--no-fund"];

const FLEET_EVENTS = `// Fleet events of Acme Logistics: nothing like a checkout.
syntax = "proto3";

package acme.fleet.v1;

import "google/protobuf/duration.proto";
import "google/protobuf/timestamp.proto";
import "protoevents/v1/options.proto";

// What kind of vehicle.
enum VehicleKind {
  VEHICLE_KIND_UNSPECIFIED = 0;
  VEHICLE_KIND_VAN = 1;
  VEHICLE_KIND_TRUCK = 2;
}

// A vehicle reported where it is.
message PositionReported {
  option (protoevents.v1.event) = {
    topic: "acme.fleet.position-reported"
    ordering_key: "vehicle_id"
    subject: "vehicle_id"
  };
  // A point on the map.
  message Coordinates {
    // Degrees north, times a million.
    int64 lat_micro = 1 [(protoevents.v1.rules) = {
      min: -90000000
      max: 90000000
    }];
    // Degrees east, times a million.
    int64 lng_micro = 2 [(protoevents.v1.rules) = {
      min: -180000000
      max: 180000000
    }];
  }
  // The vehicle: an int64 ordering key.
  int64 vehicle_id = 1 [(protoevents.v1.rules) = {min: 1}];
  // Where it is.
  Coordinates at = 2 [(protoevents.v1.rules) = {required: true}];
  // What it is.
  VehicleKind kind = 3 [(protoevents.v1.rules) = {required: true}];
  // Which device reported.
  oneof source {
    // A GPS unit's serial.
    string gps_unit = 4;
    // A driver's phone.
    string phone = 5 [(protoevents.v1.rules) = {pii: true}];
  }
  // Free-form labels.
  map<string, string> labels = 6 [(protoevents.v1.rules) = {max_items: 10}];
  // When it was reported.
  google.protobuf.Timestamp reported_at = 7 [(protoevents.v1.rules) = {required: true}];
  // Time since the previous report.
  google.protobuf.Duration since_last = 8;
}

// A delivery was completed; published as JSON for a partner that reads it.
message DeliveryCompleted {
  option (protoevents.v1.event) = {
    topic: "acme.fleet.delivery-completed"
    ordering_key: "route_id"
    subject: "delivery_id"
    encoding: PAYLOAD_ENCODING_JSON
  };
  // The delivery.
  string delivery_id = 1 [(protoevents.v1.rules) = {
    required: true
    max_len: 64
  }];
  // The route it was on.
  int64 route_id = 2;
  // Who signed for it.
  string signed_by = 3 [(protoevents.v1.rules) = {
    max_len: 100
    pii: true
  }];
}
`;

const FLEET_APPLICATIONS = `// The fleet's two applications.
syntax = "proto3";

package acme.fleet.v1;

import "acme/fleet/v1/fleet_events.proto";
import "google/protobuf/empty.proto";
import "protoevents/v1/options.proto";

// Dispatch sends vehicles out and records completed deliveries.
service DispatchService {
  option (protoevents.v1.application) = {
    name: "dispatch"
    publishes: ["acme.fleet.v1.PositionReported"]
  };
  // Records a completed delivery.
  rpc RecordDelivery(DeliveryCompleted) returns (google.protobuf.Empty);
}

// Tracking keeps every vehicle's last position, in order per vehicle.
service TrackingService {
  option (protoevents.v1.application) = {
    name: "tracking"
    publishes: ["acme.fleet.v1.DeliveryCompleted"]
  };
  // Moves the vehicle on the map.
  rpc TrackPosition(PositionReported) returns (google.protobuf.Empty) {
    option (protoevents.v1.subscription) = {
      ordered: true
      max_delivery_attempts: 10
    };
  }
}
`;

/** The user's program: publish and consume both events, with a SQLite inbox for tracking. */
const PROGRAM = `import { durationFromMs, timestampNow } from "@bufbuild/protobuf/wkt";
import { createPubSub, createSqliteStore, type DeliveryOutcome, provision } from "@protoevents/runtime";
import {
  createDispatchServicePublisher,
  createTrackingServicePublisher,
  subscribeDispatchServiceAtLeastOnce,
  subscribeTrackingService,
} from "./gen/acme/fleet/v1/applications_pe.js";
import { VehicleKind } from "./gen/acme/fleet/v1/fleet_events_pb.js";
import { registry } from "./gen/protoevents_registry.js";

const pubsub = createPubSub(); // PUBSUB_EMULATOR_HOST and PUBSUB_PROJECT_ID from the environment
await provision(pubsub, registry, { dryRun: false });
const store = await createSqliteStore({ file: process.argv[2] ?? ".data/tracking.sqlite" });

const positions: string[] = [];
const deliveries: string[] = [];
const outcomes: DeliveryOutcome[] = [];
let finish: (() => void) | undefined;
const finished = new Promise<void>((resolve) => {
  finish = resolve;
});
const check = (): void => {
  const duplicate = outcomes.some((o) => o.result === "duplicate" && o.subscription === "tracking.track-position");
  if (positions.length > 0 && deliveries.length > 0 && duplicate) {
    finish?.();
  }
};

const tracking = subscribeTrackingService(
  pubsub,
  {
    trackPosition(event, context) {
      const source = event.source.case === "gpsUnit" ? event.source.value : "?";
      positions.push(
        \`\${event.vehicleId}@\${event.at.latMicro},\${event.at.lngMicro} \${VehicleKind[event.kind]} \${source} \${event.labels.depot} key=\${context.envelope.subject}\`,
      );
      check();
    },
  },
  { store, onDelivery: (o) => { outcomes.push(o); check(); } },
);
const dispatch = subscribeDispatchServiceAtLeastOnce(pubsub, {
  recordDelivery(event, context) {
    deliveries.push(\`\${event.deliveryId} route \${event.routeId} \${context.envelope.contentType}\`);
    check();
  },
});

const position = {
  vehicleId: 9_007_199_254_740_993n,
  at: { latMicro: 51_507_400n, lngMicro: -127_800n },
  kind: VehicleKind.TRUCK,
  source: { case: "gpsUnit" as const, value: "gps-17" },
  labels: { depot: "north" },
  reportedAt: timestampNow(),
  sinceLast: durationFromMs(30_000),
};
const first = await createDispatchServicePublisher(pubsub).publishPositionReported(position);
// The same event again (same ce-id): the SQLite inbox must keep the handler from running twice.
await createDispatchServicePublisher(pubsub).publishPositionReported(position, { id: first.id });
await createTrackingServicePublisher(pubsub).publishDeliveryCompleted({
  deliveryId: "dlv-1",
  routeId: 42n,
  signedBy: "R. Receiver",
});

const timer = setTimeout(() => finish?.(), 60_000);
await finished;
clearTimeout(timer);
await Promise.all([tracking.close(), dispatch.close()]);
await store.close();
await pubsub.close();
console.log(JSON.stringify({ positions, deliveries, duplicates: outcomes.filter((o) => o.result === "duplicate").length }));
`;

const TSCONFIG = {
  compilerOptions: {
    target: "ES2022",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    strict: true,
    // Every declaration file is checked, ours included.
    skipLibCheck: false,
    types: ["node"],
    rootDir: "src",
    outDir: "dist",
  },
  include: ["src"],
};

/** The fenced block after `<!-- adoption-test: <name> -->` in the README. */
function readmeBlock(readme: string, name: string): string {
  const marker = `<!-- adoption-test: ${name} -->`;
  const at = readme.indexOf(marker);
  expect(at, `README.md has ${marker}`).toBeGreaterThanOrEqual(0);
  const open = readme.indexOf("\n", readme.indexOf("```", at)) + 1;
  return readme.slice(open, readme.indexOf("\n```", open) + 1);
}

async function digest(dir: string, files: readonly string[]): Promise<string> {
  const hash = createHash("sha256");
  for (const file of files) {
    hash.update(file).update(await readFile(join(dir, file)));
  }
  return hash.digest("hex");
}

describe("adopting protoevents in a repository of one's own", () => {
  let base = "";
  let app = "";
  let packed: Packed[] = [];
  const npx = (args: readonly string[], env: Record<string, string> = {}) =>
    sh(app, join(app, "node_modules", ".bin", args[0] ?? ""), args.slice(1), env);
  const emulator = () => ({
    PUBSUB_EMULATOR_HOST: inject("emulatorHost"),
    PUBSUB_PROJECT_ID: `adopt-${process.pid}`,
  });

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), "protoevents-adopt-"));
    app = join(base, "acme-fleet");
    const tarballs = join(base, "tarballs");
    await mkdir(tarballs, { recursive: true });
    await mkdir(app, { recursive: true });
    // prepack builds each package first, so the tarballs hold today's code.
    const pack = ok(
      await sh(ROOT, "npm", [
        "pack",
        "--workspace",
        "runtime",
        "--workspace",
        "codegen",
        "--workspace",
        "cli",
        "--pack-destination",
        tarballs,
        "--json",
      ]),
      "npm pack",
    );
    packed = JSON.parse(pack.stdout.slice(pack.stdout.indexOf("["))) as Packed[];
    const tarball = (name: string) => {
      const found = packed.find((p) => p.name === name);
      if (found === undefined) {
        throw new Error(`npm pack made no ${name}`);
      }
      return join(tarballs, found.filename);
    };
    await writeFile(
      join(app, "package.json"),
      `${JSON.stringify({ name: "acme-fleet", version: "1.0.0", private: true, type: "module" }, null, 2)}\n`,
    );
    // The README's install steps, from the npm cache the repository's install filled.
    ok(
      await sh(app, "npm", [
        ...NPM_INSTALL,
        tarball("@protoevents/runtime"),
        "@bufbuild/protobuf@^2.17.0",
        "@google-cloud/pubsub@^5.3.1",
      ]),
      "npm install (runtime)",
    );
    // @protoevents/codegen comes with the CLI from a registry; from tarballs it is named too.
    ok(
      await sh(app, "npm", [
        ...NPM_INSTALL,
        "--save-dev",
        tarball("@protoevents/cli"),
        tarball("@protoevents/codegen"),
        "typescript@5.9.3",
        "@types/node@^20",
      ]),
      "npm install --save-dev (cli)",
    );
    // The SQLite driver is a native addon that compiles for a minute on install: the
    // test installs it without its build script and takes the addon this repository's
    // install compiled from the same version on this machine.
    ok(
      await sh(app, "npm", [
        ...NPM_INSTALL,
        "--ignore-scripts",
        `better-sqlite3@${SQLITE_VERSION}`,
      ]),
      "npm install better-sqlite3",
    );
    const addon = join("build", "Release", "better_sqlite3.node");
    await mkdir(join(app, "node_modules", "better-sqlite3", "build", "Release"), {
      recursive: true,
    });
    await copyFile(
      join(ROOT, "node_modules", "better-sqlite3", addon),
      join(app, "node_modules", "better-sqlite3", addon),
    );
  }, 600_000);

  afterAll(async () => {
    if (base !== "") {
      await rm(base, { recursive: true, force: true });
    }
  });

  it("should pack built JavaScript with declarations and nothing of the checkout", () => {
    expect(packed.map((p) => p.name).sort()).toEqual([
      "@protoevents/cli",
      "@protoevents/codegen",
      "@protoevents/runtime",
    ]);
    for (const pkg of packed) {
      const files = pkg.files.map((f) => f.path);
      expect(files, pkg.name).toContain("package.json");
      expect(
        files.filter(
          (f) => /checkout|services\/|generated\/|\.ts$/.test(f) && !f.endsWith(".d.ts"),
        ),
        pkg.name,
      ).toEqual([]);
      expect(
        files.some((f) => f.startsWith("src/")),
        pkg.name,
      ).toBe(false);
    }
    const files = (name: string) =>
      packed.find((p) => p.name === name)?.files.map((f) => f.path) ?? [];
    expect(files("@protoevents/runtime")).toEqual(
      expect.arrayContaining(["dist/index.js", "dist/index.d.ts", "dist/errors.js"]),
    );
    expect(files("@protoevents/codegen")).toEqual(
      expect.arrayContaining([
        "bin/protoc-gen-protoevents",
        "dist/plugin.js",
        "proto/protoevents/v1/options.proto",
      ]),
    );
    expect(files("@protoevents/cli")).toEqual(
      expect.arrayContaining(["bin/protoevents", "dist/main.js"]),
    );
  });

  it("should install exactly what the README's install steps name", async () => {
    const steps = readmeBlock(await readFile(join(ROOT, "README.md"), "utf8"), "install")
      .split("\n")
      .map((line) => line.replace(/#.*/, "").trim())
      .filter((line) => line !== "");
    const named = (line: string | undefined) =>
      (line ?? "")
        .split(/\s+/)
        .filter((word) => !word.startsWith("-") && !["npm", "install"].includes(word));
    expect(named(steps[0])).toEqual([
      "@protoevents/runtime",
      "@bufbuild/protobuf",
      "@google-cloud/pubsub",
      "better-sqlite3",
    ]);
    expect(steps[1]).toMatch(/^npm install --save-dev /);
    expect(named(steps[1])).toEqual(["@protoevents/cli", "typescript", "@types/node"]);
    expect(steps.slice(2)).toEqual(["npx protoevents init", "npx protoevents generate"]);
    const manifest = JSON.parse(await readFile(join(app, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    expect(Object.keys(manifest.dependencies).sort()).toEqual([...named(steps[0])].sort());
    // The codegen tarball is named only because no registry serves it here.
    expect(Object.keys(manifest.devDependencies).sort()).toEqual(
      [...named(steps[1]), "@protoevents/codegen"].sort(),
    );
  });

  it("should install the packages themselves, not links, with the drivers optional", async () => {
    const manifest = JSON.parse(
      await readFile(join(app, "node_modules", "@protoevents", "runtime", "package.json"), "utf8"),
    ) as { peerDependenciesMeta: Record<string, { optional?: boolean }> };
    expect(manifest.peerDependenciesMeta.pg?.optional).toBe(true);
    expect(manifest.peerDependenciesMeta["better-sqlite3"]?.optional).toBe(true);
    // A PostgreSQL user never gets SQLite and the other way round: pg is not installed here.
    expect(await readdir(join(app, "node_modules"))).not.toContain("pg");
    // Real directories holding built declarations, not links into this repository.
    for (const [name, entry] of [
      ["runtime", "index.d.ts"],
      ["codegen", "index.d.ts"],
      ["cli", "main.d.ts"],
    ] as const) {
      const installed = join(app, "node_modules", "@protoevents", name);
      expect((await lstat(installed)).isSymbolicLink(), name).toBe(false);
      expect(await readdir(join(installed, "dist")), name).toContain(entry);
    }
  });

  it("should init, generate, compile strictly, and publish and consume under plain node", async () => {
    const init = ok(await npx(["protoevents", "init"]), "protoevents init");
    const written = [
      "protoevents.json",
      "buf.yaml",
      "buf.gen.yaml",
      "proto/protoevents/v1/options.proto",
      "proto/example/v1/task_events.proto",
      "proto/example/v1/applications.proto",
    ];
    for (const file of written) {
      expect(init.stdout).toMatch(new RegExp(`created +${file.replaceAll(".", "\\.")}`));
    }
    const before = await digest(app, written);
    const again = ok(await npx(["protoevents", "init"]), "protoevents init, again");
    expect(again.stdout).toContain("nothing to do: every file is there");
    expect(await digest(app, written)).toBe(before);

    // The sample builds and lints as written, and the README's program compiles against it.
    ok(await npx(["buf", "lint"]), "buf lint of the sample");
    ok(await npx(["protoevents", "generate"]), "protoevents generate of the sample");
    await writeFile(join(app, "tsconfig.json"), `${JSON.stringify(TSCONFIG, null, 2)}\n`);
    const readme = await readFile(join(ROOT, "README.md"), "utf8");
    await writeFile(join(app, "src", "readme.ts"), readmeBlock(readme, "program"));
    const sample = await npx(["tsc", "-p", "tsconfig.json", "--noEmit"]);
    expect(sample.stdout + sample.stderr).toBe("");
    await rm(join(app, "src", "readme.ts"));

    // The team replaces the sample with its own contracts, as buf.yaml's comment says.
    await rm(join(app, "proto", "example"), { recursive: true });
    await mkdir(join(app, "proto", "acme", "fleet", "v1"), { recursive: true });
    await writeFile(join(app, "proto/acme/fleet/v1/fleet_events.proto"), FLEET_EVENTS);
    await writeFile(join(app, "proto/acme/fleet/v1/applications.proto"), FLEET_APPLICATIONS);
    const bufYaml = await readFile(join(app, "buf.yaml"), "utf8");
    await writeFile(
      join(app, "buf.yaml"),
      bufYaml.replaceAll(
        "proto/example/v1/applications.proto",
        "proto/acme/fleet/v1/applications.proto",
      ),
    );
    ok(await npx(["buf", "lint"]), "buf lint");
    const generated = ok(await npx(["protoevents", "generate"]), "protoevents generate");
    expect(generated.stderr).toContain("src/gen/ is up to date with proto/");
    const gen = await readdir(join(app, "src", "gen", "acme", "fleet", "v1"));
    expect(gen.sort()).toEqual([
      "applications_pb.ts",
      "applications_pe.ts",
      "fleet_events_pb.ts",
      "fleet_events_pe.ts",
    ]);
    expect(await readFile(join(app, "src/gen/acme/fleet/v1/fleet_events_pe.ts"), "utf8")).toContain(
      'from "@protoevents/runtime"',
    );
    // buf.gen.yaml works on its own too, with the plugins npm put on PATH.
    const files = [
      "src/gen/protoevents_registry.ts",
      ...gen.map((f) => `src/gen/acme/fleet/v1/${f}`),
    ];
    const ours = await digest(app, files);
    ok(await sh(app, "npm", ["exec", "--", "buf", "generate"]), "npm exec -- buf generate");
    expect(await digest(app, files)).toBe(ours);

    await writeFile(join(app, "src", "main.ts"), PROGRAM);
    const tsc = await npx(["tsc", "-p", "tsconfig.json"]);
    expect(tsc.stdout + tsc.stderr).toBe("");
    expect(tsc.code).toBe(0);

    const run = ok(
      await sh(
        app,
        process.execPath,
        ["dist/main.js", join(base, "tracking.sqlite")],
        emulator(),
        120_000,
      ),
      "node dist/main.js",
    );
    const result = JSON.parse(run.stdout.trim().split("\n").at(-1) ?? "{}") as {
      positions: string[];
      deliveries: string[];
      duplicates: number;
    };
    expect(result).toEqual({
      // Once, though published twice with one ce-id: the SQLite inbox kept the duplicate out.
      positions: ["9007199254740993@51507400,-127800 TRUCK gps-17 north key=9007199254740993"],
      deliveries: ["dlv-1 route 42 application/json"],
      duplicates: 1,
    });
  }, 300_000);

  it("should refuse a breaking change with protoevents check and show the plan with provision --dry-run", async () => {
    const release = ok(
      await npx(["protoevents", "release", "--version", "1.0.0", "--date", "2026-12-01"]),
      "protoevents release",
    );
    expect(release.stdout).toContain("recorded release 1.0.0 (2026-12-01) in releases/1.0.0");
    ok(await npx(["protoevents", "check"]), "protoevents check of an unchanged contract");

    const file = join(app, "proto/acme/fleet/v1/fleet_events.proto");
    const source = await readFile(file, "utf8");
    const edited = source.replace(
      'topic: "acme.fleet.position-reported"',
      'topic: "acme.fleet.positions"',
    );
    await writeFile(file, edited);
    const line = edited.split("\n").findIndex((l) => l.includes("acme.fleet.positions")) + 1;
    const check = await npx(["protoevents", "check"]);
    expect(check.code).toBe(1);
    expect(check.stdout).toContain(
      `proto/acme/fleet/v1/fleet_events.proto:${line}:5: event-topic-changed: event acme.fleet.v1.PositionReported is published on topic "acme.fleet.positions" instead of "acme.fleet.position-reported"`,
    );
    expect(check.stdout).toContain("consumers: tracking (tracking.track-position)");
    await writeFile(file, source);

    const plan = ok(
      await npx(
        ["protoevents", "provision", "--dry-run", "--project", `adopt-plan-${process.pid}`],
        emulator(),
      ),
      "protoevents provision --dry-run",
    );
    expect(plan.stdout).toContain("+ topic acme.fleet.position-reported");
    expect(plan.stdout).toContain("+ subscription tracking.track-position");
    expect(plan.stdout).toContain("+ topic tracking.track-position.dead-letter");
    expect(plan.stdout).toContain("dry run: nothing was changed");
  }, 180_000);

  it("should say which package to install when buf is missing", async () => {
    await rm(join(app, "node_modules", "@bufbuild", "buf"), { recursive: true });
    const check = await npx(["protoevents", "check"]);
    expect(check.code).toBe(1);
    expect(check.stderr).toContain(
      "protoevents: [buf_not_found] cannot find the buf CLI: the @bufbuild/buf package is not installed. It comes with @protoevents/cli; run `npm install --save-dev @protoevents/cli`",
    );
  });
});
