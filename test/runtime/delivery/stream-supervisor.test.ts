import { EventEmitter } from "node:events";
import type { SubscriptionOptions } from "@google-cloud/pubsub";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { REOPEN_MAX_DELAY_MS, REOPEN_MIN_DELAY_MS } from "../../../runtime/src/default-options.js";
import {
  type ConsumerHealth,
  classifyStreamError,
  HealthTracker,
  type StreamSource,
  superviseStream,
} from "../../../runtime/src/delivery/stream-supervisor.js";
import { Code, type ProtoeventsError } from "../../../runtime/src/errors.js";
import { captureLogs } from "../../helpers/logs.js";

/** A fake Pub/Sub subscription: the test emits its events and sees it opened and closed. */
class FakeSubscription extends EventEmitter {
  isOpen = true;
  opens = 0;
  closes = 0;

  open(): void {
    this.opens++;
    this.isOpen = true;
  }

  async close(): Promise<void> {
    this.closes++;
    this.isOpen = false;
  }

  /** The server ends the stream for good: the client closes the subscription. */
  endedByServer(): void {
    this.isOpen = false;
    this.emit("close");
  }
}

/** A fake received message: it can only be nacked, and records that. */
interface FakeMessage {
  readonly id: string;
  nack(): void;
}

/** A fake stream source handing out one {@link FakeSubscription}, keeping the options it got. */
class FakeStreamSource implements StreamSource<FakeMessage> {
  readonly subscriptionFake = new FakeSubscription();
  options: SubscriptionOptions | undefined;
  name: string | undefined;

  subscription(name: string, options: SubscriptionOptions): FakeSubscription {
    this.name = name;
    this.options = options;
    return this.subscriptionFake;
  }
}

function fakeMessage(id: string, nacked: string[]): FakeMessage {
  return { id, nack: () => void nacked.push(id) };
}

function grpcError(code: number, details: string): Error {
  return Object.assign(new Error(`${code} ${details}`), { code, details });
}

describe("classifyStreamError", () => {
  it.each([
    [5, "NOT_FOUND", "provision it (protoevents provision)"],
    [7, "PERMISSION_DENIED", "grant the credentials roles/pubsub.subscriber on it"],
    [16, "UNAUTHENTICATED", "grant the credentials roles/pubsub.subscriber on it"],
  ])("should call gRPC status %i permanent and say what to do", (code, name, advice) => {
    const { error, permanent } = classifyStreamError(grpcError(code, "no"), "s");
    expect(permanent).toBe(true);
    expect(error.code).toBe(Code.PubSubUnavailable);
    expect(error.rawMessage).toBe(
      `subscription s cannot be consumed (${name}): ${advice}; retrying meanwhile. the streaming pull of s ended with gRPC status ${code}: no (${code} no)`,
    );
    expect(error.details).toEqual({ grpcCode: code, grpcDetails: "no" });
  });

  it("should call other statuses transient and keep the status in the message", () => {
    const { error, permanent } = classifyStreamError(grpcError(14, "connection reset"), "s");
    expect(permanent).toBe(false);
    expect(error.rawMessage).toBe(
      "the streaming pull of s ended with gRPC status 14: connection reset (14 connection reset)",
    );
    expect(classifyStreamError(new Error("boom"), "s").error.rawMessage).toBe(
      "the streaming pull of s ended (boom)",
    );
  });
});

