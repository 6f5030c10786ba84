/**
 * protoevents.json: where a repository keeps its contracts, generated code,
 * releases and handler implementations. Every key has a default for the
 * conventional layout, so the file is optional; `protoevents init` writes one.
 * An unknown key, a value of the wrong type, or a directory that must exist
 * and does not is an error naming the file, the key and the fix.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { isAbsolute, join, normalize, relative, resolve, sep } from "node:path";
import { DEFAULT_EXTENSION_NUMBER, REGISTRY_FILE } from "@protoevents/codegen/layout";
import { Code, ProtoeventsError } from "@protoevents/runtime/errors";

/** The file name, in the repository root. */
export const CONFIG_FILE = "protoevents.json";

/** The configuration with every default applied; paths relative to {@link Config.root}. */
export interface Config {
  /** The repository root: the directory of protoevents.json (or the current directory without one). */
  readonly root: string;
  /** protoevents.json's path, or undefined when there is none and the defaults apply. */
  readonly file: string | undefined;
  /** The contract root: the buf module holding the `.proto` files. */
  readonly contracts: string;
  /** Where `buf generate` writes (the `out` of buf.gen.yaml): the registry is read from there. */
  readonly generated: string;
  /** Where `protoevents release` records releases and `protoevents check` finds them. */
  readonly releases: string;
  /** Directories `protoevents sync` searches for handler implementations. */
  readonly handlers: readonly string[];
  /** The first of the five extension numbers of protoevents' options. */
  readonly extensionNumbers: number;
  /**
   * Where protoevents.json sets each key it sets (`protoevents.json:3:3`), for
   * messages; a key it leaves to its default is absent.
   */
  readonly setAt: Readonly<Partial<Record<keyof typeof DEFAULTS, string>>>;
}

/** The defaults: the conventional layout. */
export const DEFAULTS = {
  contracts: "proto",
  generated: "src/gen",
  releases: "releases",
  handlers: ["src"],
  extensionNumbers: DEFAULT_EXTENSION_NUMBER,
} as const;

const KEYS = ["$schema", ...Object.keys(DEFAULTS)] as const;

/** What each key holds, for error messages. */
const DESCRIPTIONS: Record<keyof typeof DEFAULTS, string> = {
  contracts: "the contract root, the buf module with your .proto files",
  generated: "the output directory of buf generate (the `out` of buf.gen.yaml)",
  releases: "the directory of recorded releases",
  handlers: "directories with your handler implementations, searched by `protoevents sync`",
  extensionNumbers: "the first of five extension numbers for protoevents' options",
};

function fail(file: string, message: string): never {
  throw new ProtoeventsError(Code.InvalidConfig, `${file}: ${message}`);
}

/** 1-based line and column of a character offset. */
function lineColumn(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  return `${line}:${offset - before.lastIndexOf("\n")}`;
}

/** Where a key is written in the file, for messages: `protoevents.json:3:3`. */
function keyAt(shown: string, text: string, key: string): string {
  const offset = text.indexOf(JSON.stringify(key));
  return offset === -1 ? shown : `${shown}:${lineColumn(text, offset)}`;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j] ?? 0;
      row[j] = Math.min(
        above + 1,
        (row[j - 1] ?? 0) + 1,
        diagonal + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      diagonal = above;
    }
  }
  return row[b.length] ?? 0;
}

/** A relative path inside the root, normalised with `/`; the key's error otherwise. */
function directory(at: string, key: string, value: unknown): string {
  if (typeof value !== "string" || value.trim() === "") {
    fail(
      at,
      `"${key}" must be a directory path (a non-empty string): ${DESCRIPTIONS[key as keyof typeof DEFAULTS]}; got ${JSON.stringify(value)}`,
    );
  }
  if (isAbsolute(value)) {
    fail(
      at,
      `"${key}" must be relative to the repository root, got the absolute path ${JSON.stringify(value)}`,
    );
  }
  const path = normalize(value).split(sep).join("/").replace(/\/+$/, "");
  if (path === ".." || path.startsWith("../")) {
    fail(at, `"${key}" must stay inside the repository, got ${JSON.stringify(value)}`);
  }
  return path === "" ? "." : path;
}

function parse(text: string, shown: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    const message = (cause as Error).message;
    const position = /position (\d+)/.exec(message);
    const where =
      position?.[1] === undefined ? shown : `${shown}:${lineColumn(text, Number(position[1]))}`;
    throw new ProtoeventsError(Code.InvalidConfig, `${where}: not valid JSON: ${message}`, {
      cause,
    });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail(
      shown,
      `must hold a JSON object such as {"contracts": "proto"}, got ${Array.isArray(value) ? "an array" : JSON.stringify(value)}`,
    );
  }
  return value as Record<string, unknown>;
}

