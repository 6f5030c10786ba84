/**
 * `protoevents catalog`: load the contracts, write the AsyncAPI document and
 * the HTML page into one directory.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Code, ProtoeventsError, reasonToString } from "@protoevents/runtime/errors";
import { DEFAULT_CATALOG_DIR } from "../layout.js";
import { buildAsyncApi } from "./build-asyncapi.js";
import { type Catalog, loadCatalog } from "./load-catalog.js";
import { renderCatalogHtml } from "./render-catalog-html.js";

/** The AsyncAPI document's file name. */
export const ASYNCAPI_FILE = "asyncapi.json";
/** The HTML page's file name. */
export const CATALOG_HTML_FILE = "index.html";

/** Options of {@link writeCatalog}. */
export interface WriteCatalogOptions {
  /** The directory with `buf.yaml`. @default the current directory */
  readonly root?: string;
  /** Output directory. @default DEFAULT_CATALOG_DIR under root */
  readonly outDir?: string;
  /** The version of the contracts, written into both files. */
  readonly version: string;
  /** Title of the document and the page. */
  readonly title?: string;
}

/** What {@link writeCatalog} wrote. */
export interface WrittenCatalog {
  readonly asyncApiPath: string;
  readonly htmlPath: string;
  readonly catalog: Catalog;
}

/**
 * Write `asyncapi.json` (AsyncAPI 3.0) and `index.html` (the catalog page)
 * for the contracts under `root`.
 *
 * @throws ProtoeventsError `invalid_contract` when the contracts do not
 *   build, `invalid_argument` when the files cannot be written.
 */
export async function writeCatalog(options: WriteCatalogOptions): Promise<WrittenCatalog> {
  const root = resolve(options.root ?? ".");
  const outDir = resolve(root, options.outDir ?? DEFAULT_CATALOG_DIR);
  const catalog = await loadCatalog({ root });
  const titled = options.title === undefined ? {} : { title: options.title };
  const document = buildAsyncApi(catalog, { version: options.version, ...titled });
  const html = renderCatalogHtml(catalog, {
    version: options.version,
    asyncApiFile: ASYNCAPI_FILE,
    ...titled,
  });
  const asyncApiPath = join(outDir, ASYNCAPI_FILE);
  const htmlPath = join(outDir, CATALOG_HTML_FILE);
  try {
    await mkdir(outDir, { recursive: true });
    await writeFile(asyncApiPath, `${JSON.stringify(document, null, 2)}\n`);
    await writeFile(htmlPath, html);
  } catch (cause) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `cannot write the catalog to ${outDir}: ${reasonToString(cause)}`,
      { cause },
    );
  }
  return { asyncApiPath, htmlPath, catalog };
}