describe("superviseStream", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function supervised(settings = {}) {
    const source = new FakeStreamSource();
    const logs = captureLogs("info");
    const received: string[] = [];
    const errors: ProtoeventsError[] = [];
    const failing: (string | undefined)[] = [];
    const stream = superviseStream(
      source,
      "payment.charge-order",
      settings,
      {
        onMessage: (message) => void received.push(message.id),
        onError: (error) => void errors.push(error),
        onFailing: (error) => void failing.push(error?.rawMessage.split(":")[0]),
      },
      logs.logger,
    );
    return {
      source,
      subscription: source.subscriptionFake,
      logs,
      received,
      errors,
      failing,
      stream,
    };
  }

  it("should open the subscription with flow control and a waiting close", () => {
    const { source } = supervised({ maxStreams: 3, maxMessagesInFlight: 7, closeTimeoutMs: 2000 });
    expect(source.name).toBe("payment.charge-order");
    expect(source.options?.flowControl).toEqual({
      maxMessages: 7,
      maxBytes: 64 * 1024 * 1024,
      allowExcessMessages: false,
    });
    expect(source.options?.streamingOptions).toEqual({ maxStreams: 3 });
    expect(source.options?.closeOptions?.behavior).toBe("WAIT");
    expect(source.options?.closeOptions?.timeout?.totalOf("millisecond")).toBe(2000);
  });

  it("should reopen a stream the server ended, backing off, and reset the backoff on a message", async () => {
    const { subscription, logs, received } = supervised();
    subscription.endedByServer();
    await vi.advanceTimersByTimeAsync(REOPEN_MIN_DELAY_MS - 1);
    expect(subscription.opens).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(subscription.opens).toBe(1);

    subscription.endedByServer();
    await vi.advanceTimersByTimeAsync(REOPEN_MIN_DELAY_MS);
    expect(subscription.opens).toBe(1);
    await vi.advanceTimersByTimeAsync(REOPEN_MIN_DELAY_MS);
    expect(subscription.opens).toBe(2);

    subscription.emit("message", fakeMessage("m-1", []));
    subscription.endedByServer();
    await vi.advanceTimersByTimeAsync(REOPEN_MIN_DELAY_MS);
    expect(subscription.opens).toBe(3);
    expect(received).toEqual(["m-1"]);
    expect(
      logs
        .lines()
        .filter((l) => l.op === "reopen")
        .map((l) => [l.msg, l.delayMs]),
    ).toEqual([
      ["subscription stream closed by the server; reopening", REOPEN_MIN_DELAY_MS],
      ["subscription stream closed by the server; reopening", 2 * REOPEN_MIN_DELAY_MS],
      ["subscription stream closed by the server; reopening", REOPEN_MIN_DELAY_MS],
    ]);
  });

  it("should never wait longer than the longest reopen delay", async () => {
    const { subscription, logs } = supervised();
    for (let i = 0; i < 10; i++) {
      subscription.endedByServer();
      await vi.advanceTimersByTimeAsync(REOPEN_MAX_DELAY_MS);
    }
    const delays = logs.lines().map((l) => l.delayMs);
    expect(Math.max(...delays.map(Number))).toBe(REOPEN_MAX_DELAY_MS);
    expect(subscription.opens).toBe(10);
  });

  it("should report a permanent error as failing until the next message, and a transient one only as an error", () => {
    const { subscription, errors, failing, logs } = supervised();
    subscription.emit("error", grpcError(14, "reset"));
    expect(failing).toEqual([]);
    subscription.emit("error", grpcError(5, "Subscription does not exist"));
    expect(failing).toEqual(["subscription payment.charge-order cannot be consumed (NOT_FOUND)"]);
    expect(errors.map((e) => e.details.grpcCode)).toEqual([14, 5]);
    subscription.emit("message", fakeMessage("m-1", []));
    subscription.emit("message", fakeMessage("m-2", []));
    expect(failing).toEqual([
      "subscription payment.charge-order cannot be consumed (NOT_FOUND)",
      undefined,
    ]);
    expect(logs.lines().filter((l) => l.msg === "subscription streams again")).toHaveLength(1);
  });

  it("should stop reopening and nack what still arrives once closed", async () => {
    const { subscription, stream, received } = supervised();
    subscription.endedByServer();
    await stream.close();
    expect(subscription.closes).toBe(1);
    await vi.advanceTimersByTimeAsync(REOPEN_MAX_DELAY_MS);
    expect(subscription.opens).toBe(0);
    const nacked: string[] = [];
    subscription.emit("message", fakeMessage("late", nacked));
    expect(nacked).toEqual(["late"]);
    expect(received).toEqual([]);
    subscription.endedByServer();
    await vi.advanceTimersByTimeAsync(REOPEN_MAX_DELAY_MS);
    expect(subscription.opens).toBe(0);
  });
});

describe("HealthTracker", () => {
  it("should be healthy until a subscription fails, report each change once, and be closed after close()", () => {
    const changes: ConsumerHealth[] = [];
    const health = new HealthTracker(["a", "b"], (h) => changes.push(h));
    expect(health.health()).toEqual({
      healthy: true,
      subscriptions: [
        { subscription: "a", state: "streaming" },
        { subscription: "b", state: "streaming" },
      ],
    });
    const { error } = classifyStreamError(grpcError(7, "denied"), "b");
    health.setFailing("b", error);
    health.setFailing("b", error);
    expect(changes).toHaveLength(1);
    expect(changes[0]).toEqual({
      healthy: false,
      subscriptions: [
        { subscription: "a", state: "streaming" },
        { subscription: "b", state: "failing", error },
      ],
    });
    health.setFailing("b", undefined);
    expect(changes).toHaveLength(2);
    expect(changes[1]?.healthy).toBe(true);
    health.close();
    expect(health.health()).toEqual({
      healthy: false,
      subscriptions: [
        { subscription: "a", state: "closed" },
        { subscription: "b", state: "closed" },
      ],
    });
  });
});
