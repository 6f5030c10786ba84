/**
 * The compatibility commands of the `protoevents` CLI: `release` records the
 * contracts as a release, `check` proves today's contracts compatible with
 * every release, `sync` keeps the service implementations in step with the
 * consumer rpcs (`generate` runs it too).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { SyncReport } from "@protoevents/codegen";
import { type Command, InvalidArgumentError, Option } from "commander";
import { type Config, contractsDir, handlerDirs, loadConfig } from "./config.js";
import { checkModule } from "./generate.js";

/** Options of {@link runSync}. */
export interface RunSyncOptions {
  /** Directories of the handler implementations. @default the configured `handlers` */
  readonly handlers?: readonly string[];
  /** Report what would change without writing. */
  readonly dryRun?: boolean;
}

/**
 * `protoevents sync`: read the contracts with buf and add a stub for every
 * consumer rpc an implementation in the handler directories lacks. Prints
 * what it did.
 */
export async function runSync(config: Config, options: RunSyncOptions = {}): Promise<SyncReport> {
  contractsDir(config);
  await checkModule(config);
  const {
    bufBuild,
    formatSyncReport,
    handlerSpecs,
    pathPrefixOf,
    readContracts,
    readImage,
    readModulePath,
    syncServices,
  } = await import("@protoevents/codegen");
  const dir = config.root;
  const modulePath = await readModulePath(dir);
  const image = readImage(await bufBuild({ dir }, modulePath), `the image of ${modulePath}`);
  const { model } = readContracts(image.files, { pathPrefix: pathPrefixOf(modulePath) });
  const report = await syncServices({
    servicesDir: options.handlers ?? handlerDirs(config),
    exclude: [join(dir, config.generated), join(dir, "node_modules")],
    specs: handlerSpecs(model),
    dryRun: options.dryRun === true,
    cwd: dir,
  });
  process.stdout.write(`${formatSyncReport(report, options.dryRun === true)}\n`);
  return report;
}

async function packageVersion(dir: string): Promise<string | undefined> {
  try {
    const pkg = JSON.parse(await readFile(join(dir, "package.json"), "utf8")) as {
      version?: string;
    };
    return pkg.version;
  } catch {
    return undefined;
  }
}

type CheckFormat = "text" | "json" | "markdown";

function parseFormat(value: string): CheckFormat {
  if (value !== "text" && value !== "json" && value !== "markdown") {
    throw new InvalidArgumentError("expected text, json or markdown");
  }
  return value;
}

/**
 * Register `release`, `check` and `sync` on the program. `setExitCode` is how
 * `check` fails (exit code 1) after printing its findings.
 */
export function registerCompatCommands(
  program: Command,
  setExitCode: (code: number) => void,
): void {
  program
    .command("release")
    .description(
      "record today's contracts as a release under <releases>/<version>/: the buf image, release.json and golden payloads of every event",
    )
    .option("--version <x.y.z>", "the release's version (default: package.json's version)")
    .option("--date <yyyy-mm-dd>", "the release's date (default: today, UTC)")
    .action(async (options: { version?: string; date?: string }) => {
      const config = loadConfig();
      contractsDir(config);
      await checkModule(config);
      const dir = config.root;
      const version = options.version ?? (await packageVersion(dir)) ?? "0.1.0";
      const { createRelease } = await import("@protoevents/codegen");
      const { manifest, dir: target } = await createRelease({
        dir,
        version,
        releasesDir: config.releases,
        ...(options.date === undefined ? {} : { date: options.date }),
      });
      const subscriptions = manifest.applications.reduce((n, a) => n + a.subscriptions.length, 0);
      process.stdout.write(
        `recorded release ${manifest.version} (${manifest.date}) in ${config.releases}/${manifest.version}: ` +
          `${manifest.events.length} events, ${subscriptions} subscriptions, ${manifest.events.length * 2} golden payloads, ` +
          `image sha256 ${manifest.imageSha256.slice(0, 12)}…\n` +
          `commit ${target.slice(dir.length + 1)}/; from now on \`protoevents check\` keeps the contracts compatible with it\n`,
      );
    });

  program
    .command("check")
    .description(
      "prove the contracts compatible with the releases: buf lint, buf breaking (WIRE_JSON), the event-level rules and golden payloads both ways, each event in the direction(s) its compatibility mode demands; exit code 1 on any finding",
    )
    .addOption(
      new Option(
        "--format <format>",
        "text (file:line:column: rule: message), json (the whole report) or markdown (a summary for a pull request)",
      )
        .argParser(parseFormat)
        .default("text"),
    )
    .action(async (options: { format: CheckFormat }) => {
      const config = loadConfig();
      contractsDir(config);
      await checkModule(config);
      const {
        checkContracts,
        checkReportJson,
        formatAllowed,
        formatCheckMarkdown,
        formatGateFinding,
        summarizeCheck,
      } = await import("@protoevents/codegen");
      const report = await checkContracts({ dir: config.root, releasesDir: config.releases });
      if (options.format === "json") {
        process.stdout.write(`${JSON.stringify(checkReportJson(report), null, 2)}\n`);
      } else if (options.format === "markdown") {
        process.stdout.write(formatCheckMarkdown(report));
      } else {
        const lines = [
          ...report.findings.map(formatGateFinding),
          ...report.allowed.map((f) => formatAllowed(f, report.modes)),
        ];
        if (lines.length > 0) {
          process.stdout.write(`${lines.join("\n")}\n`);
        }
      }
      process.stderr.write(`${summarizeCheck(report)}\n`);
      if (report.findings.length > 0) {
        setExitCode(1);
      }
    });

  program
    .command("sync")
    .description(
      "add a typed stub for every consumer rpc a handler implementation lacks, and report handlers whose rpc is gone (never deletes code)",
    )
    .option(
      "--handlers <dir...>",
      'directories of the handler implementations (default: "handlers" in protoevents.json)',
    )
    .option("--dry-run", "report what would change without writing")
    .action(async (options: { handlers?: string[]; dryRun?: boolean }) => {
      const config = loadConfig();
      await runSync(config, {
        ...(options.handlers === undefined ? {} : { handlers: options.handlers }),
        dryRun: options.dryRun === true,
      });
    });
}
