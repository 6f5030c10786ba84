import { describe, expect, it } from "vitest";
import { GrpcStatus, grpcCode, grpcDetails } from "../../runtime/src/grpc.js";
import { createTopicCache, type TopicOptions, topicKey } from "../../runtime/src/topic-cache.js";

describe("topicKey", () => {
  it("should tell options apart and ignore the order they were written in", () => {
    const a: TopicOptions = {
      batching: { maxMessages: 10, maxMilliseconds: 5 },
      messageOrdering: true,
    };
    const b: TopicOptions = {
      messageOrdering: true,
      batching: { maxMilliseconds: 5, maxMessages: 10 },
    };
    expect(topicKey("t", a)).toBe(topicKey("t", b));
    expect(topicKey("t", a)).not.toBe(topicKey("t", { ...a, messageOrdering: false }));
    expect(topicKey("t", a)).not.toBe(topicKey("u", a));
    expect(topicKey("t", {})).toBe(topicKey("t", { messageOrdering: false }));
  });
});

/** A fake topic handle: counts flushes, or fails them. */
class FakeTopic {
  flushes = 0;
  constructor(
    readonly name: string,
    readonly options: TopicOptions | undefined,
    private readonly failFlush: Error | undefined,
  ) {}
  async flush(): Promise<void> {
    this.flushes++;
    if (this.failFlush !== undefined) {
      throw this.failFlush;
    }
  }
}

describe("createTopicCache", () => {
  it("should make one handle per name and options, and flush them all", async () => {
    const made: FakeTopic[] = [];
    const cache = createTopicCache({
      topic: (name: string, options?: TopicOptions) => {
        const topic = new FakeTopic(name, options, undefined);
        made.push(topic);
        return topic;
      },
    });
    const ordered = cache.topic("orders", { messageOrdering: true });
    expect(cache.topic("orders", { messageOrdering: true })).toBe(ordered);
    expect(cache.topic("orders", { messageOrdering: false })).not.toBe(ordered);
    cache.topic("payments");
    expect(made.map((t) => [t.name, t.options?.messageOrdering])).toEqual([
      ["orders", true],
      ["orders", false],
      ["payments", undefined],
    ]);
    await cache.flush();
    expect(made.map((t) => t.flushes)).toEqual([1, 1, 1]);
  });

  it("should wait for every flush and then reject with the first failure", async () => {
    const made: FakeTopic[] = [];
    const cache = createTopicCache({
      topic: (name: string) => {
        const topic = new FakeTopic(
          name,
          undefined,
          name === "a" ? new Error("a refused") : undefined,
        );
        made.push(topic);
        return topic;
      },
    });
    cache.topic("a");
    cache.topic("b");
    await expect(cache.flush()).rejects.toThrow("a refused");
    expect(made.map((t) => t.flushes)).toEqual([1, 1]);
  });
});

describe("grpcCode", () => {
  it("should read a numeric status and its details, and nothing else", () => {
    const notFound = Object.assign(new Error("5 NOT_FOUND"), { code: 5, details: "gone" });
    expect(grpcCode(notFound)).toBe(GrpcStatus.NOT_FOUND);
    expect(grpcDetails(notFound)).toBe("gone");
    expect(grpcCode(Object.assign(new Error("x"), { code: "ECONNREFUSED" }))).toBeUndefined();
    expect(grpcCode(undefined)).toBeUndefined();
    expect(grpcCode("5")).toBeUndefined();
    expect(grpcDetails({ details: 3 })).toBeUndefined();
  });
});
