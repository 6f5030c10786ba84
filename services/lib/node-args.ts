/**
 * How this repository runs one of its TypeScript files in a Node.js process:
 * tsx compiles it, and the toolkit packages (@protoevents/*) resolve to their
 * sources through the "@protoevents/source" export condition, as they do for
 * tsc and vitest here. An application that installs the packages runs their
 * built JavaScript instead.
 */
export const TS_NODE_ARGS: readonly string[] = [
  "--conditions=@protoevents/source",
  // Resolved here, so a process may run with any working directory.
  "--import",
  import.meta.resolve("tsx"),
];
