import { createHash } from "node:crypto";
import { rmSync } from "node:fs";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type CheckReport, checkContracts } from "../../codegen/src/compat/check.js";
import { createRelease } from "../../codegen/src/release/releases.js";

/** The repository root. */
export const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** The committed before/after contract pairs. */
export const fixtures = join(root, "test", "fixtures", "compat");

/**
 * buf.yaml of a fixture workspace: the repository's rules, with the
 * request/response naming rules off for every file (application rpcs take
 * an event and return Empty, as in proto/checkout/v1/applications.proto).
 */
export const FIXTURE_BUF_YAML = `version: v2
modules:
  - path: proto
lint:
  use:
    - STANDARD
  except:
    - RPC_REQUEST_STANDARD_NAME
    - RPC_RESPONSE_STANDARD_NAME
    - RPC_REQUEST_RESPONSE_UNIQUE
breaking:
  use:
    - WIRE_JSON
`;

/** A temporary repository: buf.yaml, proto/ with our options.proto, and releases/. */
export interface Workspace {
  readonly dir: string;
  /** Replace the contracts (everything but options.proto) with a fixture directory's. */
  contracts(from: string): Promise<void>;
  /** Record the current contracts as a release. */
  release(version: string): Promise<void>;
  check(): Promise<CheckReport>;
  remove(): Promise<void>;
}

/** Create a workspace in the system's temporary directory, with {@link FIXTURE_BUF_YAML} unless told otherwise. */
export async function workspace(bufYaml = FIXTURE_BUF_YAML): Promise<Workspace> {
  const dir = await mkdtemp(join(tmpdir(), "protoevents-compat-"));
  await writeFile(join(dir, "buf.yaml"), bufYaml);
  const options = join(dir, "proto", "protoevents", "v1");
  await mkdir(options, { recursive: true });
  await writeFile(
    join(options, "options.proto"),
    await readFile(join(root, "proto", "protoevents", "v1", "options.proto")),
  );
  return {
    dir,
    async contracts(from) {
      for (const entry of await readdir(join(dir, "proto"))) {
        if (entry !== "protoevents") {
          await rm(join(dir, "proto", entry), { recursive: true, force: true });
        }
      }
      await cp(from, join(dir, "proto"), { recursive: true });
    },
    async release(version) {
      await createRelease({ dir, version, date: "2025-01-01" });
    },
    check: () => checkContracts({ dir }),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** How a case's "after" declares compatibility modes. */
export interface CaseModes {
  /** The package default: `option (protoevents.v1.defaults) = {compatibility: …}` in every file. */
  readonly package?: string;
  /** Per event (short name, e.g. `OrderPlaced`): `compatibility: …` in its event option. */
  readonly events?: Readonly<Record<string, string>>;
}

/** Declare modes in the contracts of a workspace (the "after" of a case), as a user would write them. */
export async function declareModes(dir: string, modes: CaseModes): Promise<void> {
  const path = join(dir, "proto", "shop", "v1", "shop.proto");
  let text = await readFile(path, "utf8");
  if (modes.package !== undefined) {
    const anchor = 'import "protoevents/v1/options.proto";\n';
    if (!text.includes(anchor)) {
      throw new Error(`${path} does not import options.proto`);
    }
    text = text.replace(
      anchor,
      `${anchor}\noption (protoevents.v1.defaults) = {compatibility: COMPATIBILITY_${modes.package}};\n`,
    );
  }
  for (const [event, mode] of Object.entries(modes.events ?? {})) {
    const at = new RegExp(`(message ${event} \\{\\n  option \\(protoevents\\.v1\\.event\\) = \\{)`);
    if (!at.test(text)) {
      throw new Error(`${path} has no event ${event} whose event option opens its body`);
    }
    text = text.replace(at, `$1 compatibility: COMPATIBILITY_${mode} `);
  }
  await writeFile(path, text);
}

/** Every file below a directory, path and content, in a stable order. */
async function contentKey(dir: string): Promise<string> {
  const hash = createHash("sha256");
  const entries = (await readdir(dir, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort();
  for (const file of entries) {
    hash.update(`${file.slice(dir.length)}\u0000`);
    hash.update(await readFile(file));
  }
  return hash.digest("hex");
}

/** Where releases of identical "before" contracts are kept for the cases that share them. */
let releaseCache: string | undefined;
const releasedBefores = new Map<string, Promise<string>>();
process.once("exit", () => {
  if (releaseCache !== undefined) {
    rmSync(releaseCache, { recursive: true, force: true });
  }
});

/**
 * Record `before` as release 0.1.0 of a workspace. Every case's "before" is
 * the same shop, and a release of the same contracts is byte-identical
 * (release.test.ts proves it), so it is made with the real `protoevents
 * release` once per content and buf.yaml and copied into the other cases.
 */
async function releaseBefore(ws: Workspace, before: string, bufYaml: string): Promise<void> {
  const key = `${await contentKey(before)}:${createHash("sha256").update(bufYaml).digest("hex")}`;
  let made = releasedBefores.get(key);
  if (made === undefined) {
    made = (async () => {
      await ws.contracts(before);
      await ws.release("0.1.0");
      releaseCache ??= await mkdtemp(join(tmpdir(), "protoevents-compat-releases-"));
      const kept = join(releaseCache, key.slice(0, 16));
      await cp(join(ws.dir, "releases"), kept, { recursive: true });
      return kept;
    })();
    releasedBefores.set(key, made);
    await made;
    return;
  }
  await cp(await made, join(ws.dir, "releases"), { recursive: true });
}

/** Record a case's "before" as release 0.1.0, put its "after" in place (with modes, if given) and run the gate. */
export async function gateCase(
  name: string,
  options: { readonly bufYaml?: string; readonly modes?: CaseModes } = {},
): Promise<CheckReport> {
  const bufYaml = options.bufYaml ?? FIXTURE_BUF_YAML;
  const ws = await workspace(bufYaml);
  try {
    await releaseBefore(ws, join(fixtures, name, "before"), bufYaml);
    await ws.contracts(join(fixtures, name, "after"));
    if (options.modes !== undefined) {
      await declareModes(ws.dir, options.modes);
    }
    return await ws.check();
  } finally {
    await ws.remove();
  }
}
