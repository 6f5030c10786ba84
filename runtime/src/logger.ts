import { context, isSpanContextValid, trace } from "@opentelemetry/api";
import { type Logger, pino } from "pino";

export type { Logger } from "pino";

/**
 * `trace_id` and `span_id` of the span active where a line is logged (a
 * handler's delivery span, a request's span), so logs and traces join; an
 * empty object without one. A pino `mixin`.
 */
export function traceFields(): Record<string, string> {
  const spanContext = trace.getSpanContext(context.active());
  if (spanContext === undefined || !isSpanContextValid(spanContext)) {
    return {};
  }
  return { trace_id: spanContext.traceId, span_id: spanContext.spanId };
}

/**
 * The logger protoevents uses when none is passed in: JSON lines on stderr,
 * level from `PROTOEVENTS_LOG_LEVEL` (default `info`). Per-message lines
 * (publish, receive, ack) are at `debug`; failures at `warn` and `error`.
 *
 * Lines are written synchronously, as pino does by default: nothing is left
 * in a buffer when the process exits, and a stderr whose reader is gone
 * (EPIPE) only ends logging. (An asynchronous destination flushes at exit
 * with a loop that retries a broken pipe forever.) Inside an OpenTelemetry
 * span, lines carry `trace_id` and `span_id`.
 */
export function createLogger(bindings: Record<string, unknown> = {}): Logger {
  return pino(
    {
      level: process.env.PROTOEVENTS_LOG_LEVEL ?? "info",
      base: { ...bindings },
      mixin: traceFields,
    },
    pino.destination({ dest: 2, sync: true }),
  );
}

let defaultLogger: Logger | undefined;

/** A shared default logger, created on first use. @internal */
export function getDefaultLogger(): Logger {
  defaultLogger ??= createLogger({ lib: "protoevents" });
  return defaultLogger;
}
