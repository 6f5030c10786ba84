import { describe, expect, it } from "vitest";
import { CompatRule, type Direction } from "../../codegen/src/compat/compare-contracts.js";
import { GoldenRule } from "../../codegen/src/compat/golden-check.js";
import { modeRefuses, refused, rolloutOrder } from "../../codegen/src/compat/modes.js";
import { COMPATIBILITY_MODES, type CompatibilityMode } from "../../codegen/src/options.js";

/**
 * The table of rules × modes docs/compatibility.md states. compare-contracts.test.ts
 * and gate.test.ts prove which direction each rule reports; this proves
 * what each mode does with each direction, for every rule.
 */
const RULE_DIRECTIONS: ReadonlyArray<readonly [string, Direction | undefined]> = [
  [CompatRule.fieldRuleNarrowed, "backward"],
  [CompatRule.newFieldRequired, "backward"],
  [CompatRule.maxBytesLowered, "backward"],
  [CompatRule.fieldRuleLoosened, "forward"],
  [CompatRule.requiredFieldRemoved, "forward"],
  [CompatRule.maxBytesRaised, "forward"],
  [`${GoldenRule.unreadable} (a release's payload)`, "backward"],
  [`${GoldenRule.refused} (a release's payload)`, "backward"],
  [`${GoldenRule.unreadable} (today's sample)`, "forward"],
  [`${GoldenRule.refused} (today's sample)`, "forward"],
  [CompatRule.eventTopicChanged, "both"],
  [CompatRule.eventTypeChanged, "both"],
  [CompatRule.orderingKeyChanged, "both"],
  [CompatRule.subjectChanged, "both"],
  [CompatRule.eventRemovedWhileConsumed, "both"],
  [GoldenRule.changed, "both"],
  ["buf breaking on an event's messages", "both"],
  [CompatRule.subscriptionRenamed, undefined],
  [CompatRule.consumerRemoved, undefined],
  [CompatRule.consumerEventChanged, undefined],
  [CompatRule.deadLetterDisabled, undefined],
  [CompatRule.subscriptionFilterChanged, undefined],
  [CompatRule.subscriptionOrderingChanged, undefined],
];

/** The table in docs/compatibility.md: which modes refuse a direction. */
const EXPECTED: Record<string, readonly CompatibilityMode[]> = {
  backward: ["BACKWARD", "BACKWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE"],
  forward: ["FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE"],
  both: COMPATIBILITY_MODES,
  none: COMPATIBILITY_MODES,
};

describe("compatibility modes", () => {
  it.each(RULE_DIRECTIONS)(
    "should refuse %s in exactly the modes that check its direction, against the newest release",
    (_, direction) => {
      const finding = { direction, events: ["shop.v1.OrderPlaced"], newest: true };
      const refusing = COMPATIBILITY_MODES.filter((mode) => refused(finding, () => mode));
      expect(refusing).toEqual(EXPECTED[direction ?? "none"]);
      // Every one-way change has a mode that allows it, and that mode names the deploy order.
      if (direction === "backward" || direction === "forward") {
        expect(COMPATIBILITY_MODES.filter((m) => !refusing.includes(m)).length).toBe(2);
        expect(rolloutOrder(direction)).toMatch(/^deploy (producers|consumers) first/);
      }
    },
  );

  it.each(RULE_DIRECTIONS)(
    "should refuse %s against an older release only in a transitive mode (or always, for rules without a direction)",
    (_, direction) => {
      const finding = { direction, events: ["shop.v1.OrderPlaced"], newest: false };
      const refusing = COMPATIBILITY_MODES.filter((mode) => modeRefuses(mode, finding));
      expect(refusing).toEqual(
        direction === undefined
          ? COMPATIBILITY_MODES
          : EXPECTED[direction]?.filter((m) => m.endsWith("_TRANSITIVE")),
      );
    },
  );

  it("should refuse a finding about several events when any one of their modes refuses it", () => {
    const finding = {
      direction: "forward" as const,
      events: ["shop.v1.A", "shop.v1.B"],
      newest: true,
    };
    const modes: Record<string, CompatibilityMode> = {
      "shop.v1.A": "BACKWARD",
      "shop.v1.B": "BACKWARD",
    };
    expect(refused(finding, (e) => modes[e])).toBe(false);
    modes["shop.v1.B"] = "FULL";
    expect(refused(finding, (e) => modes[e])).toBe(true);
    // An event without a known mode takes the default, FULL_TRANSITIVE.
    expect(refused({ ...finding, events: ["shop.v1.Gone"] }, () => undefined)).toBe(true);
  });
});
