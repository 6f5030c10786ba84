// Runs before `npm start` and `npm test`: installs the locked dependencies
// when node_modules is missing or older than package-lock.json, so the two
// Quick start commands work on a fresh clone.
import { execFileSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";

const marker = "node_modules/.package-lock.json";
const stale =
  !existsSync(marker) || statSync(marker).mtimeMs < statSync("package-lock.json").mtimeMs;
if (stale) {
  process.stderr.write("protoevents: installing dependencies (npm ci)…\n");
  execFileSync("npm", ["ci", "--no-audit", "--no-fund"], { stdio: "inherit" });
}
