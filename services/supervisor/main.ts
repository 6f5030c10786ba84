/**
 * The checkout example's own commands: `start` (what `npm start` runs: the
 * whole checkout on the Pub/Sub emulator, with demo orders and a live view),
 * `service` (one service in the foreground) and `demo` (the spine's demo).
 * They use the toolkit only through its package names, like any adopter.
 */

import {
  Code,
  type ContractRegistry,
  isProtoeventsError,
  ProtoeventsError,
} from "@protoevents/runtime";
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { registry as checkoutRegistry } from "../../generated/protoevents_registry.js";
import { runDemo } from "./demo.js";
import {
  DEFAULT_ORDER_PORT,
  DEFAULT_POSTGRES_URL,
  DEFAULT_PRODUCT_PORT,
  DEFAULT_START_PROJECT,
  runOneService,
  runStart,
  SERVICES,
} from "./start.js";

/** The exit code a command asks for without failing; 0 unless set. */
let commandExitCode = 0;

/** Parsers of option values: a bad value fails with commander's "option … argument … is invalid". */
const parse = {
  wholeNumber(value: string): number {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) {
      throw new InvalidArgumentError("expected a whole number, 0 or more");
    }
    return n;
  },
  positiveNumber(value: string): number {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || n <= 0) {
      throw new InvalidArgumentError("expected a number above 0");
    }
    return n;
  },
  store(value: string): string {
    if (!/^(sqlite|postgres|postgres(ql)?:\/\/.*)$/i.test(value.trim())) {
      throw new InvalidArgumentError("expected sqlite, postgres or a postgres:// URL");
    }
    return value.trim();
  },
  port(value: string): number {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || n > 65_535) {
      throw new InvalidArgumentError("expected a port, 0 to 65535 (0: any free port)");
    }
    return n;
  },
};

/** Options `start` and `service` share: where the services find Pub/Sub, their store and ports. */
function serviceOptions(
  command: Command,
  help: { project: Option; emulatorHost: string; dataDir: string },
): Command {
  return command
    .addOption(help.project)
    .addOption(
      new Option("--emulator-host <host:port>", help.emulatorHost).env("PUBSUB_EMULATOR_HOST"),
    )
    .addOption(
      new Option("--data-dir <dir>", help.dataDir).env("PROTOEVENTS_DATA_DIR").default(".data"),
    )
    .addOption(
      new Option(
        "--store <store>",
        `sqlite (a file per service in the data dir), postgres (${DEFAULT_POSTGRES_URL}) or a postgres:// URL`,
      )
        .env("PROTOEVENTS_STORE_URL")
        .argParser(parse.store)
        .default("sqlite"),
    )
    .addOption(
      new Option("--order-port <port>", "port of the order service's Connect API (0: any free one)")
        .env("ORDER_API_PORT")
        .argParser(parse.port)
        .default(DEFAULT_ORDER_PORT),
    )
    .addOption(
      new Option(
        "--product-port <port>",
        "port of the catalog's Connect API, ProductService (0: any free one)",
      )
        .env("PRODUCT_API_PORT")
        .argParser(parse.port)
        .default(DEFAULT_PRODUCT_PORT),
    );
}

