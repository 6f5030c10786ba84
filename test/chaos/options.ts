/**
 * The options of a chaos run, their defaults, and `npm run chaos -- …`'s
 * command line.
 */
import { parseArgs } from "node:util";

/** Where the services keep their state. */
export type ChaosStore = "sqlite" | "postgres";

/** The PostgreSQL `--store postgres` uses: each run creates a database of its own there. */
export const DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/test";

/** Everything a chaos run is told. */
export interface ChaosOptions {
  /** Orders placed through the order API. */
  readonly orders: number;
  /** Orders placed per second. */
  readonly rate: number;
  /** The seed everything random derives from: the orders, the timeline, the fault decisions. */
  readonly seed: number;
  readonly store: ChaosStore;
  /** The PostgreSQL server (a URL of any database on it) for `--store postgres`. */
  readonly postgresUrl: string;
  /** Share of deliveries whose handler transaction fails transiently. */
  readonly faultRate: number;
  /** Share of events copied and republished at once with the same `ce-id`. */
  readonly duplicateRate: number;
  /** Share of events copied and republished late (out of order) with the same `ce-id`. */
  readonly delayRate: number;
  /** Services SIGKILLed (and restarted) while the orders flow. */
  readonly kills: number;
  /** Poison messages of each kind (garbage bytes, unknown type, broken field rule). */
  readonly poisonPerKind: number;
  /** How long the system may take to settle after the schedule ended, in ms. */
  readonly drainTimeoutMs: number;
  /** Log level of the services (their logs go to files in the run directory). */
  readonly logLevel: string;
  /** Write the report as JSON to this file. */
  readonly reportFile: string | undefined;
  /** Keep the run directory (stores, e-mails, logs) even when every invariant held. */
  readonly keep: boolean;
}

/** The full run's defaults. */
export const DEFAULT_OPTIONS: ChaosOptions = {
  orders: 1000,
  rate: 20,
  seed: 1,
  store: "sqlite",
  postgresUrl: DEFAULT_POSTGRES_URL,
  faultRate: 0.05,
  duplicateRate: 0.05,
  delayRate: 0.02,
  kills: 6,
  poisonPerKind: 3,
  drainTimeoutMs: 300_000,
  logLevel: "warn",
  reportFile: undefined,
  keep: false,
};

export const USAGE = `usage: npm run chaos -- [options]

Drives orders through the whole checkout (every service its own process, on
its own Pub/Sub emulator) under a seeded fault schedule, then checks the
invariants from the services' stores and the dead-letter subscriptions.
Exits 1 when an invariant is violated.

  --orders <n>          orders to place (default 1000)
  --rate <n>            orders per second (default 20)
  --seed <n>            seed of the orders, the timeline and the fault decisions (default 1)
  --store <kind>        sqlite (default) or postgres
  --postgres-url <url>  PostgreSQL server for --store postgres (default ${DEFAULT_POSTGRES_URL});
                        the run creates a database of its own there and drops it after
  --fault-rate <p>      share of deliveries whose handler fails transiently (default 0.05)
  --duplicate-rate <p>  share of events republished at once with the same ce-id (default 0.05)
  --delay-rate <p>      share of events republished 1–5 s late, out of order (default 0.02)
  --kills <n>           services SIGKILLed and restarted meanwhile (default 6)
  --poison <n>          poison messages of each kind (default 3)
  --drain-timeout <s>   how long the system may take to settle afterwards (default 300)
  --log-level <level>   the services' log level (default warn; logs go to the run directory)
  --report <file>       also write the report as JSON
  --keep                keep the run directory even when every invariant held
  -h, --help            this help`;

function integer(name: string, text: string, min: number): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min) {
    throw new Error(
      `--${name} must be a whole number of at least ${min}, got ${JSON.stringify(text)}`,
    );
  }
  return value;
}

function probability(name: string, text: string): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new Error(`--${name} must be a number from 0 to 1, got ${JSON.stringify(text)}`);
  }
  return value;
}

/**
 * The options of a command line (`process.argv.slice(2)`), or `"help"`.
 *
 * @throws Error naming the option for an unknown option or a bad value.
 */
export function parseChaosArgs(args: readonly string[]): ChaosOptions | "help" {
  const { values } = parseArgs({
    args: [...args],
    strict: true,
    allowPositionals: false,
    options: {
      orders: { type: "string" },
      rate: { type: "string" },
      seed: { type: "string" },
      store: { type: "string" },
      "postgres-url": { type: "string" },
      "fault-rate": { type: "string" },
      "duplicate-rate": { type: "string" },
      "delay-rate": { type: "string" },
      kills: { type: "string" },
      poison: { type: "string" },
      "drain-timeout": { type: "string" },
      "log-level": { type: "string" },
      report: { type: "string" },
      keep: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help === true) {
    return "help";
  }
  const store = values.store ?? DEFAULT_OPTIONS.store;
  if (store !== "sqlite" && store !== "postgres") {
    throw new Error(`--store must be sqlite or postgres, got ${JSON.stringify(store)}`);
  }
  const rate = values.rate === undefined ? DEFAULT_OPTIONS.rate : Number(values.rate);
  if (!Number.isFinite(rate) || rate <= 0) {
    throw new Error(`--rate must be a positive number, got ${JSON.stringify(values.rate)}`);
  }
  const d = DEFAULT_OPTIONS;
  return {
    orders: values.orders === undefined ? d.orders : integer("orders", values.orders, 1),
    rate,
    seed: values.seed === undefined ? d.seed : integer("seed", values.seed, 0),
    store,
    postgresUrl: values["postgres-url"] ?? d.postgresUrl,
    faultRate:
      values["fault-rate"] === undefined
        ? d.faultRate
        : probability("fault-rate", values["fault-rate"]),
    duplicateRate:
      values["duplicate-rate"] === undefined
        ? d.duplicateRate
        : probability("duplicate-rate", values["duplicate-rate"]),
    delayRate:
      values["delay-rate"] === undefined
        ? d.delayRate
        : probability("delay-rate", values["delay-rate"]),
    kills: values.kills === undefined ? d.kills : integer("kills", values.kills, 0),
    poisonPerKind:
      values.poison === undefined ? d.poisonPerKind : integer("poison", values.poison, 0),
    drainTimeoutMs:
      values["drain-timeout"] === undefined
        ? d.drainTimeoutMs
        : integer("drain-timeout", values["drain-timeout"], 1) * 1000,
    logLevel: values["log-level"] ?? d.logLevel,
    reportFile: values.report,
    keep: values.keep === true,
  };
}
