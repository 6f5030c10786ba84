import { pino } from "pino";
import { type Logger, traceFields } from "../../runtime/src/logger.js";

/** One JSON log line. */
export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly op?: string;
  readonly [field: string]: unknown;
}

/** A pino logger writing into memory, as a service's logger would write to stdout (trace ids included). */
export function captureLogs(level: string): {
  logger: Logger;
  text: () => string;
  lines: () => LogLine[];
} {
  const chunks: string[] = [];
  const logger = pino(
    { level, base: { service: "test" }, mixin: traceFields },
    { write: (c: string) => chunks.push(c) },
  );
  const text = () => chunks.join("");
  return {
    logger,
    text,
    lines: () =>
      text()
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as LogLine),
  };
}
