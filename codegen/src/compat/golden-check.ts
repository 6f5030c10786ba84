/**
 * Golden payloads both ways. Backward: the release's stored golden payloads
 * (and its edge samples) are decoded with today's schema and checked with
 * today's field rules, as today's consumers would. Forward: today's samples
 * are encoded as today's producers publish them, decoded with the release's
 * schema and checked with the release's rules, as the release's consumers
 * would.
 */
import {
  type DescField,
  type DescMessage,
  type Message,
  toBinary,
  toJsonString,
} from "@bufbuild/protobuf";
import { locate, type SourceLocation } from "../location.js";
import { checkRules, type RuleViolation } from "../release/check-rules.js";
import { compareGolden, decodeGolden, type GoldenPayloads, readGolden } from "../release/golden.js";
import { goldenSample, type SampleVariant } from "../release/golden-sample.js";
import { type ReleaseRef, readReleaseManifest } from "../release/releases.js";
import type { GateFinding } from "./check.js";
import { type Direction, nextVersionName, rolloutFix } from "./compare-contracts.js";
import { type ContractSnapshot, consumersReaching, producersAcross } from "./contract-snapshot.js";

/** Rule ids of the golden-payload checks. */
export const GoldenRule = {
  /** A payload of one side no longer decodes with the other side's schema. */
  unreadable: "golden-payload-unreadable",
  /** A field of a release's golden payload that still exists reads another value today. */
  changed: "golden-payload-changed",
  /** A payload of one side decodes, but the other side's field rules refuse it. */
  refused: "golden-payload-refused",
} as const;

const VARIANTS: readonly SampleVariant[] = ["typical", "upper", "lower"];

const VARIANT_LABEL: Record<SampleVariant, string> = {
  typical: "golden sample",
  upper: "upper-edge sample (every value at its maximum)",
  lower: "lower-edge sample (only what the rules require)",
};

function fieldName(field: DescField): string {
  return `${field.parent.typeName}.${field.name}`;
}

/** A sample encoded in both encodings; undefined when the contract has no sample (a pattern without example). */
function encodeSample(desc: DescMessage, variant: SampleVariant): GoldenPayloads | undefined {
  let sample: Message;
  try {
    sample = goldenSample(desc, variant);
  } catch {
    return undefined;
  }
  return { binary: toBinary(desc, sample), json: toJsonString(desc, sample) };
}

/** One check's verdicts, gathered per field so a rule breaking in several samples is one finding. */
class Refusals {
  private readonly byField = new Map<
    string,
    { field: DescField; rules: Set<string>; paths: Set<string>; samples: Set<string> }
  >();

  add(violations: readonly RuleViolation[], sample: string): void {
    for (const v of violations) {
      const key = fieldName(v.field);
      const entry = this.byField.get(key) ?? {
        field: v.field,
        rules: new Set<string>(),
        paths: new Set<string>(),
        samples: new Set<string>(),
      };
      entry.rules.add(v.rule);
      entry.paths.add(v.path);
      entry.samples.add(sample);
      this.byField.set(key, entry);
    }
  }

  entries() {
    return [...this.byField.entries()];
  }
}

/** What the gate already reported per direction and field: golden refusals of the same field add nothing. */
export type CoveredFields = ReadonlySet<string>;

/** The key of {@link CoveredFields}. */
export function coveredKey(direction: Direction, field: string): string {
  return `${direction}\u0000${field}`;
}

/**
 * Check a release's golden payloads against today's contracts and today's
 * samples against the release's, as described in the module's comment.
 */
