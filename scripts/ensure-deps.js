// Runs before `npm start`, `npm test`, `npm run generate` and `npm run check`:
// installs the locked dependencies when node_modules is missing or older than
// package-lock.json, then brings the toolkit packages' built JavaScript
// (runtime/, codegen/, cli/ → dist/) up to date, so the two Quick start
// commands work on a fresh clone and the CLI never runs stale code.
import { execFileSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";

const marker = "node_modules/.package-lock.json";
const stale =
  !existsSync(marker) || statSync(marker).mtimeMs < statSync("package-lock.json").mtimeMs;
if (stale) {
  process.stderr.write("protoevents: installing dependencies (npm ci)…\n");
  // npm ci runs the root "prepare" script, which builds the packages.
  execFileSync("npm", ["ci", "--no-audit", "--no-fund"], { stdio: "inherit" });
} else {
  // Incremental: a no-op when nothing changed since the last build.
  execFileSync(
    process.execPath,
    ["node_modules/typescript/bin/tsc", "-b", "runtime", "codegen", "cli"],
    { stdio: "inherit" },
  );
}
