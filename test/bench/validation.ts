/**
 * Validation of adversarial values: what one crafted event costs a consumer.
 *
 * - `validate-adversarial`: the generated `validateOrderPlaced` on an order
 *   whose e-mail is 20,000 characters shaped to make the contract's pattern
 *   (`^[^@\s]+@[^@\s]+\.[^@\s]+$`) backtrack, against what the validator did
 *   before: the max_len check, then that pattern in V8 anyway.
 * - `pattern-linear-adversarial`: a pattern no rewrite makes safe
 *   (`^(.*),(.*)$`), matched by the runtime's linear-time engine as generated
 *   code does, against V8's RegExp, on 20,000 commas and a line break.
 *
 * Both sides alternate within each round: the slow side once, the fast side
 * averaged over 200 calls; a round's ratio compares the two.
 */
import { create } from "@bufbuild/protobuf";
import { planPattern } from "../../codegen/src/pattern.js";
import { OrderPlacedSchema } from "../../generated/checkout/v1/order_events_pb.js";
import { OrderPlacedEvent } from "../../generated/checkout/v1/order_events_pe.js";
import { linearPattern } from "../../runtime/src/pattern.js";
import { codePointLength } from "../../runtime/src/text.js";
import { validOrderPlaced } from "../helpers/orders.js";
import { type BenchResult, pairedRounds, summarise } from "./report.js";

const LENGTH = 20_000;
const EMAIL_PATTERN = "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$";
const EMAIL_MAX_LEN = 254;

/** Milliseconds per call, over `calls` calls. */
function time(work: () => boolean, calls: number): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) {
    if (!work()) {
      throw new Error("the benchmark's value was not judged as expected");
    }
  }
  return Number(process.hrtime.bigint() - start) / 1e6 / calls;
}

/** Calls per round of the fast side: one call takes well under a millisecond, below the timer's noise. */
const FAST_CALLS = 200;

async function alternate(
  rounds: number,
  maxRounds: number,
  ours: () => boolean,
  theirs: () => boolean,
): Promise<{ measured: number[]; baseline: number[] }> {
  time(ours, FAST_CALLS);
  time(theirs, 1);
  const measured: number[] = [];
  const baseline: number[] = [];
  await pairedRounds(
    { min: rounds, max: maxRounds, better: "lower" },
    measured,
    baseline,
    (round) => {
      if (round % 2 === 0) {
        measured.push(time(ours, FAST_CALLS));
        baseline.push(time(theirs, 1));
      } else {
        baseline.push(time(theirs, 1));
        measured.push(time(ours, FAST_CALLS));
      }
    },
  );
  return { measured, baseline };
}

export async function benchValidation(rounds: number, maxRounds: number): Promise<BenchResult[]> {
  const email = `a@${".".repeat(LENGTH)} `;
  const order = create(OrderPlacedSchema, { ...validOrderPlaced(), customerEmail: email });
  const written = new RegExp(EMAIL_PATTERN, "u");
  const validate = await alternate(
    rounds,
    maxRounds,
    () => OrderPlacedEvent.validate(order).length === 1,
    // The validator before: the length rule, then the pattern regardless.
    () => codePointLength(email) > EMAIL_MAX_LEN === !written.test(email),
  );

  const pattern = "^(.*),(.*)$";
  const plan = planPattern(pattern);
  if (plan.engine !== "linear") {
    throw new Error(`${pattern} is expected to need the linear engine, got ${plan.engine}`);
  }
  const linear = linearPattern(plan.source);
  const backtracking = new RegExp(pattern, "u");
  const commas = `${",".repeat(LENGTH)}\n`;
  const match = await alternate(
    rounds,
    maxRounds,
    () => !linear.test(commas),
    () => !backtracking.test(commas),
  );

  return [
    summarise(
      "validate-adversarial",
      "ms",
      "lower",
      validate.measured,
      validate.baseline,
      `validateOrderPlaced with a ${LENGTH}-character e-mail crafted for ${EMAIL_PATTERN}, against max_len plus that pattern in V8 (the validator before the pattern analysis)`,
    ),
    summarise(
      "pattern-linear-adversarial",
      "ms",
      "lower",
      match.measured,
      match.baseline,
      `${pattern} on ${LENGTH} commas and a line break: the runtime's linear-time engine against V8's RegExp`,
    ),
  ];
}
