/**
 * Liveness and readiness over HTTP, for an orchestrator's probes:
 * `GET /livez` and `GET /readyz` answer 200 with `{"status":"ok"}` or 503
 * with the reasons. Each check is bounded in time, and a check's answer is
 * reused for a second, so a flood of probes costs the store one query a
 * second at most.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { sql } from "kysely";
import type { Consumer, SubscriptionHealth } from "./consumer.js";
import { Code, ProtoeventsError, reasonToString } from "./errors.js";
import type { Store } from "./store/store.js";

/** The outcome of one check: healthy, or why not. */
export interface HealthStatus {
  readonly ok: boolean;
  /** Why not, one line each, e.g. `subscription payment.charge-order: NOT_FOUND …`. */
  readonly reasons: readonly string[];
}

/** What the server asks. */
export interface HealthChecks {
  /** Whether the process can make progress at all; restart it when not. */
  live(): HealthStatus | Promise<HealthStatus>;
  /** Whether it should get work now (traffic, and for a rollout: whether it came up). */
  ready(): HealthStatus | Promise<HealthStatus>;
}

/** Options of {@link startHealthServer}. */
export interface HealthServerOptions {
  /** Port; 0 picks a free one. */
  readonly port: number;
  /**
   * Interface to listen on. Probes come from the orchestrator, so in a
   * container this is usually `0.0.0.0`; the answers name subscriptions and
   * nothing else. @default "127.0.0.1"
   */
  readonly host?: string;
  /** How long one check may take before it counts as failed. @default 2000 */
  readonly checkTimeoutMs?: number;
  /** How long a check's answer is reused for further probes. @default 1000 */
  readonly reuseMs?: number;
}

/** A listening health server. */
export interface HealthServer {
  readonly port: number;
  readonly host: string;
  close(): Promise<void>;
}

/**
 * Serve `checks` on `GET /livez` and `GET /readyz`.
 *
 * @throws ProtoeventsError `invalid_argument` for a bad port; the listen
 *   error (e.g. EADDRINUSE) as `internal` naming the address.
 */
export async function startHealthServer(
  checks: HealthChecks,
  options: HealthServerOptions,
): Promise<HealthServer> {
  const { port } = options;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `health port must be an integer from 0 to 65535, got ${String(port)}`,
    );
  }
  const host = options.host ?? "127.0.0.1";
  const timeoutMs = options.checkTimeoutMs ?? 2_000;
  const reuseMs = options.reuseMs ?? 1_000;
  const probes = {
    "/livez": cached(() => bounded(checks.live, "liveness", timeoutMs), reuseMs),
    "/readyz": cached(() => bounded(checks.ready, "readiness", timeoutMs), reuseMs),
  };
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    // Nothing is read from a request: a body is never awaited.
    const path = (request.url ?? "").split("?")[0] ?? "";
    const probe = probes[path as keyof typeof probes];
    if (probe === undefined) {
      respond(response, 404, { status: "not found", paths: Object.keys(probes) });
      return;
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.setHeader("allow", "GET, HEAD");
      respond(response, 405, { status: "method not allowed" });
      return;
    }
    void probe().then((status) =>
      respond(
        response,
        status.ok ? 200 : 503,
        status.ok ? { status: "ok" } : { status: "unavailable", reasons: status.reasons },
      ),
    );
  });
  // Probes are short: do not let an idle or slow client hold a socket.
  server.requestTimeout = 5_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 50;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error) =>
      reject(
        new ProtoeventsError(
          Code.Internal,
          `health server could not listen on ${host}:${port}: ${reasonToString(error)}`,
          { cause: error },
        ),
      ),
    );
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    port: address.port,
    host: address.address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function respond(response: ServerResponse, code: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  response.writeHead(code, {
    "content-type": "application/json",
    "cache-control": "no-store",
    "content-length": Buffer.byteLength(text),
  });
  response.end(text);
}

async function bounded(
  check: () => HealthStatus | Promise<HealthStatus>,
  what: string,
  timeoutMs: number,
): Promise<HealthStatus> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      Promise.resolve().then(check),
      new Promise<HealthStatus>((resolve) => {
        timer = setTimeout(
          () =>
            resolve({
              ok: false,
              reasons: [`${what} check did not answer within ${timeoutMs} ms`],
            }),
          timeoutMs,
        );
      }),
    ]);
  } catch (error) {
    return { ok: false, reasons: [`${what} check failed: ${reasonToString(error)}`] };
  } finally {
    clearTimeout(timer);
  }
}

/** One check at a time, and its answer reused for `reuseMs`. */
function cached(run: () => Promise<HealthStatus>, reuseMs: number): () => Promise<HealthStatus> {
  let last: { at: number; status: Promise<HealthStatus> } | undefined;
  return () => {
    const now = Date.now();
    if (last === undefined || now - last.at >= reuseMs) {
      const status = run();
      last = { at: now, status };
      // Measure the reuse window from when the answer arrived.
      void status.then(() => {
        if (last?.status === status) {
          last = { at: Date.now(), status };
        }
      });
    }
    return last.status;
  };
}

/** Why some subscriptions are not streaming; empty when all are. */
export function subscriptionProblems(
  consumers: ReadonlyArray<Pick<Consumer, "health">>,
  states: ReadonlyArray<SubscriptionHealth["state"]> = ["failing", "closed"],
): string[] {
  return consumers
    .flatMap((consumer) => consumer.health().subscriptions)
    .filter((s) => states.includes(s.state))
    .map(
      (s) =>
        `subscription ${s.subscription} is ${s.state}${s.error === undefined ? "" : `: ${s.error.message}`}`,
    );
}

/**
 * Whether `store` answers a trivial query; its error as the reason
 * otherwise. Bounded by the health server's check timeout.
 */
export async function storeProblems<DB>(
  store: Pick<Store<DB>, "db" | "dialect">,
  name: string = `${store.dialect} store`,
): Promise<string[]> {
  try {
    await sql`select 1`.execute(store.db);
    return [];
  } catch (error) {
    return [`${name} did not answer: ${reasonToString(error)}`];
  }
}
