import type { Message, Topic } from "@google-cloud/pubsub";
import type { SubscriptionContract } from "../contract.js";
import { Code, ProtoeventsError } from "../errors.js";
import type { Logger } from "../logger.js";
import { deadLetterAttributes } from "./dead-letter-protocol.js";
import { settle } from "./settle.js";

/** The parts of a received message dead-lettering reads and settles. */
export type DeadLetterMessage = Pick<
  Message,
  | "data"
  | "attributes"
  | "orderingKey"
  | "deliveryAttempt"
  | "id"
  | "ack"
  | "nack"
  | "ackWithResponse"
  | "nackWithResponse"
>;

/** Where dead letters are published: a topic handle per dead-letter topic name. */
export type DeadLetterTopicFor = (name: string) => Pick<Topic, "publishMessage">;

/** Sends permanent failures to their subscription's dead-letter topic. */
export interface DeadLetterPublisher {
  /**
   * Publish the message, with the dead-letter attributes, to the
   * subscription's dead-letter topic and ack it once Pub/Sub accepted it.
   * Nack it instead when the publish failed (the next delivery tries again)
   * or when the subscription has no dead-letter topic (never ack what could
   * not be processed). Logs either way; never throws.
   */
  deadLetter(
    subscription: SubscriptionContract,
    message: DeadLetterMessage,
    error: ProtoeventsError,
  ): Promise<"dead-lettered" | "nacked">;
}

/** A dead-letter publisher on `topicFor`'s topics, logging to `log`. */
export function createDeadLetterPublisher(
  topicFor: DeadLetterTopicFor,
  log: Logger,
): DeadLetterPublisher {
  return {
    async deadLetter(sub, message, error) {
      const fields = {
        op: "dead-letter",
        subscription: sub.name,
        eventId: message.attributes["ce-id"],
        eventType: message.attributes["ce-type"],
        subject: message.attributes["ce-subject"],
        reason: error.code,
        deliveryAttempt: message.deliveryAttempt,
      };
      if (sub.deadLetter === undefined) {
        // Never ack what could not be processed: without a dead-letter topic the
        // message is redelivered until it expires, and every attempt is logged.
        log.error(
          { ...fields, err: error },
          "permanent failure on a subscription without dead-lettering; nacked",
        );
        message.nack();
        return "nacked";
      }
      try {
        await topicFor(sub.deadLetter.topic).publishMessage({
          data: message.data,
          attributes: deadLetterAttributes(message, error, sub.name),
        });
      } catch (cause) {
        // Not in the dead-letter topic, so it must not be acked: nack and let
        // the next delivery try again.
        log.error(
          { ...fields, err: ProtoeventsError.from(cause, Code.PublishFailed) },
          "could not publish to the dead-letter topic; nacked",
        );
        message.nack();
        return "nacked";
      }
      await settle(message, "ack", sub.exactlyOnceDelivery === true, log, fields);
      log.warn(
        { ...fields, detail: error.rawMessage, deadLetterTopic: sub.deadLetter.topic },
        "dead-lettered",
      );
      return "dead-lettered";
    },
  };
}