function buildProgram(): Command {
  const program = new Command("checkout")
    .description("the protoevents checkout example: every service on Pub/Sub, with demo orders")
    .exitOverride()
    .showHelpAfterError();

  serviceOptions(
    program
      .command("start")
      .description(
        "run the whole checkout (what `npm start` runs): the Pub/Sub emulator, provisioned from the contracts, " +
          "every service as its own process, demo orders through the order API and live progress; Ctrl-C stops everything",
      )
      .addOption(
        new Option("--orders <n>", "demo orders to place (0: keep placing until Ctrl-C)")
          .argParser(parse.wholeNumber)
          .default(100),
      )
      .addOption(
        new Option("--rate <per-second>", "demo orders placed per second")
          .argParser(parse.positiveNumber)
          .default(5),
      )
      .addOption(
        new Option("--seed <n>", "seed of the random baskets (same seed, same orders)")
          .argParser(parse.wholeNumber)
          .default(1),
      )
      .option(
        "--exit-when-done",
        "stop once every order placed is confirmed or cancelled; exit code 1 if some never are",
      )
      .addOption(
        new Option(
          "--done-timeout <seconds>",
          "with --exit-when-done: how long to wait after the last order for all to end",
        )
          .argParser(parse.positiveNumber)
          .default(120),
      )
      .addOption(
        new Option(
          "--ready-timeout <seconds>",
          "how long each service may take to start, and the catalog to list its products",
        )
          .argParser(parse.positiveNumber)
          .default(60),
      )
      .option(
        "--keep-data",
        "keep the services' stores and e-mails of the last run; without it every run starts from empty stores",
      )
      .option(
        "--reset-schemas",
        "with PostgreSQL: drop the services' schemas (catalog, inventory, payment, …) even when an earlier npm start did not make them",
      )
      .addHelpText(
        "after",
        `
Demo orders (seeded, the same every run): every 7th is paid with a declined card
(cancelled); every 11th asks for 2 of sku-limited, which has 3 in stock (the
first is confirmed, later ones are cancelled, out of stock); every 13th goes
over the payment limit of 5,000.00 (cancelled); the rest are 1–3 random
products (confirmed). 30 orders: 23 confirmed, 7 cancelled.

Progress is counted from Pub/Sub (monitoring subscriptions monitor.<run>.<topic>
on every event and dead-letter topic, deleted at exit). Each service logs to
<data dir>/logs/<service>.log; stdout says "started <service> pid=<pid>".

Ctrl-C (or SIGTERM) stops placing orders, sends SIGTERM to every service and
waits (SIGKILL after 10 s), deletes the monitoring subscriptions and stops the
emulator by PID if it was started here. Ctrl-C twice kills everything at once.`,
      ),
    {
      project: new Option("--project <id>", "project to provision and run in")
        .env("PUBSUB_PROJECT_ID")
        .default(DEFAULT_START_PROJECT),
      emulatorHost: "Pub/Sub emulator to use (unset: start one, stop it at exit)",
      dataDir: "the services' SQLite stores, e-mails (mail/) and logs (logs/)",
    },
  ).action(
    async (options: {
      orders: number;
      rate: number;
      seed: number;
      exitWhenDone?: boolean;
      doneTimeout: number;
      readyTimeout: number;
      keepData?: boolean;
      resetSchemas?: boolean;
      project: string;
      emulatorHost?: string;
      dataDir: string;
      store: string;
      orderPort: number;
      productPort: number;
    }) => {
      if (options.exitWhenDone === true && options.orders === 0) {
        throw new ProtoeventsError(
          Code.InvalidArgument,
          "--exit-when-done needs a number of --orders: with --orders 0 orders never stop coming",
        );
      }
      const registry: ContractRegistry = checkoutRegistry;
      commandExitCode = await runStart({
        ...options,
        exitWhenDone: options.exitWhenDone === true,
        keepData: options.keepData === true,
        resetSchemas: options.resetSchemas === true,
        registry,
      });
    },
  );

  serviceOptions(
    program
      .command("service")
      .description(
        "run one checkout service in the foreground, its JSON log lines on stdout; Ctrl-C stops it. " +
          "Start the emulator first with `npm run emulator` and export the lines it prints",
      )
      .addArgument(new Argument("<name>", "the service").choices(SERVICES)),
    {
      project: new Option("--project <id>", "project to run in (default: protoevents-local)").env(
        "PUBSUB_PROJECT_ID",
      ),
      emulatorHost: "Pub/Sub emulator to connect to (unset: real Pub/Sub)",
      dataDir: "the service's SQLite store and e-mails (mail/)",
    },
  ).action(
    async (
      name: string,
      options: {
        project?: string;
        emulatorHost?: string;
        dataDir: string;
        store: string;
        orderPort: number;
        productPort: number;
      },
    ) => {
      commandExitCode = await runOneService(name, options);
    },
  );

  program
    .command("demo")
    .description(
      "the spine's demo: start the emulator, provision, and publish demo orders to an in-process consumer",
    )
    .option("--orders <n>", "orders to place", (v) => Number.parseInt(v, 10), 20)
    .option("--rate <per-second>", "orders per second", (v) => Number.parseFloat(v), 5)
    .action(async (options: { orders: number; rate: number }) => {
      if (!Number.isInteger(options.orders) || options.orders < 1) {
        throw new ProtoeventsError(Code.InvalidArgument, "--orders must be a positive integer");
      }
      if (!(options.rate > 0)) {
        throw new ProtoeventsError(Code.InvalidArgument, "--rate must be a positive number");
      }
      await runDemo(options);
    });

  return program;
}

/** Run the example's CLI; resolves to the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  commandExitCode = 0;
  try {
    await program.parseAsync([...argv]);
    return commandExitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode;
    }
    const normalised = ProtoeventsError.from(error);
    process.stderr.write(
      `checkout: ${isProtoeventsError(error) ? normalised.message : normalised.stack}\n`,
    );
    return 1;
  }
}

process.exitCode = await main(process.argv);
