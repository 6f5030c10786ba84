import type { Message } from "@google-cloud/pubsub";
import { Code, ProtoeventsError } from "../errors.js";
import type { Logger } from "../logger.js";

/**
 * Ack or nack a message. With exactly-once delivery, wait for Pub/Sub's
 * answer (the client retries what is transient) and log a refusal: an ack
 * Pub/Sub did not confirm means the event comes back, and the inbox
 * recognises it. Resolves whether Pub/Sub confirmed (always true without
 * exactly-once delivery, where there is no answer to wait for).
 *
 * @internal Exported for unit tests.
 */
export async function settle(
  message: Pick<Message, "ack" | "nack" | "ackWithResponse" | "nackWithResponse" | "id">,
  how: "ack" | "nack",
  exactlyOnce: boolean,
  log: Logger,
  fields: Readonly<Record<string, unknown>>,
): Promise<boolean> {
  if (!exactlyOnce) {
    if (how === "ack") {
      message.ack();
    } else {
      message.nack();
    }
    return true;
  }
  try {
    await (how === "ack" ? message.ackWithResponse() : message.nackWithResponse());
    return true;
  } catch (error) {
    const errorCode = (error as { errorCode?: unknown }).errorCode;
    log.warn(
      {
        ...fields,
        op: how,
        messageId: message.id,
        ackError: typeof errorCode === "string" ? errorCode : undefined,
        err: ProtoeventsError.from(error, Code.PubSubUnavailable),
      },
      how === "ack"
        ? "Pub/Sub did not confirm the ack (exactly-once delivery): the event will come back, and the inbox recognises it"
        : "Pub/Sub did not confirm the nack (exactly-once delivery): the event comes back after its ack deadline instead",
    );
    return false;
  }
}
