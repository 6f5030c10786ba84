/**
 * Poison messages: what a raw client, not a generated producer, can put on a
 * topic that no consumer can ever process. Each must reach the dead-letter
 * topic of every subscription of its topic at once, with its reason.
 */
import { create, type DescMessage } from "@bufbuild/protobuf";
import type { EventContract } from "../../runtime/src/contract.js";
import { encodeEvent } from "../../runtime/src/envelope.js";
import type { PoisonKind } from "./schedule.js";

/** A message as published: payload and attributes, no ordering key. */
export interface PoisonMessage {
  readonly data: Buffer;
  readonly attributes: Record<string, string>;
}

/** The `ce-type` of the unknown-type poison: no contract has it. */
export const UNKNOWN_EVENT_TYPE = "checkout.v1.ChaosUnknownEvent";

/**
 * A tag of field number 2^32 - 1 with wire type 7, which does not exist: no
 * protobuf message decodes bytes that start with it.
 */
const UNDECODABLE_PREFIX = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]);

/**
 * The poison message `kind` for the event published on a topic, with `id` as
 * its `ce-id`:
 *
 * - `garbage-bytes`: a correct envelope over bytes that are not the payload
 *   (`decode_failed`);
 * - `unknown-type`: a correct payload whose `ce-type` no contract knows
 *   (`unknown_event_type`);
 * - `broken-rule`: an empty event, which breaks its required-field rules
 *   (`validation_failed`).
 *
 * @throws Error when the empty event breaks no rule (it would not be poison).
 */
export function poisonMessage(
  kind: PoisonKind,
  contract: EventContract<DescMessage>,
  id: string,
  random: () => number,
): PoisonMessage {
  const empty = create(contract.schema, {});
  const envelope = encodeEvent(contract, empty, { id, source: "chaos" });
  const attributes = { ...envelope.attributes };
  switch (kind) {
    case "garbage-bytes": {
      const noise = Buffer.from(Array.from({ length: 16 }, () => Math.floor(random() * 256)));
      return { data: Buffer.concat([UNDECODABLE_PREFIX, noise]), attributes };
    }
    case "unknown-type":
      return {
        data: Buffer.from(envelope.data),
        attributes: { ...attributes, "ce-type": UNKNOWN_EVENT_TYPE },
      };
    case "broken-rule": {
      if (contract.validate(empty).length === 0) {
        throw new Error(`an empty ${contract.type} breaks no field rule; it cannot be poison`);
      }
      return { data: Buffer.from(envelope.data), attributes };
    }
  }
}
