/**
 * A Connect RPC server on node:http for a service's API (HTTP/1.1; Connect,
 * gRPC-Web and gRPC-over-HTTP/1.1-capable clients), started and stopped as
 * one of the service's closables.
 *
 * It listens on loopback unless told otherwise; any other address needs a
 * bearer token, checked on every request. Requests are capped in size, after
 * decompression too (Connect's own default is about 4 GiB).
 */
import { timingSafeEqual } from "node:crypto";
import { createServer, type Server } from "node:http";
import { type AddressInfo, isIP } from "node:net";
import {
  Code as ConnectCode,
  ConnectError,
  type ConnectRouter,
  type Interceptor,
} from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { Code, ProtoeventsError } from "@protoevents/runtime";
import type { Closable } from "./run-service.js";

/**
 * How long {@link ConnectServer.close} lets running requests finish before it
 * drops their connections: long enough for a request's store transaction,
 * short enough not to hold up a shutdown.
 */
export const DEFAULT_API_CLOSE_TIMEOUT_MS = 10_000;

/** Where an API listens unless told otherwise: this machine only. */
export const DEFAULT_API_HOST = "127.0.0.1";

/**
 * The largest request an API reads, in bytes, after decompression: a
 * PlaceOrder of 100 items is a few KiB; a 51 KB gzip body once inflated to
 * 50 MiB in the order service.
 */
export const DEFAULT_API_MAX_REQUEST_BYTES = 1024 * 1024;

/** Environment variables of every service API. */
export const ApiEnv = {
  /** The interface to listen on. @default 127.0.0.1 */
  host: "API_HOST",
  /** The bearer token clients must send; required for a non-loopback API_HOST. */
  token: "API_TOKEN",
} as const;

/** Options of {@link startConnectServer}. */
export interface ConnectServerOptions {
  /** Registers the services, e.g. `(router) => router.service(OrderService, impl)`. */
  readonly routes: (router: ConnectRouter) => void;
  /** TCP port; 0 picks a free one (see {@link ConnectServer.port}). */
  readonly port: number;
  /** Interface to listen on. @default DEFAULT_API_HOST (loopback) */
  readonly host?: string;
  /**
   * A bearer token every request must carry (`Authorization: Bearer …`).
   * Required when `host` is not a loopback address.
   */
  readonly token?: string | undefined;
  /** @default DEFAULT_API_MAX_REQUEST_BYTES */
  readonly maxRequestBytes?: number;
  /** @default DEFAULT_API_CLOSE_TIMEOUT_MS */
  readonly closeTimeoutMs?: number;
}

/** A listening Connect server. */
export interface ConnectServer extends Closable {
  /** The port it listens on, also when it was started with port 0. */
  readonly port: number;
  /** The address it listens on, e.g. `127.0.0.1`. */
  readonly address: string;
  /**
   * Stop accepting connections, let running requests finish (dropping them
   * after the close timeout), and resolve when the server is closed.
   * Idempotent.
   */
  close(): Promise<void>;
}

/**
 * Start a Connect server and resolve once it listens.
 *
 * @throws ProtoeventsError `invalid_argument` when the port cannot be bound
 *   (in use, or not permitted).
 */
export async function startConnectServer(options: ConnectServerOptions): Promise<ConnectServer> {
  const host = options.host ?? DEFAULT_API_HOST;
  const token = options.token === "" ? undefined : options.token;
  if (!isLoopback(host) && token === undefined) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `refusing to serve the API on ${host}, which is not a loopback address, without a token: set ${ApiEnv.token} (clients send it as "Authorization: Bearer <token>"), or listen on ${DEFAULT_API_HOST}`,
    );
  }
  const server: Server = createServer(
    connectNodeAdapter({
      routes: options.routes,
      readMaxBytes: options.maxRequestBytes ?? DEFAULT_API_MAX_REQUEST_BYTES,
      interceptors: token === undefined ? [] : [requireBearer(token)],
    }),
  );
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => {
      reject(
        new ProtoeventsError(
          Code.InvalidArgument,
          `cannot listen on ${host} port ${options.port}: ${error.message}`,
          { cause: error },
        ),
      );
    };
    server.once("error", onError);
    server.listen(options.port, host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const { port, address } = server.address() as AddressInfo;
  const closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_API_CLOSE_TIMEOUT_MS;
  let closing: Promise<void> | undefined;
  return {
    port,
    address,
    close() {
      closing ??= new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), closeTimeoutMs);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        // Keep-alive connections with no request in flight would otherwise hold
        // close() open until the client drops them.
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}

/** Whether an address (or `localhost`) only reaches this machine. */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (bare === "localhost") {
    return true;
  }
  if (isIP(bare) === 4) {
    return bare.startsWith("127.");
  }
  return bare === "::1" || bare === "0:0:0:0:0:0:0:1" || /^::ffff:127\./.test(bare);
}

/** Refuse every request that does not carry `Authorization: Bearer <token>`. */
function requireBearer(token: string): Interceptor {
  const expected = Buffer.from(`Bearer ${token}`);
  return (next) => async (request) => {
    const given = Buffer.from(request.header.get("authorization") ?? "");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new ConnectError(
        "missing or wrong bearer token: send Authorization: Bearer <API_TOKEN>",
        ConnectCode.Unauthenticated,
      );
    }
    return next(request);
  };
}

/** Where and how a service's API listens, from API_HOST and API_TOKEN. */
export function apiAccessFromEnv(env: Readonly<Record<string, string | undefined>>): {
  readonly host: string;
  readonly token: string | undefined;
} {
  const host = env[ApiEnv.host]?.trim() || DEFAULT_API_HOST;
  const token = env[ApiEnv.token]?.trim() || undefined;
  return { host, token };
}

/**
 * The port a service's API listens on, from `env[name]`: an integer 0–65535
 * (0 picks a free port), or `fallback` when unset or empty.
 *
 * @throws ProtoeventsError `invalid_argument` naming the variable for
 *   anything else.
 */
export function portFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  name: string,
  fallback: number,
): number {
  const raw = env[name]?.trim() ?? "";
  if (raw === "") {
    return fallback;
  }
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port > 65_535) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `${name} must be a TCP port from 0 to 65535 (0 picks a free one), got ${JSON.stringify(raw)}`,
    );
  }
  return port;
}
