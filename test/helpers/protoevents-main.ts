// The protoevents CLI from its sources, for a test that starts it as a long-running
// process through TS_NODE_ARGS; `protoevents()` in cli.ts runs the built one.
import { main } from "@protoevents/cli";

process.exitCode = await main(process.argv);
