/**
 * What the emitters need to know about messages before they print any:
 * which get a validator, an Input type and a Valid type. The answer depends
 * on the messages a message reaches, in any file of the request, so one
 * analysis serves every generated file of a request.
 *
 * Messages are listed with protobuf-es's `nestedTypes`, once per request.
 * The sets grow backwards from the fields that make a message qualify, along
 * the fields that hold it; {@link reachedFields} follows references forwards,
 * for what an event contains.
 */
import type { DescField, DescFile, DescMessage } from "@bufbuild/protobuf";
import { nestedTypes } from "@bufbuild/protobuf/reflect";
import type { Schema } from "@bufbuild/protoplugin";
import type { ContractModel } from "../model.js";
import type { FieldRules } from "../options.js";
import { isExplicitScalar } from "../scalars.js";

/** Which messages need a validator, an Input type and a Valid type. */
export interface Analysis {
  readonly validated: ReadonlySet<DescMessage>;
  readonly withInput: ReadonlySet<DescMessage>;
  readonly withValid: ReadonlySet<DescMessage>;
}

/** The messages of a file that can get code, nested ones after their parent: map entries are not among them. */
export function messagesOf(file: DescFile): DescMessage[] {
  return [...nestedTypes(file)].filter(
    (desc): desc is DescMessage => desc.kind === "message" && !desc.proto.options?.mapEntry,
  );
}

/**
 * Every field of `root` and of each message it reaches, depth first in
 * declaration order: the fields of `a`'s message come before the field after
 * `a`. Each message is visited once, so recursive messages end, and a stack
 * rather than recursion keeps each step constant however deep they nest.
 */
export function* reachedFields(root: DescMessage): Generator<DescField> {
  const seen = new Set([root]);
  const stack = [{ fields: root.fields, next: 0 }];
  for (let top = stack.at(-1); top !== undefined; top = stack.at(-1)) {
    const field = top.fields[top.next++];
    if (field === undefined) {
      stack.pop();
      continue;
    }
    yield field;
    const sub = field.message;
    if (sub !== undefined && !seen.has(sub)) {
      seen.add(sub);
      stack.push({ fields: sub.fields, next: 0 });
    }
  }
}

/** Whether a rule set checks anything (pii alone does not). */
export function checksSomething(r: FieldRules): boolean {
  return r.required || r.minItems !== undefined || r.maxItems !== undefined || checksValue(r);
}

/** Whether a rule set checks the value itself: lengths, pattern or range (for lists: each item). */
export function checksValue(r: FieldRules): boolean {
  return (
    r.minLen !== undefined ||
    r.maxLen !== undefined ||
    r.pattern !== "" ||
    r.min !== undefined ||
    r.max !== undefined
  );
}

/** Decide which messages get validators and types. */
export function analyse(schema: Schema, model: ContractModel): Analysis {
  const all = schema.allFiles.flatMap(messagesOf);
  // The fields that hold each message: a set grows from a message to its holders.
  const holders = new Map<DescMessage, DescField[]>();
  for (const message of all) {
    for (const field of message.fields) {
      if (field.message !== undefined) {
        const fields = holders.get(field.message);
        if (fields === undefined) {
          holders.set(field.message, [field]);
        } else {
          fields.push(field);
        }
      }
    }
  }
  /**
   * The messages with a field `seed` accepts, and those that hold one of
   * them in a field `through` accepts, and so on: each message is added once
   * and its holders looked at once.
   */
  const reaching = (
    seed: (field: DescField) => boolean,
    through: (field: DescField) => boolean = () => true,
  ): Set<DescMessage> => {
    const set = new Set(all.filter((message) => message.fields.some(seed)));
    // A Set's iteration also visits what is added during it.
    for (const message of set) {
      for (const field of holders.get(message) ?? []) {
        if (through(field)) {
          set.add(field.parent);
        }
      }
    }
    return set;
  };
  const rulesOf = (f: DescField) => model.rules.get(f);
  const checked = (f: DescField) => {
    const r = rulesOf(f);
    return r !== undefined && checksSomething(r);
  };
  const requiredOutsideOneof = (f: DescField) =>
    f.oneof === undefined && f.fieldKind !== "map" && rulesOf(f)?.required === true;
  // An Input or a Valid type changes a field's type: not possible inside a oneof or a map.
  const typed = (f: DescField) => f.oneof === undefined && f.fieldKind !== "map";
  const validated = reaching(checked);
  const withInput = reaching(requiredOutsideOneof, typed);
  const withValid = reaching(
    (f) => requiredOutsideOneof(f) && (f.fieldKind === "message" || isExplicitScalar(f)),
    typed,
  );
  // Only messages of files we generate can get code; events always get a validator.
  for (const event of model.events.values()) {
    validated.add(event.desc);
  }
  return { validated, withInput, withValid };
}
