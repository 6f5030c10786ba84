/**
 * Prints a message's validator: `validateX`, the public function, and
 * `checkX`, the checks behind it, which appends violations to an array it
 * allocates on the first one and calls the checkers of the messages the
 * fields hold, in this file or another.
 *
 * This file decides how each kind of field is checked: singular, oneof
 * member, list, map, or message. The checks on a single value are in
 * value-checks.ts.
 */
import type { DescField, DescMessage } from "@bufbuild/protobuf";
import type { Printable } from "@bufbuild/protoplugin";
import type { FieldRules } from "../options.js";
import { checksSomething, checksValue } from "./analysis.js";
import type { FileContext } from "./context.js";
import { CheckerBody, valueChecks } from "./value-checks.js";

/** Print `validateX` and `checkX` for a message. */
export function emitValidator(ctx: FileContext, message: DescMessage): void {
  const { f } = ctx;
  const names = ctx.names.message(message);
  const body = new CheckerBody();
  for (const field of message.fields) {
    fieldChecks(ctx, body, field);
  }
  for (const [constant, init] of body.patterns) {
    f.print("const ", constant, " = /*@__PURE__*/ ", init, ";");
    f.print();
  }
  const violation = ctx.rt("FieldViolation", true);
  const shape = f.importShape(message);
  f.print(
    f.jsDoc(
      `Check the field rules of ${message.typeName}, also inside the messages it contains. Returns every violation, each with its field path in proto names (\`items[1].quantity\`); empty means valid.`,
    ),
  );
  f.print(f.export("function", names.validator), "(m: ", shape, "): readonly ", violation, "[] {");
  f.print(`  return ${names.checker}(m, "", undefined) ?? `, ctx.rt("NO_VIOLATIONS"), ";");
  f.print("}");
  f.print();
  f.print(
    f.jsDoc(
      `The checks behind {@link ${names.validator}}: appends violations under \`path\` to \`out\`, allocating it on the first one, and returns it.\n\n@internal`,
    ),
  );
  f.print(
    f.export("function", names.checker),
    "(m: ",
    shape,
    ", path: string, out: ",
    violation,
    "[] | undefined): ",
    violation,
    "[] | undefined {",
  );
  if (body.lines.length === 0) {
    f.print("  void m;");
    f.print("  void path;");
  }
  for (const line of body.lines) {
    f.print(...line);
  }
  f.print("  return out;");
  f.print("}");
  f.print();
}

/** The checks of one field of the message `m`, if it has rules or holds a validated message. */
function fieldChecks(ctx: FileContext, body: CheckerBody, field: DescField): void {
  const r = ctx.model.rules.get(field);
  const sub = field.message;
  const subValidated = sub !== undefined && ctx.analysis.validated.has(sub);
  if (!(r !== undefined && checksSomething(r)) && !subValidated) {
    return;
  }
  const fieldPath = `path + "${field.name}"`;
  const childPath = `path + "${field.name}."`;
  /** `out = checkSub(<value>, <path>, out);` for the message a field holds. */
  const checkMessage = (held: DescMessage, args: string): Printable[] => [
    "out = ",
    ctx.names.ref(held, ctx.names.message(held).checker),
    `(${args}, out);`,
  ];
  if (field.oneof !== undefined) {
    body.line(`  if (m.${field.oneof.localName}.case === "${field.localName}") {`);
    body.line(`    const v = m.${field.oneof.localName}.value;`);
    if (field.fieldKind === "message") {
      if (subValidated) {
        body.line("    ", ...checkMessage(field.message, `v, ${childPath}`));
      }
    } else if (r !== undefined) {
      valueChecks(ctx, body, field, r, "v", fieldPath, "    ");
    }
    body.line("  }");
    return;
  }
  switch (field.fieldKind) {
    case "message": {
      const check = checkMessage(field.message, `m.${field.localName}, ${childPath}`);
      if (r?.required) {
        body.line(`  if (m.${field.localName} === undefined) {`);
        body.violation("    ", fieldPath, "required", "is required");
        if (subValidated) {
          body.line("  } else {");
          body.line("    ", ...check);
        }
        body.line("  }");
      } else if (subValidated) {
        body.line(`  if (m.${field.localName} !== undefined) {`);
        body.line("    ", ...check);
        body.line("  }");
      }
      break;
    }
    case "list": {
      body.line("  {");
      body.line(`    const list = m.${field.localName};`);
      countChecks(body, r, "list.length", fieldPath, ["item", "items"]);
      const itemChecks =
        field.listKind === "message" ? subValidated : r !== undefined && checksValue(r);
      if (itemChecks) {
        body.line("    for (let i = 0; i < list.length; i++) {");
        body.line("      const v = list[i];");
        body.line("      if (v === undefined) continue;");
        if (field.listKind === "message") {
          body.line(
            "      ",
            ...checkMessage(field.message, `v, path + "${field.name}[" + i + "]."`),
          );
        } else if (r !== undefined) {
          const itemPath = `path + "${field.name}[" + i + "]"`;
          valueChecks(ctx, body, field, { ...r, required: false }, "v", itemPath, "      ");
        }
        body.line("    }");
      }
      body.line("  }");
      break;
    }
    case "map": {
      body.line("  {");
      body.line(`    const entries = Object.entries(m.${field.localName});`);
      countChecks(body, r, "entries.length", fieldPath, ["entry", "entries"]);
      if (field.mapKind === "message" && subValidated) {
        body.line("    for (const [k, v] of entries) {");
        body.line(
          "      ",
          ...checkMessage(field.message, `v, path + "${field.name}[" + JSON.stringify(k) + "]."`),
        );
        body.line("    }");
      }
      body.line("  }");
      break;
    }
    case "scalar":
    case "enum":
      if (r !== undefined) {
        body.line("  {");
        body.line(`    const v = m.${field.localName};`);
        valueChecks(ctx, body, field, r, "v", fieldPath, "    ");
        body.line("  }");
      }
      break;
  }
}

/** `required`, `min_items` and `max_items` of a list or map, whose size is `size`. */
function countChecks(
  body: CheckerBody,
  r: FieldRules | undefined,
  size: string,
  fieldPath: string,
  [one, many]: readonly [string, string],
): void {
  if (r?.required) {
    body.line(`    if (${size} === 0) {`);
    body.violation("      ", fieldPath, "required", "is required");
    body.line("    }");
  }
  if (r?.minItems !== undefined) {
    body.line(`    if (${size} < ${r.minItems}) {`);
    body.violation(
      "      ",
      fieldPath,
      "min_items",
      `must have at least ${r.minItems} ${r.minItems === 1 ? one : many}`,
    );
    body.line("    }");
  }
  if (r?.maxItems !== undefined) {
    body.line(`    if (${size} > ${r.maxItems}) {`);
    body.violation(
      "      ",
      fieldPath,
      "max_items",
      `must have at most ${r.maxItems} ${r.maxItems === 1 ? one : many}`,
    );
    body.line("    }");
  }
}