export async function checkGolden(
  release: ReleaseRef,
  releaseSnapshot: ContractSnapshot,
  today: ContractSnapshot,
  covered: CoveredFields,
): Promise<{ findings: GateFinding[]; payloads: number }> {
  const manifest = await readReleaseManifest(release);
  const findings: GateFinding[] = [];
  let payloads = 0;
  for (const event of manifest.events) {
    const releaseDesc = releaseSnapshot.messages.get(event.name);
    const todayDesc = today.messages.get(event.name);
    if (releaseDesc === undefined || todayDesc === undefined) {
      // Gone today: event-removed-while-consumed says whether that matters.
      continue;
    }
    const concerned = {
      consumers: consumersReaching([today, releaseSnapshot], event.name),
      producers: producersAcross([releaseSnapshot, today], [event.name]),
      events: [event.name],
      releases: [release.version],
      source: "protoevents" as const,
    };
    const next = nextVersionName(event.name);
    const at = (desc: DescMessage | DescField) => locate(desc, [], today.pathPrefix);

    // Backward: the release's stored payloads, read as today's consumers read them.
    const golden = await readGolden(release, event);
    const mismatches = new Map<
      string,
      { detail: string; at: SourceLocation; encodings: string[] }
    >();
    const backward = new Refusals();
    for (const encoding of ["binary", "json"] as const) {
      payloads++;
      const wire = encoding === event.encoding;
      const label = `${encoding === "binary" ? "binary" : "JSON"} payload`;
      let released: Message;
      let decoded: Message;
      try {
        released = decodeGolden(releaseDesc, golden, encoding, { strict: false });
        decoded = decodeGolden(todayDesc, golden, encoding, { strict: wire });
      } catch (cause) {
        findings.push({
          rule: GoldenRule.unreadable,
          message: `the release's golden ${label} of ${event.name}${wire ? " (the encoding its producers publish)" : ""} no longer decodes with today's schema: ${(cause as Error).message}`,
          fix: `restore the field types, numbers and names the release had${wire && encoding === "json" ? " (a JSON consumer refuses fields it does not know: keep removed fields until no event in flight carries them)" : ""}; for an intentional change add a new event ${next} and publish both during migration${wire ? `; ${rolloutFix("backward", [event.name])}` : ""}`,
          location: at(todayDesc),
          locationIn: "today",
          direction: wire ? "backward" : "both",
          ...concerned,
        });
        continue;
      }
      for (const m of compareGolden(releaseDesc, released, todayDesc, decoded)) {
        const entry = mismatches.get(m.path) ?? {
          detail: m.detail,
          at: at(m.field),
          encodings: [],
        };
        entry.encodings.push(encoding === "binary" ? "binary" : "JSON");
        mismatches.set(m.path, entry);
      }
      if (wire) {
        backward.add(checkRules(todayDesc, decoded), "the golden payload");
      }
    }
    for (const [path, m] of mismatches) {
      findings.push({
        rule: GoldenRule.changed,
        message: `today's ${event.name} reads field ${path} of the release's golden ${m.encodings.join(" and ")} payload differently: ${m.detail}`,
        fix: `keep the field's number, type and name as the release had them; carry new data in a new field (or a new event ${next})`,
        location: m.at,
        locationIn: "today",
        direction: "both",
        ...concerned,
      });
    }
    // The release's edge samples, in the encoding its producers published.
    for (const variant of VARIANTS.slice(1)) {
      const payload = encodeSample(releaseDesc, variant);
      if (payload === undefined) {
        continue;
      }
      payloads++;
      try {
        const decoded = decodeGolden(todayDesc, payload, event.encoding, { strict: true });
        backward.add(checkRules(todayDesc, decoded), `the release's ${VARIANT_LABEL[variant]}`);
      } catch {
        // The stored payloads' decoding already reported an unreadable schema.
      }
    }
    for (const [name, r] of backward.entries()) {
      if (covered.has(coveredKey("backward", name))) {
        continue;
      }
      findings.push({
        rule: GoldenRule.refused,
        message: `today's rules refuse what the release's producers published: ${[...r.paths].join(", ")} of ${event.name} breaks ${[...r.rules].join(", ")} in ${[...r.samples].join(" and ")} (validation_failed, dead-lettered)`,
        fix: `accept the release's values again on ${r.field.name} (today's rules must allow everything the release's rules allowed); ${rolloutFix("backward", [event.name])}`,
        location: at(r.field),
        locationIn: "today",
        direction: "backward",
        field: name,
        ...concerned,
      });
    }

    // Forward: today's samples, published as today's producers publish them, read by the release's consumers.
    const todayEvent = today.events.get(event.name);
    const encoding = todayEvent?.encoding ?? event.encoding;
    const forward = new Refusals();
    for (const variant of VARIANTS) {
      const payload = encodeSample(todayDesc, variant);
      if (payload === undefined) {
        continue;
      }
      payloads++;
      let decoded: Message;
      try {
        decoded = decodeGolden(releaseDesc, payload, encoding, { strict: true });
      } catch (cause) {
        findings.push({
          rule: GoldenRule.unreadable,
          message: `today's ${VARIANT_LABEL[variant]} of ${event.name}, as its producers publish it (${encoding === "json" ? "JSON" : "binary"}), does not decode with the release's schema: ${(cause as Error).message}; the release's consumers refuse it (decode_failed, dead-lettered)`,
          fix: `${encoding === "json" ? "a JSON consumer refuses fields it does not know: " : ""}keep today's payload readable by the release (no new field in a JSON event, no changed type), or add a new event ${next} and publish both during migration; ${rolloutFix("forward", [event.name])}`,
          location: at(todayDesc),
          locationIn: "today",
          direction: "forward",
          ...concerned,
        });
        break;
      }
      forward.add(checkRules(releaseDesc, decoded), `today's ${VARIANT_LABEL[variant]}`);
    }
    for (const [name, r] of forward.entries()) {
      if (covered.has(coveredKey("forward", name))) {
        continue;
      }
      const counterpart =
        todayDesc.typeName === r.field.parent.typeName
          ? todayDesc
          : today.messages.get(r.field.parent.typeName);
      const now = counterpart?.fields.find((f) => f.number === r.field.number);
      findings.push({
        rule: GoldenRule.refused,
        message: `the release's rules refuse what today's producers may publish: ${[...r.paths].join(", ")} of ${event.name} breaks the release's ${[...r.rules].join(", ")} in ${[...r.samples].join(" and ")} (validation_failed, dead-lettered)`,
        fix: `keep ${r.field.name} within the release's rules until every consumer runs today's contract; ${rolloutFix("forward", [event.name])}`,
        location:
          now !== undefined ? at(now) : counterpart !== undefined ? at(counterpart) : at(todayDesc),
        locationIn: "today",
        direction: "forward",
        field: name,
        ...concerned,
      });
    }
  }
  return { findings, payloads };
}
