/**
 * The database drivers are optional peer dependencies of the runtime: a
 * PostgreSQL user never installs (or compiles) SQLite, and the other way
 * round. Each is loaded on first use, and a missing one is an error that
 * says what to install.
 */
import type BetterSqlite3 from "better-sqlite3";
import type Pg from "pg";
import { Code, ProtoeventsError } from "../errors.js";

/** The drivers, with the version range the runtime is tested with. */
const DRIVERS = {
  "better-sqlite3": { range: "^12", use: "the SQLite store (createSqliteStore)" },
  pg: { range: "^8", use: "the PostgreSQL store (createPostgresStore)" },
} as const;

type DriverName = keyof typeof DRIVERS;

function isModuleNotFound(error: unknown, name: string): boolean {
  const e = error as { code?: unknown; message?: unknown };
  return (
    (e.code === "ERR_MODULE_NOT_FOUND" || e.code === "MODULE_NOT_FOUND") &&
    typeof e.message === "string" &&
    e.message.includes(`'${name}'`)
  );
}

async function load<T>(name: DriverName): Promise<T> {
  try {
    const module = (await import(name)) as { default?: T };
    return (module.default ?? module) as T;
  } catch (cause) {
    const { range, use } = DRIVERS[name];
    if (isModuleNotFound(cause, name)) {
      throw new ProtoeventsError(
        Code.InvalidArgument,
        `${use} needs the ${name} package, which is not installed: run \`npm install ${name}@${range}\` in your project`,
        { cause },
      );
    }
    throw new ProtoeventsError(
      Code.StoreUnavailable,
      `cannot load ${name} (${use}): ${(cause as Error).message}`,
      { cause },
    );
  }
}

let sqlite: Promise<typeof BetterSqlite3> | undefined;
let postgres: Promise<typeof Pg> | undefined;

/** better-sqlite3's Database constructor. */
export function loadSqliteDriver(): Promise<typeof BetterSqlite3> {
  sqlite ??= load<typeof BetterSqlite3>("better-sqlite3").catch((error: unknown) => {
    sqlite = undefined;
    throw error;
  });
  return sqlite;
}

/** The pg module (Pool, TypeOverrides, types). */
export function loadPostgresDriver(): Promise<typeof Pg> {
  postgres ??= load<typeof Pg>("pg").catch((error: unknown) => {
    postgres = undefined;
    throw error;
  });
  return postgres;
}
