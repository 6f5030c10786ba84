import { afterEach, describe, expect, it } from "vitest";
import { Code, isProtoeventsError } from "../../runtime/src/errors.js";
import {
  type HealthServer,
  type HealthStatus,
  startHealthServer,
} from "../../runtime/src/health.js";

const servers: HealthServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** Fake checks whose answers a test sets, counting how often each is asked. */
function fakeChecks() {
  const state = {
    live: { ok: true, reasons: [] } as HealthStatus,
    ready: { ok: false, reasons: ["starting"] } as HealthStatus | Promise<HealthStatus>,
    asked: { live: 0, ready: 0 },
  };
  return {
    state,
    checks: {
      live: () => {
        state.asked.live++;
        return state.live;
      },
      ready: () => {
        state.asked.ready++;
        return state.ready;
      },
    },
  };
}

async function serve(
  checks: Parameters<typeof startHealthServer>[0],
  options: { checkTimeoutMs?: number; reuseMs?: number } = {},
) {
  // Answers are not reused unless a test says so: each probe asks.
  const server = await startHealthServer(checks, { port: 0, reuseMs: 0, ...options });
  servers.push(server);
  const get = async (path: string, method = "GET") => {
    const response = await fetch(`http://${server.host}:${server.port}${path}`, { method });
    return { status: response.status, body: await response.json().catch(() => undefined) };
  };
  return { server, get };
}

describe("the health server", () => {
  it("should answer /livez and /readyz with 200 or 503 and the reasons, on loopback", async () => {
    const { state, checks } = fakeChecks();
    const { server, get } = await serve(checks);
    expect(server.host).toBe("127.0.0.1");
    expect(await get("/livez")).toEqual({ status: 200, body: { status: "ok" } });
    expect(await get("/readyz")).toEqual({
      status: 503,
      body: { status: "unavailable", reasons: ["starting"] },
    });
    expect(await get("/nope")).toEqual({
      status: 404,
      body: { status: "not found", paths: ["/livez", "/readyz"] },
    });
    expect((await get("/readyz", "POST")).status).toBe(405);
    expect(state.asked).toEqual({ live: 1, ready: 1 });
  });

  it("should count a check that does not answer in time, or throws, as failed", async () => {
    const { state, checks } = fakeChecks();
    state.ready = new Promise(() => {});
    const { get } = await serve(
      {
        ...checks,
        live: () => {
          throw new Error("boom");
        },
      },
      { checkTimeoutMs: 100 },
    );
    expect(await get("/readyz")).toEqual({
      status: 503,
      body: { status: "unavailable", reasons: ["readiness check did not answer within 100 ms"] },
    });
    expect(await get("/livez")).toEqual({
      status: 503,
      body: { status: "unavailable", reasons: ["liveness check failed: boom"] },
    });
  });

  it("should ask each check once for a burst of probes", async () => {
    const { state, checks } = fakeChecks();
    state.ready = { ok: true, reasons: [] };
    // Reused for a minute here, so the burst may take as long as the machine needs.
    const { get } = await serve(checks, { reuseMs: 60_000 });
    const answers = await Promise.all(Array.from({ length: 50 }, () => get("/readyz")));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(state.asked.ready).toBe(1);
  });

  it("should refuse a bad port, naming it", async () => {
    const error = await startHealthServer(fakeChecks().checks, { port: 70_000 }).catch(
      (e: unknown) => e,
    );
    expect(isProtoeventsError(error) && error.code).toBe(Code.InvalidArgument);
    expect(String(error)).toContain("health port must be an integer from 0 to 65535, got 70000");
  });
});
