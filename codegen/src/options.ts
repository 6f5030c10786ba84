/**
 * The only module that reads protoevents' custom options. Everything else
 * asks these predicates and never touches the raw option messages.
 */
import {
  type DescField,
  type DescMessage,
  type DescMethod,
  type DescService,
  getOption,
  hasOption,
} from "@bufbuild/protobuf";
import {
  type ApplicationOptions,
  application,
  type EventOptions,
  event,
  type FieldRules,
  rules,
  type SubscriptionOptions,
  subscription,
} from "./gen/protoevents/v1/options_pb.js";

export type { ApplicationOptions, EventOptions, FieldRules, SubscriptionOptions };

/** Whether the message is an event (has the `(protoevents.v1.event)` option). */
export function isEvent(message: DescMessage): boolean {
  return hasOption(message, event);
}

/** The event option of a message, or undefined when it is not an event. */
export function getEventOptions(message: DescMessage): EventOptions | undefined {
  return hasOption(message, event) ? getOption(message, event) : undefined;
}

/** The application option of a service, or undefined when it is not an application. */
export function getApplicationOptions(service: DescService): ApplicationOptions | undefined {
  return hasOption(service, application) ? getOption(service, application) : undefined;
}

/** Whether the rpc sets the subscription option. */
export function hasSubscriptionOptions(method: DescMethod): boolean {
  return hasOption(method, subscription);
}

/** The subscription option of an rpc; all defaults when it is not set. */
export function getSubscriptionOptions(method: DescMethod): SubscriptionOptions {
  return getOption(method, subscription);
}

/** The field rules of a field, or undefined when it has none. */
export function getFieldRules(field: DescField): FieldRules | undefined {
  return hasOption(field, rules) ? getOption(field, rules) : undefined;
}

/** Extension field numbers, for locating an option in the source. */
export const OptionNumber = {
  event: event.number,
  application: application.number,
  subscription: subscription.number,
  rules: rules.number,
} as const;
