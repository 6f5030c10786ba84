/**
 * `protoevents catalog`: the AsyncAPI 3.0 document and the static HTML event
 * catalog of the contracts.
 */
import { createRequire } from "node:module";
import { relative } from "node:path";
import type { Command } from "commander";
import { DEFAULT_CATALOG_DIR, writeCatalog } from "../../codegen/src/catalog/write-catalog.js";

const { version } = createRequire(import.meta.url)("../../package.json") as { version: string };

/** Add `catalog` to the CLI. */
export function registerCatalogCommand(program: Command): void {
  program
    .command("catalog")
    .description(
      "write the AsyncAPI 3.0 document (asyncapi.json) and the HTML event catalog (index.html: " +
        "events, services, flow graph) of the contracts in proto/",
    )
    .option("--out <dir>", "output directory", DEFAULT_CATALOG_DIR)
    .option("--root <dir>", "the directory with buf.yaml", ".")
    .option("--title <title>", "title of the document and the page")
    .action(async (options: { out: string; root: string; title?: string }) => {
      const written = await writeCatalog({
        root: options.root,
        outDir: options.out,
        version,
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
