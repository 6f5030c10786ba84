#!/usr/bin/env node
// The protoevents CLI. Its code is TypeScript; tsx compiles it on the fly so
// the CLI, the plugin and the services run from source with no build step.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../cli/src/main.ts");
process.exitCode = await main(process.argv);
