/**
 * The protoevents CLI: `init`, `generate`, `check`, `release`, `sync`,
 * `provision`, `dlq`, `catalog` and `emulator`, for any repository that keeps
 * its event contracts in .proto files. Nothing here knows an application.
 */

import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Code, isProtoeventsError, ProtoeventsError } from "@protoevents/runtime/errors";
import { Command, CommanderError, Option } from "commander";
import { registerCatalogCommand } from "./catalog.js";
import { registerCompatCommands, runSync } from "./compat.js";
import { CONFIG_FILE, type Config, contractsDir, loadConfig } from "./config.js";
import { registerDlqCommand } from "./dlq.js";
import { bufGenerate, checkModule, foreignOptionsProto, writeOptionsProto } from "./generate.js";
import { formatInit, runInit } from "./init.js";
import { loadRegistry } from "./registry.js";
import { confirmTarget, targetOf, withLocalEmulator } from "./target.js";

export { type Config, loadConfig } from "./config.js";
export { loadRegistry } from "./registry.js";

function connectionOptions(options: { project?: string; emulatorHost?: string }) {
  return {
    ...(options.project === undefined ? {} : { projectId: options.project }),
    ...(options.emulatorHost === undefined ? {} : { emulatorHost: options.emulatorHost }),
  };
}

const { version } = createRequire(import.meta.url)("../package.json") as { version: string };

/** The exit code a command asks for without failing (`check`); 0 unless set. */
let commandExitCode = 0;

