/**
 * A Connect RPC server on node:http for a service's API (HTTP/1.1; Connect,
 * gRPC-Web and gRPC-over-HTTP/1.1-capable clients), started and stopped as
 * one of the service's closables.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { Code, ProtoeventsError } from "@protoevents/runtime";
import type { Closable } from "./run-service.js";

/**
 * How long {@link ConnectServer.close} lets running requests finish before it
 * drops their connections: long enough for a request's store transaction,
 * short enough not to hold up a shutdown.
 */
export const DEFAULT_API_CLOSE_TIMEOUT_MS = 10_000;

/** Options of {@link startConnectServer}. */
export interface ConnectServerOptions {
  /** Registers the services, e.g. `(router) => router.service(OrderService, impl)`. */
  readonly routes: (router: ConnectRouter) => void;
  /** TCP port; 0 picks a free one (see {@link ConnectServer.port}). */
  readonly port: number;
  /** Interface to listen on. @default every interface */
  readonly host?: string;
  /** @default DEFAULT_API_CLOSE_TIMEOUT_MS */
  readonly closeTimeoutMs?: number;
}

/** A listening Connect server. */
export interface ConnectServer extends Closable {
  /** The port it listens on, also when it was started with port 0. */
  readonly port: number;
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
  const server: Server = createServer(connectNodeAdapter({ routes: options.routes }));
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => {
      reject(
        new ProtoeventsError(
          Code.InvalidArgument,
          `cannot listen on port ${options.port}: ${error.message}`,
          { cause: error },
        ),
      );
    };
    server.once("error", onError);
    server.listen(options.port, options.host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_API_CLOSE_TIMEOUT_MS;
  let closing: Promise<void> | undefined;
  return {
    port,
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
