/**
 * The one module that runs the buf CLI: resolved through the installed
 * `@bufbuild/buf` package (never a fixed path), with its findings parsed from
 * `--error-format json`. The compatibility gate, releases, the catalog, sync
 * and `protoevents generate` all run buf through here, and so do the tests
 * and benchmarks that compile .proto sources.
 */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { delimiter, dirname, join } from "node:path";
import { Code, ProtoeventsError } from "@protoevents/runtime/errors";

const require = createRequire(import.meta.url);

/**
 * The buf binary of the installed `@bufbuild/buf` package (it runs offline).
 *
 * @throws ProtoeventsError `buf_not_found` when the package is not installed.
 */
export function resolveBuf(): string {
  let manifest: string;
  try {
    manifest = require.resolve("@bufbuild/buf/package.json");
  } catch (cause) {
    throw new ProtoeventsError(
      Code.BufNotFound,
      "cannot find the buf CLI: the @bufbuild/buf package is not installed. It comes with @protoevents/cli; run `npm install --save-dev @protoevents/cli` (or `npm install --save-dev @bufbuild/buf`).",
      { cause },
    );
  }
  const { bin } = require(manifest) as { bin?: Record<string, string> };
  return join(dirname(manifest), bin?.buf ?? "bin/buf");
}

/** buf's exit code when lint or breaking found something (as opposed to failing to run). */
const BUF_FINDINGS_EXIT = 100;

/** One line of buf's `--error-format json` output. */
export interface BufFinding {
  /** Path from the workspace root, e.g. `proto/checkout/v1/order_events.proto`. */
  readonly path: string;
  readonly line: number;
  readonly column: number;
  /** buf's rule id, e.g. `FIELD_SAME_NAME`; `COMPILE` for a file that does not compile. */
  readonly type: string;
  readonly message: string;
}

/** Where the contracts are and which buf runs on them. */
export interface BufWorkspace {
  /** The directory holding buf.yaml. */
  readonly dir: string;
  /** The buf binary. @default {@link resolveBuf} */
  readonly buf?: string;
  /** Directories put in front of PATH, where buf finds `local:` plugins. */
  readonly pluginPath?: readonly string[];
}

/** What a buf run printed, and its exit code. */
export interface BufRun {
  readonly code: number;
  readonly stdout: Buffer;
  readonly stderr: string;
}

function pathWith(dirs: readonly string[] | undefined): NodeJS.ProcessEnv {
  if (dirs === undefined || dirs.length === 0) {
    return process.env;
  }
  return { ...process.env, PATH: [...dirs, process.env.PATH ?? ""].join(delimiter) };
}

/** Run buf in the workspace; resolves with its exit code and output, rejects only when it could not run. */
export async function runBuf(workspace: BufWorkspace, args: readonly string[]): Promise<BufRun> {
  const buf = workspace.buf ?? resolveBuf();
  return new Promise((resolve, reject) => {
    execFile(
      buf,
      [...args],
      {
        cwd: workspace.dir,
        encoding: "buffer",
        maxBuffer: 256 * 1024 * 1024,
        env: pathWith(workspace.pluginPath),
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : (error as { code?: unknown }).code;
        if (typeof code !== "number") {
          reject(
            new ProtoeventsError(
              Code.BufNotFound,
              `cannot run ${buf}: ${error?.message ?? "unknown error"}. Reinstall @bufbuild/buf (it comes with @protoevents/cli): \`npm install --save-dev @protoevents/cli\`.`,
              { cause: error },
            ),
          );
          return;
        }
        resolve({ code, stdout, stderr: stderr.toString("utf8") });
      },
    );
  });
}

function parseFindings(stdout: Buffer): BufFinding[] {
  const findings: BufFinding[] = [];
  for (const line of stdout.toString("utf8").split("\n")) {
    if (line.trim() === "") {
      continue;
    }
    const raw = JSON.parse(line) as {
      path?: string;
      start_line?: number;
      start_column?: number;
      type?: string;
      message?: string;
    };
    findings.push({
      path: raw.path ?? "",
      line: raw.start_line ?? 1,
      column: raw.start_column ?? 1,
      type: raw.type ?? "UNKNOWN",
      message: raw.message ?? "",
    });
  }
  return findings;
}

/** Run a buf command that reports findings; throw when it could not run at all. */
async function bufFindings(
  workspace: BufWorkspace,
  args: readonly string[],
): Promise<BufFinding[]> {
  const run = await runBuf(workspace, [...args, "--error-format", "json"]);
  if (run.code === 0) {
    return [];
  }
  if (run.code === BUF_FINDINGS_EXIT) {
    try {
      const findings = parseFindings(run.stdout);
      if (findings.length > 0) {
        return findings;
      }
    } catch {
      // Not JSON lines: fall through and report what buf said.
    }
  }
  throw new ProtoeventsError(
    Code.InvalidContract,
    `buf ${args.join(" ")} failed (exit ${run.code}) in ${workspace.dir}: ${(run.stderr || run.stdout.toString("utf8")).trim()}`,
  );
}

/** `buf lint` over the workspace. Files that do not compile come back as findings of type `COMPILE`. */
export function bufLint(workspace: BufWorkspace): Promise<BufFinding[]> {
  return bufFindings(workspace, ["lint"]);
}

/**
 * `buf breaking` of the workspace against a released image, with the rules
 * buf.yaml's `breaking` section selects.
 */
export function bufBreaking(workspace: BufWorkspace, againstImage: string): Promise<BufFinding[]> {
  return bufFindings(workspace, ["breaking", "--against", againstImage]);
}

/**
 * `buf build <module>`: a binary image of the module's files and their
 * imports, with source info (for locations). buf writes it deterministically:
 * the same .proto files give the same bytes.
 */
export async function bufBuild(workspace: BufWorkspace, modulePath: string): Promise<Uint8Array> {
  const run = await runBuf(workspace, ["build", modulePath, "-o", "-"]);
  if (run.code !== 0) {
    throw new ProtoeventsError(
      Code.InvalidContract,
      `buf build ${modulePath} failed in ${workspace.dir}:\n${run.stderr.trim()}`,
    );
  }
  return new Uint8Array(run.stdout.buffer, run.stdout.byteOffset, run.stdout.byteLength);
}

/** `buf --version`, for the release manifest. */
export async function bufVersion(workspace: BufWorkspace): Promise<string> {
  const run = await runBuf(workspace, ["--version"]);
  return run.stdout.toString("utf8").trim();
}

/**
 * The path of the (first) module in buf.yaml, e.g. `proto`; `.` when the
 * workspace root is the module. It prefixes .proto paths in findings so they
 * open from the repository root.
 */
export async function readModulePath(dir: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(join(dir, "buf.yaml"), "utf8");
  } catch (cause) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `no buf.yaml in ${dir}: run protoevents from the repository root`,
      { cause },
    );
  }
  const match = /^modules:\s*\n\s*-\s*path:\s*["']?([^\s"'#]+)/m.exec(text);
  return match?.[1]?.replace(/\/+$/, "") ?? ".";
}

/** `proto/` for module path `proto`, empty for `.`. */
export function pathPrefixOf(modulePath: string): string {
  return modulePath === "." || modulePath === "" ? "" : `${modulePath}/`;
}
