import { type Logger, pino } from "pino";

export type { Logger } from "pino";

/**
 * The logger protoevents uses when none is passed in: JSON lines on stderr,
 * level from `PROTOEVENTS_LOG_LEVEL` (default `info`). Per-message lines
 * (publish, receive, ack) are at `debug`; failures at `warn` and `error`.
 *
 * Lines are written synchronously, as pino does by default: nothing is left
 * in a buffer when the process exits, and a stderr whose reader is gone
 * (EPIPE) only ends logging. (An asynchronous destination flushes at exit
 * with a loop that retries a broken pipe forever.)
 */
export function createLogger(bindings: Record<string, unknown> = {}): Logger {
  return pino(
    { level: process.env.PROTOEVENTS_LOG_LEVEL ?? "info", base: { ...bindings } },
    pino.destination({ dest: 2, sync: true }),
  );
}

let defaultLogger: Logger | undefined;

/** A shared default logger, created on first use. @internal */
export function getDefaultLogger(): Logger {
  defaultLogger ??= createLogger({ lib: "protoevents" });
  return defaultLogger;
}
