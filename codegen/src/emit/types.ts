/**
 * Prints the types of messages with `required` rules: `XInput`, what a
 * producer passes, in which those fields must be given, and `XValid`, what a
 * consumer receives after the rules passed, in which they are never
 * undefined. Also the type of a field's value, for the other emitters.
 */
import { type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import type { Printable } from "@bufbuild/protoplugin";
import { is64, isExplicitScalar } from "../scalars.js";
import type { FileContext } from "./context.js";

/** Whether 64-bit integers of the field are strings in TS (`jstype = JS_STRING`). */
export function longAsString(field: DescField): boolean {
  return "longAsString" in field && field.longAsString;
}

/** The TS type of a singular scalar value. */
export function scalarType(field: DescField): string {
  switch (field.scalar) {
    case ScalarType.STRING:
      return "string";
    case ScalarType.BYTES:
      return "Uint8Array";
    case ScalarType.BOOL:
      return "boolean";
    default:
      return is64(field) ? (longAsString(field) ? "string" : "bigint") : "number";
  }
}

/** What a producer passes for a message: its Input when it has one, else its init shape. */
export function inputOf(ctx: FileContext, message: DescMessage): Printable[] {
  if (ctx.analysis.withInput.has(message)) {
    return [ctx.names.ref(message, ctx.names.message(message).input, true)];
  }
  return [
    ctx.f.import("MessageInitShape", "@bufbuild/protobuf", true),
    "<typeof ",
    ctx.f.importSchema(message, true),
    ">",
  ];
}

/** What a consumer receives for a message: its Valid type when it has one, else its shape. */
export function validOf(ctx: FileContext, message: DescMessage): Printable[] {
  if (ctx.analysis.withValid.has(message)) {
    return [ctx.names.ref(message, ctx.names.message(message).valid, true)];
  }
  return [ctx.f.importShape(message)];
}

/** Print the Input and Valid types of a message, those it has. */
export function emitMessageTypes(ctx: FileContext, message: DescMessage): void {
  if (ctx.analysis.withInput.has(message)) {
    emitInputType(ctx, message);
  }
  if (ctx.analysis.withValid.has(message)) {
    emitValidType(ctx, message);
  }
}

function emitInputType(ctx: FileContext, message: DescMessage): void {
  const { f } = ctx;
  const shape = f.importShape(message);
  const members: Printable[][] = [];
  for (const field of message.fields) {
    if (field.oneof !== undefined || field.fieldKind === "map") {
      continue;
    }
    const required = ctx.model.rules.get(field)?.required === true;
    const sub = field.message;
    if (!required && (sub === undefined || !ctx.analysis.withInput.has(sub))) {
      continue;
    }
    const opt = required ? "" : "?";
    let type: Printable[];
    switch (field.fieldKind) {
      case "scalar":
        type = [scalarType(field)];
        break;
      case "enum":
        type = [f.importShape(field.enum)];
        break;
      case "message":
        type = inputOf(ctx, field.message);
        break;
      case "list":
        type =
          field.listKind === "message"
            ? ["Array<", ...inputOf(ctx, field.message), ">"]
            : field.listKind === "enum"
              ? [f.importShape(field.enum), "[]"]
              : [scalarType(field), "[]"];
        break;
    }
    members.push([`      ${field.localName}${opt}: `, ...type, ";"]);
  }
  f.print(
    f.jsDoc(
      `What a producer passes for ${message.typeName}: a message, or an init object in which every field with a \`required\` rule must be given.`,
    ),
  );
  f.print(f.export("type", ctx.names.message(message).input), " =");
  f.print("  | ", shape);
  f.print(
    "  | (Exclude<",
    f.import("MessageInitShape", "@bufbuild/protobuf", true),
    "<typeof ",
    f.importSchema(message, true),
    ">, ",
    shape,
    "> & {",
  );
  for (const member of members) {
    f.print(...member);
  }
  f.print("    });");
  f.print();
}

function emitValidType(ctx: FileContext, message: DescMessage): void {
  const { f } = ctx;
  const shape = f.importShape(message);
  f.print(
    f.jsDoc(
      `${message.typeName} after its field rules passed, as consumers receive it: fields with a \`required\` rule are never undefined.`,
    ),
  );
  f.print(f.export("type", ctx.names.message(message).valid), " = ", shape, " & {");
  for (const field of message.fields) {
    if (field.oneof !== undefined) {
      continue;
    }
    const required = ctx.model.rules.get(field)?.required === true;
    const sub = field.message;
    const subValid = sub !== undefined && ctx.analysis.withValid.has(sub);
    switch (field.fieldKind) {
      case "message":
        if (required) {
          f.print(`  ${field.localName}: `, ...validOf(ctx, field.message), ";");
        } else if (subValid) {
          f.print(`  ${field.localName}?: `, ...validOf(ctx, field.message), ";");
        }
        break;
      case "list":
        if (field.listKind === "message" && subValid) {
          f.print(`  ${field.localName}: Array<`, ...validOf(ctx, field.message), ">;");
        }
        break;
      case "map":
        if (field.mapKind === "message" && subValid) {
          f.print(`  ${field.localName}: { [key: string]: `, ...validOf(ctx, field.message), " };");
        }
        break;
      case "scalar":
        if (required && isExplicitScalar(field)) {
          f.print(`  ${field.localName}: ${scalarType(field)};`);
        }
        break;
      case "enum":
        if (required && isExplicitScalar(field)) {
          f.print(`  ${field.localName}: `, f.importShape(field.enum), ";");
        }
        break;
    }
  }
  f.print("};");
  f.print();
}
