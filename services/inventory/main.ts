import { runServiceMain } from "../lib/run-service.js";
import { definition } from "./service.js";

await runServiceMain(definition);
