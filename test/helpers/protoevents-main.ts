// The protoevents CLI from its sources (tests run it through TS_NODE_ARGS);
// the built one is what the adoption test runs.
import { main } from "@protoevents/cli";

process.exitCode = await main(process.argv);
