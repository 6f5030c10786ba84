/**
 * What a contract derives rather than states: the one place that computes a
 * subscription's id, the filter provisioning gives it, its dead-letter
 * topic, an event's `ce-type` and `content-type`, and the names generated
 * handler code uses. `readContracts` calls these once and puts the results
 * in the contract model; codegen, the compatibility gate, releases, the
 * catalog, sync and (through the generated registry) provisioning read them
 * from there, so none of them can disagree.
 */

/** Suffix of a subscription's dead-letter topic id and of the id of the subscription that keeps its dead letters. */
export const DEAD_LETTER_SUFFIX = ".dead-letter";

/** Where a subscription's dead letters go. */
export interface DeadLetterIds {
  /** Id of the subscription's own dead-letter topic. */
  readonly topic: string;
  /** Id of the subscription on that topic that keeps the dead letters for inspection and replay. */
  readonly subscription: string;
}

/** `ChargeOrder` → `charge-order`; `HTTPServer` → `http-server`. */
export function kebab(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, "$1-$2")
    .replace(/([A-Z])([A-Z][a-z])/g, "$1-$2")
    .replace(/_/g, "-")
    .toLowerCase();
}

/** A consumer rpc's subscription id: the `name` option, else `<application>.<rpc in kebab-case>`. */
export function subscriptionId(application: string, rpc: string, name: string): string {
  return name === "" ? `${application}.${kebab(rpc)}` : name;
}

/** The dead-letter topic of a subscription and the subscription on it: both `<subscription id>.dead-letter`. */
export function deadLetterIds(subscription: string): DeadLetterIds {
  const id = `${subscription}${DEAD_LETTER_SUFFIX}`;
  return { topic: id, subscription: id };
}

/**
 * The filter provisioning gives a subscription: the contract's own filter,
 * and, when other events share the event's topic, a clause that keeps only
 * the event's `ce-type`.
 */
export function subscriptionFilter(own: string, eventType: string, topicShared: boolean): string {
  const typeFilter = topicShared ? `attributes."ce-type" = "${eventType}"` : "";
  if (own === "") {
    return typeFilter;
  }
  return typeFilter === "" ? own : `(${own}) AND ${typeFilter}`;
}

/** An event's CloudEvents type (`ce-type`): the `type` option, else the message's full name. */
export function eventType(messageTypeName: string, declared: string): string {
  return declared === "" ? messageTypeName : declared;
}

/**
 * The `content-type` attribute of an event's messages. The runtime writes it
 * from its own table (`ContentType` in runtime/src/envelope.ts);
 * test/codegen/contract-agreement.test.ts holds the two together.
 */
export function contentType(encoding: "binary" | "json"): string {
  return encoding === "json" ? "application/json" : "application/protobuf";
}
