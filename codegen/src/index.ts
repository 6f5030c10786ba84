/**
 * @protoevents/codegen: the contract tooling behind the `protoevents` CLI.
 * The plugin itself is `@protoevents/codegen/plugin` (and the
 * `protoc-gen-protoevents` binary).
 */

export {
  type BufFinding,
  type BufRun,
  type BufWorkspace,
  bufBreaking,
  bufBuild,
  bufLint,
  bufVersion,
  pathPrefixOf,
  readModulePath,
  resolveBuf,
  runBuf,
} from "./buf.js";
export {
  ASYNCAPI_FILE,
  CATALOG_HTML_FILE,
  type WriteCatalogOptions,
  type WrittenCatalog,
  writeCatalog,
} from "./catalog/write-catalog.js";
export {
  type CheckOptions,
  type CheckReport,
  checkContracts,
  type EventMode,
  type FindingSource,
  type GateFinding,
} from "./compat/check.js";
export { type ContractSnapshot, snapshotContracts } from "./compat/contract-snapshot.js";
export { type ContractImage, readImage } from "./compat/image.js";
export {
  checkReportJson,
  formatAllowed,
  formatCheckMarkdown,
  formatGateFinding,
  gateFindingJson,
  summarizeCheck,
} from "./compat/report.js";
export {
  DEFAULT_CATALOG_DIR,
  DEFAULT_EXTENSION_NUMBER,
  OPTIONS_PROTO_PATH,
  optionsProto,
  PLUGIN_BIN_DIR,
  REGISTRY_FILE,
} from "./layout.js";
export {
  type ContractReading,
  type ReadOptions,
  readContracts,
} from "./read-contracts.js";
export {
  type CreateReleaseOptions,
  createRelease,
  listReleases,
  RELEASES_DIR,
  type ReleaseManifest,
  type ReleaseRef,
} from "./release/releases.js";
export {
  formatSyncReport,
  type HandlerSpec,
  handlerSpecs,
  type SyncOptions,
  type SyncReport,
  syncServices,
} from "./sync/sync-services.js";