/** Read and check a repository's configuration; without protoevents.json, the defaults. */
export function loadConfig(dir: string = process.cwd()): Config {
  const root = resolve(dir);
  const path = join(root, CONFIG_FILE);
  if (!existsSync(path)) {
    return { root, file: undefined, ...DEFAULTS, setAt: {} };
  }
  const text = readFileSync(path, "utf8");
  const shown = CONFIG_FILE;
  const raw = parse(text, shown);
  for (const key of Object.keys(raw)) {
    if (!(KEYS as readonly string[]).includes(key)) {
      const closest = KEYS.filter((k) => k !== "$schema")
        .map((k) => ({ k, d: editDistance(key.toLowerCase(), k.toLowerCase()) }))
        .sort((a, b) => a.d - b.d)[0];
      const hint = closest !== undefined && closest.d <= 3 ? `did you mean "${closest.k}"? ` : "";
      fail(
        keyAt(shown, text, key),
        `unknown key "${key}": ${hint}the keys are ${KEYS.filter((k) => k !== "$schema").join(", ")}`,
      );
    }
  }
  const at = (key: string) => keyAt(shown, text, key);
  const contracts =
    raw.contracts === undefined
      ? DEFAULTS.contracts
      : directory(at("contracts"), "contracts", raw.contracts);
  const generated =
    raw.generated === undefined
      ? DEFAULTS.generated
      : directory(at("generated"), "generated", raw.generated);
  const releases =
    raw.releases === undefined
      ? DEFAULTS.releases
      : directory(at("releases"), "releases", raw.releases);
  let handlers: readonly string[] = DEFAULTS.handlers;
  if (raw.handlers !== undefined) {
    const list = typeof raw.handlers === "string" ? [raw.handlers] : raw.handlers;
    if (!Array.isArray(list) || list.length === 0) {
      fail(
        at("handlers"),
        `"handlers" must be a directory or a list of directories: ${DESCRIPTIONS.handlers}; got ${JSON.stringify(raw.handlers)}`,
      );
    }
    handlers = list.map((h) => directory(at("handlers"), "handlers", h));
  }
  let extensionNumbers: number = DEFAULTS.extensionNumbers;
  if (raw.extensionNumbers !== undefined) {
    const n = raw.extensionNumbers;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 50_000 || n + 4 > 99_999) {
      fail(
        at("extensionNumbers"),
        `"extensionNumbers" must be a whole number from 50000 to 99995 (the five options take it and the next four, inside protobuf's range for use within one organisation); got ${JSON.stringify(n)}`,
      );
    }
    extensionNumbers = n;
  }
  // buf generate empties its output directory first (clean: true): it must not be anything else.
  for (const [key, other] of [
    ["contracts", contracts],
    ["releases", releases],
    ...handlers.map((h) => ["handlers", h] as const),
  ] as const) {
    if (generated === "." || generated === other || other.startsWith(`${generated}/`)) {
      fail(
        at("generated"),
        `"generated" (${generated}) must be a directory of its own: buf generate empties it, and it holds "${key}" (${other})`,
      );
    }
  }
  const setAt: Partial<Record<keyof typeof DEFAULTS, string>> = {};
  for (const key of Object.keys(DEFAULTS) as Array<keyof typeof DEFAULTS>) {
    if (raw[key] !== undefined) {
      setAt[key] = at(key);
    }
  }
  return { root, file: path, contracts, generated, releases, handlers, extensionNumbers, setAt };
}

function isDirectory(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}

/** The error for a directory protoevents.json names that is not there. */
function missing(at: string, key: keyof typeof DEFAULTS, path: string, full: string): never {
  fail(
    at,
    `"${key}" names ${path}/, which ${existsSync(full) ? "is not a directory" : "does not exist"}: create it, or set "${key}" to ${DESCRIPTIONS[key]}`,
  );
}

/**
 * The contract root as a directory that exists.
 *
 * @throws ProtoeventsError `invalid_config` naming the key (or the default) and `protoevents init`.
 */
export function contractsDir(config: Config): string {
  const full = join(config.root, config.contracts);
  if (!isDirectory(full)) {
    if (config.setAt.contracts !== undefined) {
      missing(config.setAt.contracts, "contracts", config.contracts, full);
    }
    throw new ProtoeventsError(
      Code.InvalidConfig,
      `no contracts directory ${config.contracts}/ (the default; there is no "contracts" in ${CONFIG_FILE}): run \`protoevents init\` to start one, or set "contracts" in ${CONFIG_FILE}`,
    );
  }
  return full;
}

/**
 * The handler directories. A default one that does not exist is skipped;
 * one protoevents.json names must exist.
 *
 * @throws ProtoeventsError `invalid_config` naming the key when a configured one is missing.
 */
export function handlerDirs(config: Config): string[] {
  const dirs: string[] = [];
  for (const handlers of config.handlers) {
    const full = join(config.root, handlers);
    if (isDirectory(full)) {
      dirs.push(full);
    } else if (config.setAt.handlers !== undefined) {
      missing(config.setAt.handlers, "handlers", handlers, full);
    }
  }
  return dirs;
}

/** The generated registry module: `.ts` for target=ts, `.js` for target=js. */
export function registryPath(config: Config): string {
  const base = join(config.root, config.generated, REGISTRY_FILE.replace(/\.ts$/, ""));
  for (const extension of [".ts", ".js", ".mjs"]) {
    if (existsSync(base + extension)) {
      return base + extension;
    }
  }
  return `${base}.ts`;
}

/** A path for messages: relative to the current directory when inside it. */
export function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel) ? rel : path;
}
