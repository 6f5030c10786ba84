/**
 * `protoevents catalog`: the AsyncAPI 3.0 document and the static HTML event
 * catalog of the contracts.
 */
import { readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { DEFAULT_CATALOG_DIR } from "@protoevents/codegen/layout";
import type { Command } from "commander";
import { contractsDir, loadConfig } from "./config.js";
import { checkModule } from "./generate.js";

/** The version of the user's contracts: their package.json's, like `protoevents release`. */
function contractVersion(root: string): string {
  try {
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
      version?: unknown;
    };
    return typeof pkg.version === "string" ? pkg.version : "0.0.0";
  } catch {
    return "0.0.0";
  }
}

/** Add `catalog` to the CLI. */
export function registerCatalogCommand(program: Command): void {
  program
    .command("catalog")
    .description(
      "write the AsyncAPI 3.0 document (asyncapi.json) and the HTML event catalog (index.html: " +
        "events, services, flow graph) of the contracts",
    )
    .option("--out <dir>", "output directory", DEFAULT_CATALOG_DIR)
    .option("--title <title>", "title of the document and the page")
    .option("--version <version>", "version of the contracts (default: package.json's)")
    .action(async (options: { out: string; title?: string; version?: string }) => {
      const config = loadConfig();
      contractsDir(config);
      await checkModule(config);
      const { writeCatalog } = await import("@protoevents/codegen");
      const written = await writeCatalog({
        root: config.root,
        outDir: options.out,
        version: options.version ?? contractVersion(config.root),
        ...(options.title === undefined ? {} : { title: options.title }),
      });
      const { catalog } = written;
      const subscriptions = catalog.applications.reduce((n, a) => n + a.subscriptions.length, 0);
      process.stdout.write(
        `${catalog.events.length} events, ${catalog.applications.length} services, ` +
          `${catalog.topics.filter((t) => t.kind === "event").length} topics, ${subscriptions} subscriptions\n` +
          `wrote ${relative(process.cwd(), written.asyncApiPath)} (AsyncAPI 3.0)\n` +
          `wrote ${relative(process.cwd(), written.htmlPath)} (open it in a browser)\n`,
      );
    });
}
