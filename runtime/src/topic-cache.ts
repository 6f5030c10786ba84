import type { Topic } from "@google-cloud/pubsub";

/** The publish options a cached topic is created with. */
export interface TopicOptions {
  readonly batching?: {
    readonly maxMessages?: number;
    readonly maxMilliseconds?: number;
    readonly maxBytes?: number;
  };
  readonly messageOrdering?: boolean;
}

/**
 * Pub/Sub `Topic` handles, one per topic name and options. A handle owns a
 * publish queue (batching, and per ordering key a paused state after a
 * failed publish), so everything published with the same settings must go
 * through the same handle, and a flush must reach every handle made.
 */
export interface TopicCache<T = Topic> {
  /** The handle for `name` with these options, created on first use. */
  topic(name: string, options?: TopicOptions): T;
  /**
   * Send every batched message of every handle and wait for all the
   * answers; rejects with the first failure once every handle answered.
   */
  flush(): Promise<void>;
}

/** A topic cache on a Pub/Sub client (or, in unit tests, a fake with fake topics). */
export function createTopicCache<T extends Pick<Topic, "flush"> = Topic>(pubsub: {
  topic(name: string, options?: TopicOptions): T;
}): TopicCache<T> {
  const topics = new Map<string, T>();
  return {
    topic(name: string, options: TopicOptions = {}): T {
      const key = topicKey(name, options);
      let topic = topics.get(key);
      if (topic === undefined) {
        topic = pubsub.topic(name, options);
        topics.set(key, topic);
      }
      return topic;
    },
    async flush(): Promise<void> {
      const results = await Promise.allSettled([...topics.values()].map((topic) => topic.flush()));
      const failed = results.find((result) => result.status === "rejected");
      if (failed !== undefined) {
        throw failed.reason;
      }
    },
  };
}

/**
 * The cache key of a topic with its options: the name and the options in a
 * fixed order, so that equal options written in another order share a
 * handle. A plain join, not JSON: the publisher computes it per event. A
 * topic id cannot contain NUL.
 */
export function topicKey(name: string, options: TopicOptions): string {
  const batching = options.batching;
  return batching === undefined
    ? `${name}\u0000${options.messageOrdering === true}`
    : `${name}\u0000${options.messageOrdering === true}\u0000${batching.maxMessages}\u0000${batching.maxMilliseconds}\u0000${batching.maxBytes}`;
}
