import { request } from "node:http";
import { gzipSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code as ConnectCode, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { GetOrderRequestSchema, OrderService } from "../../generated/checkout/v1/order_api_pb.js";
import { Code, isProtoeventsError } from "../../runtime/src/errors.js";
import {
  apiAccessFromEnv,
  type ConnectServer,
  DEFAULT_API_MAX_REQUEST_BYTES,
  isLoopback,
  startConnectServer,
} from "../../services/lib/connect-server.js";

const servers: ConnectServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** An order API that answers GetOrder with the id it was asked for. */
async function serve(options: { host?: string; token?: string } = {}): Promise<ConnectServer> {
  const server = await startConnectServer({
    port: 0,
    ...options,
    routes: (router) => {
      router.service(OrderService, {
        getOrder: (req) => ({ order: { orderId: req.orderId } }),
      });
    },
  });
  servers.push(server);
  return server;
}

function client(port: number, token?: string) {
  return createClient(
    OrderService,
    createConnectTransport({
      baseUrl: `http://127.0.0.1:${port}`,
      httpVersion: "1.1",
      interceptors:
        token === undefined
          ? []
          : [
              (next) => (req) => {
                req.header.set("authorization", `Bearer ${token}`);
                return next(req);
              },
            ],
    }),
  );
}

async function code(call: Promise<unknown>): Promise<ConnectCode | "ok"> {
  try {
    await call;
    return "ok";
  } catch (error) {
    return ConnectError.from(error).code;
  }
}

/** POST a raw Connect unary request; resolves with the status and body. */
function post(
  port: number,
  body: Buffer,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method: "POST",
        path: "/checkout.v1.OrderService/GetOrder",
        headers: { "content-type": "application/proto", ...headers },
      },
      (res) => {
        let text = "";
        res.on("data", (chunk: Buffer) => {
          text += chunk.toString("utf8");
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

describe("a service's Connect API", () => {
  it("should listen on loopback only unless told otherwise", async () => {
    const server = await serve();
    expect(server.address).toBe("127.0.0.1");
    expect(await code(client(server.port).getOrder({ orderId: "o-1" }))).toBe("ok");
  });

  it("should refuse to listen on every interface without a token, naming the fix", async () => {
    let error: unknown;
    try {
      await serve({ host: "0.0.0.0" });
    } catch (e) {
      error = e;
    }
    expect(isProtoeventsError(error) && error.code).toBe(Code.InvalidArgument);
    expect((error as Error).message).toContain(
      "refusing to serve the API on 0.0.0.0, which is not a loopback address, without a token: set API_TOKEN",
    );
  });

  it("should answer only requests that carry the token when it has one", async () => {
    const server = await serve({ host: "0.0.0.0", token: "s3cret" });
    expect(server.address).toBe("0.0.0.0");
    expect(await code(client(server.port).getOrder({ orderId: "o-1" }))).toBe(
      ConnectCode.Unauthenticated,
    );
    expect(await code(client(server.port, "guess").getOrder({ orderId: "o-1" }))).toBe(
      ConnectCode.Unauthenticated,
    );
    const answer = await client(server.port, "s3cret").getOrder({ orderId: "o-1" });
    expect(answer.order?.orderId).toBe("o-1");
  });

  it("should refuse a request over the size limit, and a small body that inflates past it", async () => {
    const server = await serve();
    const big = Buffer.from(
      toBinary(
        GetOrderRequestSchema,
        create(GetOrderRequestSchema, { orderId: "x".repeat(DEFAULT_API_MAX_REQUEST_BYTES + 1) }),
      ),
    );
    const plain = await post(server.port, big, {});
    expect(plain.status).toBe(429);
    expect(plain.body).toContain("resource_exhausted");

    // 50 MiB of zeros, gzipped to about 50 KB: refused while inflating, not after.
    const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(100_000);
    const inflated = await post(server.port, bomb, { "content-encoding": "gzip" });
    expect(inflated.status).toBe(429);
    expect(inflated.body).toContain(
      `larger than configured readMaxBytes ${DEFAULT_API_MAX_REQUEST_BYTES} after decompression`,
    );
  });

  it("should tell loopback addresses from others, and read API_HOST and API_TOKEN", () => {
    expect(["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"].map(isLoopback)).toEqual([
      true,
      true,
      true,
      true,
      true,
    ]);
    expect(["0.0.0.0", "::", "10.0.0.5", "192.168.1.2", "example.com"].map(isLoopback)).toEqual([
      false,
      false,
      false,
      false,
      false,
    ]);
    expect(apiAccessFromEnv({})).toEqual({ host: "127.0.0.1", token: undefined });
    expect(apiAccessFromEnv({ API_HOST: "0.0.0.0", API_TOKEN: " t " })).toEqual({
      host: "0.0.0.0",
      token: "t",
    });
  });
});