function buildProgram(): Command {
  const program = new Command("protoevents")
    .description("Protobuf-first event contracts for Google Cloud Pub/Sub")
    .version(version)
    // Program options only before a command: `release --version 1.0.0` is release's own.
    .enablePositionalOptions()
    .exitOverride()
    .showHelpAfterError();

  program
    .command("init")
    .description(
      `start using protoevents here: write ${CONFIG_FILE}, buf.yaml, buf.gen.yaml, the managed ` +
        "protoevents/v1/options.proto and (when there are no contracts yet) a sample event and application; " +
        "existing files are kept unless --force",
    )
    .option("--force", "overwrite the files init writes when they exist")
    .option("--contracts <dir>", `the contract root to write into a new ${CONFIG_FILE}`)
    .option("--generated <dir>", `the generated directory to write into a new ${CONFIG_FILE}`)
    .action((options: { force?: boolean; contracts?: string; generated?: string }) => {
      const steps = runInit({
        force: options.force === true,
        ...(options.contracts === undefined ? {} : { contracts: options.contracts }),
        ...(options.generated === undefined ? {} : { generated: options.generated }),
      });
      process.stdout.write(`${formatInit(steps)}\n`);
    });

  program
    .command("generate")
    .description(
      "regenerate the generated directory from the contracts with buf (protoc-gen-es + protoc-gen-protoevents), " +
        "after bringing protoevents/v1/options.proto up to date; then sync the handlers",
    )
    .option("--no-sync", "do not add handler stubs afterwards")
    .action(async (options: { sync: boolean }) => {
      const config = loadConfig();
      contractsDir(config);
      await checkModule(config);
      const options_ = writeOptionsProto(config);
      if (options_ === "foreign") {
        throw foreignOptionsProto(config);
      }
      if (options_ !== "unchanged") {
        process.stderr.write(
          `${options_} ${config.contracts}/protoevents/v1/options.proto from the installed toolkit\n`,
        );
      }
      await bufGenerate(config);
      process.stderr.write(`${config.generated}/ is up to date with ${config.contracts}/\n`);
      if (options.sync) {
        // Stubs for consumer rpcs the handlers do not implement yet (see `protoevents sync`).
        await runSync(config);
      }
    });

  registerCompatCommands(program, (code) => {
    commandExitCode = code;
  });

  const connection = (command: Command) =>
    command
      .addOption(new Option("--project <id>", "Google Cloud project id").env("PUBSUB_PROJECT_ID"))
      .addOption(
        new Option("--emulator-host <host:port>", "Pub/Sub emulator; unset means real Pub/Sub").env(
          "PUBSUB_EMULATOR_HOST",
        ),
      )
      .option(
        "--registry <file>",
        "contract registry module (default: protoevents_registry.ts in the generated directory)",
      );

  connection(
    program
      .command("provision")
      .description(
        "create or update topics, subscriptions and dead-letter topics from the contracts",
      )
      .option("--dry-run", "print the plan without changing anything", false)
      .option("--yes", "apply the plan to real Pub/Sub (outside an emulator it is refused without)")
      .addOption(
        new Option(
          "--format <format>",
          "text: plan (and apply) against Pub/Sub; terraform: write the same resources as Terraform JSON instead, contacting nothing",
        )
          .choices(["text", "terraform"])
          .default("text"),
      )
      .option(
        "--out <file>",
        "with --format terraform: write here (e.g. pubsub.tf.json), not to stdout",
      )
      .option(
        "--project-number <number>",
        "real Pub/Sub: the project's number, for the service agent's dead-letter grants (default: looked up with your credentials)",
      ),
  ).action(
    async (given: {
      dryRun: boolean;
      yes?: boolean;
      registry?: string;
      project?: string;
      emulatorHost?: string;
      format: "text" | "terraform";
      out?: string;
      projectNumber?: string;
    }) => {
      if (given.projectNumber !== undefined && !/^\d{1,20}$/.test(given.projectNumber)) {
        throw new ProtoeventsError(
          Code.InvalidArgument,
          `--project-number must be the project's number (digits only, as in gcloud projects describe), got ${JSON.stringify(given.projectNumber)}`,
        );
      }
      if (given.format === "terraform") {
        await writeTerraform(loadConfig(), given.registry, given.out);
        return;
      }
      if (given.out !== undefined) {
        throw new ProtoeventsError(
          Code.InvalidArgument,
          "--out goes with --format terraform; the text plan is printed",
        );
      }
      const options = await withLocalEmulator(given, loadConfig().root, "provision");
      const target = targetOf(options);
      if (options.dryRun) {
        process.stderr.write(`provision --dry-run: target is ${target.description}\n`);
      } else {
        confirmTarget("provision", target, options.yes === true);
      }
      const registry = await loadRegistry(loadConfig(), options.registry);
      const { createPubSub, formatPlan, provision } = await import("@protoevents/runtime");
      const pubsub = createPubSub(connectionOptions(options));
      try {
        const { plan, applied } = await provision(pubsub, registry, {
          dryRun: options.dryRun,
          ...(options.projectNumber === undefined ? {} : { projectNumber: options.projectNumber }),
        });
        process.stdout.write(`${formatPlan(plan)}\n`);
        if (options.dryRun) {
          process.stdout.write("dry run: nothing was changed\n");
        } else if (applied) {
          const changes = plan.actions.filter((a) => a.kind !== "unchanged").length;
          process.stdout.write(changes === 0 ? "nothing to change\n" : "applied\n");
        }
      } finally {
        await pubsub.close();
      }
    },
  );

  connection(
    program
      .command("retire")
      .description(
        "delete a retired subscription, its dead-letter subscription and topic: only when the contracts list it in retired_subscriptions and nothing is left in either",
      )
      .argument("<subscription>", "the subscription id")
      .option("--dry-run", "check and say what would be deleted, delete nothing", false)
      .option("--yes", "delete on real Pub/Sub (outside an emulator it is refused without)"),
  ).action(
    async (
      subscription: string,
      given: {
        dryRun: boolean;
        yes?: boolean;
        registry?: string;
        project?: string;
        emulatorHost?: string;
      },
    ) => {
      const options = await withLocalEmulator(given, loadConfig().root, "retire");
      const target = targetOf(options);
      if (options.dryRun) {
        process.stderr.write(`retire --dry-run: target is ${target.description}\n`);
      } else {
        confirmTarget("retire", target, options.yes === true);
      }
      const registry = await loadRegistry(loadConfig(), options.registry);
      const { createPubSub, retireSubscription } = await import("@protoevents/runtime");
      const pubsub = createPubSub(connectionOptions(options));
      try {
        const resources = await retireSubscription(pubsub, registry, subscription, {
          dryRun: options.dryRun,
        });
        for (const r of resources) {
          process.stdout.write(
            `${options.dryRun ? "would delete" : "deleted"} ${r.resource} ${r.name}\n`,
          );
        }
        process.stdout.write(
          resources.length === 0
            ? `nothing of ${subscription} exists in project ${pubsub.projectId}\n`
            : options.dryRun
              ? "dry run: nothing was deleted\n"
              : `retired ${subscription}\n`,
        );
      } finally {
        await pubsub.close();
      }
    },
  );

  program
    .command("emulator")
    .description(
      "run the Pub/Sub emulator in the foreground (Ctrl-C stops it), provisioned from the contracts",
    )
    .option("--port <port>", "port to listen on (default: a free one)", (v) =>
      Number.parseInt(v, 10),
    )
    .option("--no-provision", "start empty")
    .option("--project <id>", "project to provision", "protoevents-local")
    .option(
      "--registry <file>",
      "contract registry module (default: protoevents_registry.ts in the generated directory)",
    )
    .action(
      async (options: {
        port?: number;
        provision: boolean;
        project: string;
        registry?: string;
      }) => {
        // Load the contracts before starting anything: a missing registry starts no JVM.
        const registry = options.provision
          ? await loadRegistry(loadConfig(), options.registry)
          : undefined;
        const { announceLocalEmulator, createPubSub, formatPlan, provision, startEmulator } =
          await import("@protoevents/runtime");
        const emulator = await startEmulator(
          options.port === undefined ? {} : { port: options.port },
        );
        process.stdout.write(`Pub/Sub emulator on ${emulator.endpoint} (pid ${emulator.pid})\n`);

        process.stdout.write(`export PUBSUB_EMULATOR_HOST=${emulator.endpoint}\n`);
        process.stdout.write(`export PUBSUB_PROJECT_ID=${options.project}\n`);
        if (registry !== undefined) {
          const pubsub = createPubSub({
            projectId: options.project,
            emulatorHost: emulator.endpoint,
          });
          const { plan } = await provision(pubsub, registry, { dryRun: false });
          await pubsub.close();
          process.stdout.write(`${formatPlan(plan)}\n`);
        }
        // protoevents provision and dlq in another shell of this repository find it.
        const withdraw = announceLocalEmulator(process.cwd(), {
          endpoint: emulator.endpoint,
          project: options.project,
          pid: process.pid,
          owner: "protoevents emulator",
        });
        await new Promise<void>((done) => {
          process.once("SIGINT", done);
          process.once("SIGTERM", done);
        });
        withdraw();
        await emulator.stop();
        process.stdout.write("emulator stopped\n");
      },
    );

  registerDlqCommand(program, {
    loadRegistry: (path) => loadRegistry(loadConfig(), path),
    root: () => loadConfig().root,
  });
  registerCatalogCommand(program);

  return program;
}

/**
 * `provision --format terraform`: the contracts' resources as Terraform JSON,
 * to `out` or stdout. Reads the contracts only.
 */
async function writeTerraform(
  config: Config,
  registryPath: string | undefined,
  out: string | undefined,
): Promise<void> {
  const registry = await loadRegistry(config, registryPath);
  const { terraformConfiguration } = await import("@protoevents/runtime");
  const document = terraformConfiguration(registry);
  const text = `${JSON.stringify(document, null, 2)}\n`;
  if (out === undefined) {
    process.stdout.write(text);
    return;
  }
  if (!out.endsWith(".tf.json")) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `--out ${out}: Terraform reads JSON configuration only from files ending in .tf.json`,
    );
  }
  writeFileSync(out, text);
  const count = Object.values(document.resource).reduce((n, r) => n + Object.keys(r).length, 0);
  process.stderr.write(`provision: wrote ${count} resources to ${out}\n`);
}

/** Run the CLI; resolves to the process exit code. */
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
      `protoevents: ${isProtoeventsError(error) ? normalised.message : normalised.stack}\n`,
    );
    return 1;
  }
}
