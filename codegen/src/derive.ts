/**
 * What a contract derives rather than states: the one place codegen, the
 * compatibility gate and releases compute a subscription's id and the filter
 * provisioning gives it, so the two can never disagree.
 */

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
