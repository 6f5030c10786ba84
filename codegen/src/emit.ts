/**
 * Prints the TypeScript of one `<file>_pe.ts` from the contract model:
 * validators and the Input/Valid types of messages with field rules, event
 * contracts with encode/decode, and for each application its subscriptions,
 * typed handler interface, subscribe function and typed publisher.
 *
 * Every import goes through protoplugin (`f.import*`); this file never
 * prints an import line or a relative path of its own.
 */
import { type DescField, type DescFile, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import {
  type GeneratedFile,
  getComments,
  type ImportSymbol,
  type Printable,
  type Schema,
} from "@bufbuild/protoplugin";
import type { ApplicationModel, ContractModel, EventModel } from "./model.js";
import type { FieldRules } from "./options.js";
import { planPattern } from "./pattern.js";
import { is64, isExplicitScalar } from "./scalars.js";

/** Options of the emitter that come from plugin parameters. */
export interface EmitOptions {
  /** Module the generated code imports the runtime from. */
  readonly runtime: string;
}

/** The file name of our output for a proto file, without extension. */
export function peFileName(file: DescFile): string {
  return `${file.name}_pe`;
}

/** Which messages need a validator, an Input type and a Valid type. */
export interface Analysis {
  readonly validated: ReadonlySet<DescMessage>;
  readonly withInput: ReadonlySet<DescMessage>;
  readonly withValid: ReadonlySet<DescMessage>;
}

/** Whether a rule set checks anything (pii alone does not). */
function checksSomething(r: FieldRules): boolean {
  return (
    r.required ||
    r.minLen !== undefined ||
    r.maxLen !== undefined ||
    r.pattern !== "" ||
    r.min !== undefined ||
    r.max !== undefined ||
    r.minItems !== undefined ||
    r.maxItems !== undefined
  );
}

/** Grow a set to its fixpoint: a message is in it if it qualifies or reaches one that does. */
function closure(
  all: readonly DescMessage[],
  seed: (message: DescMessage) => boolean,
  through: (message: DescMessage, field: DescField) => boolean,
): Set<DescMessage> {
  const set = new Set(all.filter(seed));
  for (let changed = true; changed; ) {
    changed = false;
    for (const message of all) {
      if (
        !set.has(message) &&
        message.fields.some(
          (f) => f.message !== undefined && set.has(f.message) && through(message, f),
        )
      ) {
        set.add(message);
        changed = true;
      }
    }
  }
  return set;
}

/** Decide which messages get validators and types. */
export function analyse(schema: Schema, model: ContractModel): Analysis {
  const all: DescMessage[] = [];
  const walk = (messages: readonly DescMessage[]) => {
    for (const m of messages) {
      if (!m.proto.options?.mapEntry) {
        all.push(m);
      }
      walk(m.nestedMessages);
    }
  };
  for (const file of schema.allFiles) {
    walk(file.messages);
  }
  const rulesOf = (f: DescField) => model.rules.get(f);
  const validated = closure(
    all,
    (m) =>
      m.fields.some((f) => {
        const r = rulesOf(f);
        return r !== undefined && checksSomething(r);
      }),
    () => true,
  );
  const requiredOutsideOneof = (f: DescField) =>
    f.oneof === undefined && f.fieldKind !== "map" && rulesOf(f)?.required === true;
  const withInput = closure(
    all,
    (m) => m.fields.some(requiredOutsideOneof),
    (_m, f) => f.oneof === undefined && f.fieldKind !== "map",
  );
  const withValid = closure(
    all,
    (m) =>
      m.fields.some(
        (f) => requiredOutsideOneof(f) && (f.fieldKind === "message" || isExplicitScalar(f)),
      ),
    (_m, f) => f.oneof === undefined && f.fieldKind !== "map",
  );
  // Only messages of files we generate can get code; events always get a validator.
  for (const event of model.events.values()) {
    validated.add(event.desc);
  }
  return { validated, withInput, withValid };
}

/** `SCREAMING_CASE` of a shape name. */
function screaming(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/([A-Z])([A-Z][a-z])/g, "$1_$2")
    .toUpperCase();
}

/** `camelCase` of an rpc name. */
function camel(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

/** The leading comment of an element, without the space after each `//`. */
function leadingComment(desc: Parameters<typeof getComments>[0]): string {
  return (getComments(desc).leading ?? "")
    .split("\n")
    .map((line) => (line.startsWith(" ") ? line.slice(1) : line))
    .join("\n")
    .trim();
}

/** Whether 64-bit integers of the field are strings in TS (`jstype = JS_STRING`). */
function longAsString(field: DescField): boolean {
  return "longAsString" in field && field.longAsString;
}

/** Printer for one generated file. */
export class FileEmitter {
  private readonly runtimeSymbols = new Map<string, ImportSymbol>();

  constructor(
    private readonly f: GeneratedFile,
    private readonly file: DescFile,
    private readonly model: ContractModel,
    private readonly analysis: Analysis,
    private readonly options: EmitOptions,
  ) {}

  private rt(name: string, typeOnly = false): ImportSymbol {
    const key = `${name}:${typeOnly}`;
    let symbol = this.runtimeSymbols.get(key);
    if (symbol === undefined) {
      symbol = this.f.import(name, this.options.runtime, typeOnly);
      this.runtimeSymbols.set(key, symbol);
    }
    return symbol;
  }

  /** A symbol this plugin generates for `message`, imported when it lives in another file. */
  private own(message: DescMessage, name: string, typeOnly = false): Printable {
    if (message.file === this.file) {
      return name;
    }
    return this.f.import(name, `./${peFileName(message.file)}.js`, typeOnly);
  }

  private shapeName(message: DescMessage): string {
    return this.f.importShape(message).name;
  }

  validatorName(message: DescMessage): string {
    return `validate${this.shapeName(message)}`;
  }

  /** The allocation-free checker behind a validator, also called across files. */
  checkerName(message: DescMessage): string {
    return `check${this.shapeName(message)}`;
  }

  /** Print everything for the file. Returns false when there was nothing to print. */
  emit(): boolean {
    const messages = this.messagesOfFile();
    const events = [...this.model.events.values()].filter((e) => e.desc.file === this.file);
    const applications = this.model.applications.filter((a) => a.service.file === this.file);
    const printed =
      messages.some(
        (m) =>
          this.analysis.validated.has(m) ||
          this.analysis.withInput.has(m) ||
          this.analysis.withValid.has(m),
      ) ||
      events.length > 0 ||
      applications.length > 0;
    if (!printed) {
      return false;
    }
    this.f.preamble(this.file);
    for (const message of messages) {
      this.emitMessageTypes(message);
      if (this.analysis.validated.has(message)) {
        this.emitValidator(message);
      }
    }
    for (const event of events) {
      this.emitEvent(event);
    }
    for (const application of applications) {
      this.emitApplication(application);
    }
    return true;
  }

  private messagesOfFile(): DescMessage[] {
    const out: DescMessage[] = [];
    const walk = (messages: readonly DescMessage[]) => {
      for (const m of messages) {
        if (!m.proto.options?.mapEntry) {
          out.push(m);
        }
        walk(m.nestedMessages);
      }
    };
    walk(this.file.messages);
    return out;
  }

  // ---------------------------------------------------------------- types

  /** The TS type of a singular scalar value. */
  private scalarType(field: DescField): string {
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

  /** Init type for a message value in an Input: its Input when it has one. */
  private inputOf(message: DescMessage): Printable[] {
    if (this.analysis.withInput.has(message)) {
      return [this.own(message, `${this.shapeName(message)}Input`, true)];
    }
    return [
      this.f.import("MessageInitShape", "@bufbuild/protobuf", true),
      "<typeof ",
      this.f.importSchema(message, true),
      ">",
    ];
  }

  private validOf(message: DescMessage): Printable[] {
    if (this.analysis.withValid.has(message)) {
      return [this.own(message, `${this.shapeName(message)}Valid`, true)];
    }
    return [this.f.importShape(message)];
  }

  private emitMessageTypes(message: DescMessage): void {
    const f = this.f;
    const shape = f.importShape(message);
    const name = this.shapeName(message);
    if (this.analysis.withInput.has(message)) {
      const members: Printable[][] = [];
      for (const field of message.fields) {
        if (field.oneof !== undefined || field.fieldKind === "map") {
          continue;
        }
        const required = this.model.rules.get(field)?.required === true;
        const sub = field.message;
        if (!required && (sub === undefined || !this.analysis.withInput.has(sub))) {
          continue;
        }
        const opt = required ? "" : "?";
        let type: Printable[];
        switch (field.fieldKind) {
          case "scalar":
            type = [this.scalarType(field)];
            break;
          case "enum":
            type = [f.importShape(field.enum)];
            break;
          case "message":
            type = this.inputOf(field.message);
            break;
          case "list":
            type =
              field.listKind === "message"
                ? ["Array<", ...this.inputOf(field.message), ">"]
                : field.listKind === "enum"
                  ? [f.importShape(field.enum), "[]"]
                  : [this.scalarType(field), "[]"];
            break;
        }
        members.push([`      ${field.localName}${opt}: `, ...type, ";"]);
      }
      f.print(
        f.jsDoc(
          `What a producer passes for ${message.typeName}: a message, or an init object in which every field with a \`required\` rule must be given.`,
        ),
      );
      f.print(f.export("type", `${name}Input`), " =");
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
    if (this.analysis.withValid.has(message)) {
      f.print(
        f.jsDoc(
          `${message.typeName} after its field rules passed, as consumers receive it: fields with a \`required\` rule are never undefined.`,
        ),
      );
      f.print(f.export("type", `${name}Valid`), " = ", shape, " & {");
      for (const field of message.fields) {
        if (field.oneof !== undefined) {
          continue;
        }
        const required = this.model.rules.get(field)?.required === true;
        const sub = field.message;
        const subValid = sub !== undefined && this.analysis.withValid.has(sub);
        switch (field.fieldKind) {
          case "message":
            if (required) {
              f.print(`  ${field.localName}: `, ...this.validOf(field.message), ";");
            } else if (subValid) {
              f.print(`  ${field.localName}?: `, ...this.validOf(field.message), ";");
            }
            break;
          case "list":
            if (field.listKind === "message" && subValid) {
              f.print(`  ${field.localName}: Array<`, ...this.validOf(field.message), ">;");
            }
            break;
          case "map":
            if (field.mapKind === "message" && subValid) {
              f.print(
                `  ${field.localName}: { [key: string]: `,
                ...this.validOf(field.message),
                " };",
              );
            }
            break;
          case "scalar":
            if (required && isExplicitScalar(field)) {
              f.print(`  ${field.localName}: ${this.scalarType(field)};`);
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
  }

  // ----------------------------------------------------------- validators

  private emitValidator(message: DescMessage): void {
    const f = this.f;
    const name = this.validatorName(message);
    const patterns: Array<[string, Printable]> = [];
    const body: Printable[][] = [];
    const push = (indent: string, pathExpr: string, rule: string, text: string) =>
      body.push([
        `${indent}(out ??= []).push({ path: ${pathExpr}, rule: "${rule}", message: ${JSON.stringify(text)} });`,
      ]);

    for (const field of message.fields) {
      const rules = this.model.rules.get(field);
      const checks = rules !== undefined && checksSomething(rules);
      const sub = field.message;
      const subValidated = sub !== undefined && this.analysis.validated.has(sub);
      if (!checks && !subValidated) {
        continue;
      }
      const r = rules;
      const fieldPath = `path + "${field.name}"`;
      const childPath = `path + "${field.name}."`;
      if (field.oneof !== undefined) {
        body.push([`  if (m.${field.oneof.localName}.case === "${field.localName}") {`]);
        body.push([`    const v = m.${field.oneof.localName}.value;`]);
        if (field.fieldKind === "message") {
          if (subValidated) {
            body.push([
              `    `,
              "out = ",
              this.own(field.message, this.checkerName(field.message)),
              `(v, ${childPath}, out);`,
            ]);
          }
        } else if (r !== undefined) {
          this.valueChecks(field, r, "v", fieldPath, "    ", push, patterns, body);
        }
        body.push(["  }"]);
        continue;
      }
      switch (field.fieldKind) {
        case "message": {
          const check: Printable[] = [
            "out = ",
            this.own(field.message, this.checkerName(field.message)),
            `(m.${field.localName}, ${childPath}, out);`,
          ];
          if (r?.required) {
            body.push([`  if (m.${field.localName} === undefined) {`]);
            push("    ", fieldPath, "required", "is required");
            if (subValidated) {
              body.push(["  } else {"]);
              body.push(["    ", ...check]);
            }
            body.push(["  }"]);
          } else if (subValidated) {
            body.push([`  if (m.${field.localName} !== undefined) {`]);
            body.push(["    ", ...check]);
            body.push(["  }"]);
          }
          break;
        }
        case "list": {
          body.push(["  {"]);
          body.push([`    const list = m.${field.localName};`]);
          if (r?.required) {
            body.push(["    if (list.length === 0) {"]);
            push("      ", fieldPath, "required", "is required");
            body.push(["    }"]);
          }
          if (r?.minItems !== undefined) {
            body.push([`    if (list.length < ${r.minItems}) {`]);
            push(
              "      ",
              fieldPath,
              "min_items",
              `must have at least ${r.minItems} item${r.minItems === 1 ? "" : "s"}`,
            );
            body.push(["    }"]);
          }
          if (r?.maxItems !== undefined) {
            body.push([`    if (list.length > ${r.maxItems}) {`]);
            push(
              "      ",
              fieldPath,
              "max_items",
              `must have at most ${r.maxItems} item${r.maxItems === 1 ? "" : "s"}`,
            );
            body.push(["    }"]);
          }
          const itemChecks =
            field.listKind === "message" ? subValidated : r !== undefined && this.hasValueChecks(r);
          if (itemChecks) {
            body.push(["    for (let i = 0; i < list.length; i++) {"]);
            body.push(["      const v = list[i];"]);
            body.push(["      if (v === undefined) continue;"]);
            const itemPath = `path + "${field.name}[" + i + "]"`;
            if (field.listKind === "message") {
              body.push([
                "      ",
                "out = ",
                this.own(field.message, this.checkerName(field.message)),
                `(v, path + "${field.name}[" + i + "].", out);`,
              ]);
            } else if (r !== undefined) {
              this.valueChecks(
                field,
                { ...r, required: false },
                "v",
                itemPath,
                "      ",
                push,
                patterns,
                body,
              );
            }
            body.push(["    }"]);
          }
          body.push(["  }"]);
          break;
        }
        case "map": {
          body.push(["  {"]);
          body.push([`    const entries = Object.entries(m.${field.localName});`]);
          const size = "entries.length";
          if (r?.required) {
            body.push([`    if (${size} === 0) {`]);
            push("      ", fieldPath, "required", "is required");
            body.push(["    }"]);
          }
          if (r?.minItems !== undefined) {
            body.push([`    if (${size} < ${r.minItems}) {`]);
            push(
              "      ",
              fieldPath,
              "min_items",
              `must have at least ${r.minItems} entr${r.minItems === 1 ? "y" : "ies"}`,
            );
            body.push(["    }"]);
          }
          if (r?.maxItems !== undefined) {
            body.push([`    if (${size} > ${r.maxItems}) {`]);
            push(
              "      ",
              fieldPath,
              "max_items",
              `must have at most ${r.maxItems} entr${r.maxItems === 1 ? "y" : "ies"}`,
            );
            body.push(["    }"]);
          }
          if (field.mapKind === "message" && subValidated) {
            body.push(["    for (const [k, v] of entries) {"]);
            body.push([
              "      ",
              "out = ",
              this.own(field.message, this.checkerName(field.message)),
              `(v, path + "${field.name}[" + JSON.stringify(k) + "].", out);`,
            ]);
            body.push(["    }"]);
          }
          body.push(["  }"]);
          break;
        }
        case "scalar":
        case "enum":
          if (r !== undefined) {
            body.push(["  {"]);
            body.push([`    const v = m.${field.localName};`]);
            this.valueChecks(field, r, "v", fieldPath, "    ", push, patterns, body);
            body.push(["  }"]);
          }
          break;
      }
    }

    for (const [constName, init] of patterns) {
      f.print("const ", constName, " = /*@__PURE__*/ ", init, ";");
      f.print();
    }
    const violation = this.rt("FieldViolation", true);
    const shape = f.importShape(message);
    f.print(
      f.jsDoc(
        `Check the field rules of ${message.typeName}, also inside the messages it contains. Returns every violation, each with its field path in proto names (\`items[1].quantity\`); empty means valid.`,
      ),
    );
    f.print(f.export("function", name), "(m: ", shape, "): readonly ", violation, "[] {");
    f.print(
      `  return ${this.checkerName(message)}(m, "", undefined) ?? `,
      this.rt("NO_VIOLATIONS"),
      ";",
    );
    f.print("}");
    f.print();
    f.print(
      f.jsDoc(
        `The checks behind {@link ${name}}: appends violations under \`path\` to \`out\`, allocating it on the first one, and returns it.\n\n@internal`,
      ),
    );
    f.print(
      f.export("function", this.checkerName(message)),
      "(m: ",
      shape,
      ", path: string, out: ",
      violation,
      "[] | undefined): ",
      violation,
      "[] | undefined {",
    );
    if (body.length === 0) {
      f.print("  void m;");
      f.print("  void path;");
    }
    for (const line of body) {
      f.print(...line);
    }
    f.print("  return out;");
    f.print("}");
    f.print();
  }

  private hasValueChecks(r: FieldRules): boolean {
    return (
      r.minLen !== undefined ||
      r.maxLen !== undefined ||
      r.pattern !== "" ||
      r.min !== undefined ||
      r.max !== undefined
    );
  }

  /**
   * The matcher of a pattern rule: V8's RegExp for a pattern (or its safe
   * rewrite) that cannot backtrack super-linearly, the runtime's linear-time
   * engine otherwise. The model refused every pattern that fits neither.
   */
  private patternInit(pattern: string): Printable {
    const plan = planPattern(pattern);
    switch (plan.engine) {
      case "backtracking":
        return `new RegExp(${JSON.stringify(plan.source)}, "u")`;
      case "linear":
        return [
          this.f.import("linearPattern", this.options.runtime),
          `(${JSON.stringify(plan.source)})`,
        ];
      case "refused":
        throw new Error(`pattern ${JSON.stringify(pattern)} ${plan.reason}`);
    }
  }

  /** Checks on one scalar or enum value `v` (a singular field, a oneof member or a list item). */
  private valueChecks(
    field: DescField,
    r: FieldRules,
    v: string,
    pathExpr: string,
    indent: string,
    push: (indent: string, pathExpr: string, rule: string, text: string) => void,
    patterns: Array<[string, Printable]>,
    body: Printable[][],
  ): void {
    const line = (text: string) => body.push([`${indent}${text}`]);
    const explicit = isExplicitScalar(field) && field.fieldKind !== "list";
    const scalar =
      field.fieldKind === "enum" || (field.fieldKind === "list" && field.listKind === "enum")
        ? undefined
        : field.scalar;
    const isString = scalar === ScalarType.STRING;
    const isBytes = scalar === ScalarType.BYTES;
    // The value that counts as "not set".
    let empty: string;
    if (explicit) {
      empty = `${v} === undefined`;
    } else if (isString) {
      empty = `${v} === ""`;
    } else if (isBytes) {
      empty = `${v}.length === 0`;
    } else if (scalar === ScalarType.BOOL) {
      empty = `${v} === false`;
    } else if (scalar !== undefined && is64(field)) {
      empty = longAsString(field) ? `${v} === "0"` : `${v} === 0n`;
    } else {
      empty = `${v} === 0`;
    }
    if (r.required) {
      line(`if (${empty}) {`);
      push(`${indent}  `, pathExpr, "required", "is required");
      line("}");
    }
    const textChecks =
      (isString || isBytes) &&
      (r.minLen !== undefined || r.maxLen !== undefined || r.pattern !== "");
    if (textChecks) {
      // Length and pattern rules apply to non-empty values.
      const guard = explicit ? `${v} !== undefined && ${v}.length > 0` : `${v}.length > 0`;
      line(`if (${guard}) {`);
      const length = isString
        ? (this.f.import("codePointLength", this.options.runtime) as Printable)
        : undefined;
      if (r.minLen !== undefined) {
        body.push(
          isString
            ? [`${indent}  if (`, length as Printable, `(${v}) < ${r.minLen}) {`]
            : [`${indent}  if (${v}.length < ${r.minLen}) {`],
        );
        push(
          `${indent}    `,
          pathExpr,
          "min_len",
          `must be at least ${r.minLen} ${isString ? "characters" : "bytes"} long`,
        );
        line("  }");
      }
      if (r.maxLen !== undefined) {
        body.push(
          isString
            ? [
                `${indent}  if (${v}.length > ${r.maxLen} && `,
                length as Printable,
                `(${v}) > ${r.maxLen}) {`,
              ]
            : [`${indent}  if (${v}.length > ${r.maxLen}) {`],
        );
        push(
          `${indent}    `,
          pathExpr,
          "max_len",
          `must be at most ${r.maxLen} ${isString ? "characters" : "bytes"} long`,
        );
      }
      if (r.pattern !== "") {
        const constName = `PATTERN_${this.shapeName(field.parent)}_${field.name}`.replace(
          /[^A-Za-z0-9_$]/g,
          "_",
        );
        if (!patterns.some(([n]) => n === constName)) {
          patterns.push([constName, this.patternInit(r.pattern)]);
        }
        // A value already too long never reaches the pattern: length bounds the matching work.
        line(`${r.maxLen !== undefined ? "  } else if" : "  if"} (!${constName}.test(${v})) {`);
        push(`${indent}    `, pathExpr, "pattern", `must match ${r.pattern}`);
      }
      if (r.maxLen !== undefined || r.pattern !== "") {
        line("  }");
      }
      line("}");
    }
    if (
      scalar !== undefined &&
      (r.min !== undefined || r.max !== undefined) &&
      scalar !== ScalarType.STRING &&
      scalar !== ScalarType.BYTES &&
      scalar !== ScalarType.BOOL
    ) {
      const big = is64(field);
      const value = big && longAsString(field) ? `BigInt(${v})` : v;
      const literal = (n: bigint) => (big ? `${n}n` : `${n}`);
      const guard = explicit ? `${v} !== undefined` : "true";
      if (explicit) {
        line(`if (${guard}) {`);
      }
      const inner = explicit ? `${indent}  ` : indent;
      if (r.min !== undefined) {
        body.push([`${inner}if (${value} < ${literal(r.min)}) {`]);
        push(`${inner}  `, pathExpr, "min", `must be at least ${r.min}`);
        body.push([`${inner}}`]);
      }
      if (r.max !== undefined) {
        body.push([`${inner}if (${value} > ${literal(r.max)}) {`]);
        push(`${inner}  `, pathExpr, "max", `must be at most ${r.max}`);
        body.push([`${inner}}`]);
      }
      if (explicit) {
        line("}");
      }
    }
  }

  // --------------------------------------------------------------- events

  /** The fields marked pii in the event and every message it reaches. */
  private piiFields(root: DescMessage): string[] {
    const out: string[] = [];
    const seen = new Set<DescMessage>();
    const visit = (message: DescMessage) => {
      if (seen.has(message)) {
        return;
      }
      seen.add(message);
      for (const field of message.fields) {
        if (this.model.rules.get(field)?.pii === true) {
          out.push(`${message.typeName}.${field.name}`);
        }
        if (field.message !== undefined) {
          visit(field.message);
        }
      }
    };
    visit(root);
    return out;
  }

  private keyReader(field: DescField | undefined): string {
    if (field === undefined) {
      return "undefined";
    }
    const access = `event.${field.localName}`;
    if (field.scalar === ScalarType.STRING) {
      return `(event) => ${access}`;
    }
    return `(event) => String(${access})`;
  }

  private emitEvent(event: EventModel): void {
    const f = this.f;
    const message = event.desc;
    const name = this.shapeName(message);
    const constant = screaming(name);
    const schema = f.importSchema(message);
    const shape = f.importShape(message);
    const valid = this.validOf(message);
    const comment = leadingComment(message);
    f.print(f.jsDoc(`Pub/Sub topic of event ${message.typeName}.`));
    f.print(f.export("const", `${constant}_TOPIC`), ` = ${JSON.stringify(event.topic)};`);
    f.print();
    f.print(f.jsDoc(`CloudEvents type (\`ce-type\`) of event ${message.typeName}.`));
    f.print(f.export("const", `${constant}_TYPE`), ` = ${JSON.stringify(event.type)};`);
    f.print();
    const facts = [
      `topic \`${event.topic}\``,
      event.orderingKeyField === undefined
        ? "no ordering key"
        : `ordering key \`${event.orderingKeyField.name}\``,
      event.subjectField === undefined ? "no subject" : `subject \`${event.subjectField.name}\``,
      `${event.encoding} payload`,
    ];
    f.print(
      f.jsDoc(
        `${comment === "" ? "" : `${comment}\n\n`}Contract of event ${message.typeName}: ${facts.join(", ")}.`,
      ),
    );
    f.print(
      f.export("const", `${name}Event`),
      ": ",
      this.rt("EventContract", true),
      "<typeof ",
      f.importSchema(message, true),
      "> = /*@__PURE__*/ ",
      this.rt("defineEvent"),
      "({",
    );
    f.print("  schema: ", schema, ",");
    f.print(`  type: ${constant}_TYPE,`);
    f.print(`  topic: ${constant}_TOPIC,`);
    f.print(`  encoding: "${event.encoding}",`);
    f.print(`  dataschema: ${JSON.stringify(event.dataschema)},`);
    f.print(`  maxBytes: ${event.maxBytes},`);
    if (event.messageRetentionSeconds !== undefined) {
      f.print(`  messageRetentionSeconds: ${event.messageRetentionSeconds},`);
    }
    f.print(
      `  orderingKeyField: ${event.orderingKeyField === undefined ? "undefined" : JSON.stringify(event.orderingKeyField.name)},`,
    );
    f.print(`  orderingKey: ${this.keyReader(event.orderingKeyField)},`);
    f.print(`  subject: ${this.keyReader(event.subjectField)},`);
    f.print(`  validate: ${this.validatorName(message)},`);
    f.print(`  piiFields: ${JSON.stringify(this.piiFields(message))},`);
    f.print("});");
    f.print();
    f.print(
      f.jsDoc(
        `Encode ${message.typeName} as a Pub/Sub message in CloudEvents binary content mode (attributes \`ce-*\`, payload in \`data\` as a Buffer, ordering key from the contract). Does not validate; generated publishers do.`,
      ),
    );
    f.print(
      f.export("function", `encode${name}`),
      "(event: ",
      shape,
      ", options: ",
      this.rt("EncodeOptions", true),
      "): ",
      this.rt("OutgoingMessage", true),
      " {",
    );
    f.print("  return ", this.rt("encodeEvent"), `(${name}Event, event, options);`);
    f.print("}");
    f.print();
    f.print(
      f.jsDoc(
        `Decode a Pub/Sub message as ${message.typeName} with its envelope, and check its field rules.\n\n@throws ProtoeventsError \`unknown_event_type\`, \`decode_failed\` or \`validation_failed\`, all permanent.`,
      ),
    );
    f.print(
      f.export("function", `decode${name}`),
      "(message: ",
      this.rt("IncomingMessage", true),
      "): { event: ",
      ...valid,
      "; envelope: ",
      this.rt("Envelope", true),
      " } {",
    );
    f.print("  const decoded = ", this.rt("decodeValidEvent"), `(${name}Event, message);`);
    f.print("  return { event: decoded.event as ", ...valid, ", envelope: decoded.envelope };");
    f.print("}");
    f.print();
  }

  // --------------------------------------------------------- applications

  private emitApplication(app: ApplicationModel): void {
    const f = this.f;
    const service = app.service;
    const base = service.name;
    const comment = leadingComment(service);
    const pubsub = f.import("PubSub", "@google-cloud/pubsub", true);

    // Subscriptions
    f.print(
      f.jsDoc(
        `Subscriptions of application \`${app.name}\` (service ${service.typeName}), one per rpc.`,
      ),
    );
    f.print(f.export("const", `${base}Subscriptions`), " = {");
    for (const sub of app.subscriptions) {
      const event = sub.event;
      f.print(f.jsDoc(`\`${sub.name}\`: rpc ${sub.method.name}(${event.desc.typeName}).`, "  "));
      f.print(`  ${camel(sub.method.name)}: /*@__PURE__*/ `, this.rt("defineSubscription"), "({");
      f.print(`    application: ${JSON.stringify(app.name)},`);
      f.print(`    service: ${JSON.stringify(service.typeName)},`);
      f.print(`    rpc: ${JSON.stringify(sub.method.name)},`);
      f.print(`    name: ${JSON.stringify(sub.name)},`);
      f.print("    event: ", this.own(event.desc, `${this.shapeName(event.desc)}Event`), ",");
      f.print(`    maxDeliveryAttempts: ${sub.maxDeliveryAttempts},`);
      f.print(`    ackDeadlineSeconds: ${sub.ackDeadlineSeconds},`);
      f.print(`    minBackoffSeconds: ${sub.minBackoffSeconds},`);
      f.print(`    maxBackoffSeconds: ${sub.maxBackoffSeconds},`);
      if (sub.expirationTtlDays !== undefined) {
        f.print(`    expirationTtlDays: ${sub.expirationTtlDays},`);
      }
      f.print(`    messageRetentionSeconds: ${sub.messageRetentionSeconds},`);
      f.print(`    retainAckedMessages: ${sub.retainAckedMessages},`);
      if (sub.exactlyOnceDelivery) {
        f.print("    exactlyOnceDelivery: true,");
      }
      f.print(`    ordered: ${sub.ordered},`);
      f.print(`    filter: ${JSON.stringify(sub.filter)},`);
      f.print(
        `    deadLetter: ${sub.deadLetterIds === undefined ? "undefined" : `{ topic: ${JSON.stringify(sub.deadLetterIds.topic)}, subscription: ${JSON.stringify(sub.deadLetterIds.subscription)} }`},`,
      );
      f.print(`    siblingTypes: ${JSON.stringify(sub.siblingTypes)},`);
      f.print("  }),");
    }
    f.print("} as const;");
    f.print();

    // Application
    f.print(
      f.jsDoc(
        `${comment === "" ? "" : `${comment}\n\n`}Contract of application \`${app.name}\`: what it publishes and consumes.`,
      ),
    );
    f.print(
      f.export("const", `${base}Application`),
      " = /*@__PURE__*/ ",
      this.rt("defineApplication"),
      "({",
    );
    f.print(`  name: ${JSON.stringify(app.name)},`);
    f.print(`  service: ${JSON.stringify(service.typeName)},`);
    if (app.retired.length > 0) {
      f.print(`  retiredSubscriptions: ${JSON.stringify(app.retired)},`);
    }
    f.print(
      "  publishes: [",
      ...this.joined(app.publishes.map((e) => this.own(e.desc, `${this.shapeName(e.desc)}Event`))),
      "],",
    );
    f.print(
      "  subscriptions: [",
      ...this.joined(app.subscriptions.map((s) => `${base}Subscriptions.${camel(s.method.name)}`)),
      "],",
    );
    f.print("});");
    f.print();

    const source = JSON.stringify(app.name);
    const publishes = app.publishes.length > 0;
    if (publishes) {
      this.emitPublisher(app, base, source, pubsub);
    }
    if (app.subscriptions.length > 0) {
      this.emitConsumer(app, base, pubsub, publishes);
    }
  }

  private emitPublisher(
    app: ApplicationModel,
    base: string,
    source: string,
    pubsub: Printable,
  ): void {
    const f = this.f;
    const publishOptions = this.rt("PublishOptions", true);
    const publishResult = this.rt("PublishResult", true);
    f.print(
      f.jsDoc(
        `The events application \`${app.name}\` may publish, and no others. Each method checks the field rules first and refuses an invalid event.`,
      ),
    );
    f.print(f.export("interface", `${base}Publisher`), " {");
    for (const event of app.publishes) {
      const eventName = this.shapeName(event.desc);
      f.print(f.jsDoc(`Publish ${event.desc.typeName} on topic \`${event.topic}\`.`, "  "));
      f.print(
        `  publish${eventName}(event: `,
        ...this.inputOf(event.desc),
        ", options?: ",
        publishOptions,
        "): Promise<",
        publishResult,
        ">;",
      );
    }
    f.print("}");
    f.print();
    f.print(
      f.jsDoc(
        `Bind the typed publisher of \`${app.name}\` to a sink: Pub/Sub or an outbox.\n\n@internal`,
      ),
    );
    f.print(
      f.export("function", `bind${base}Publisher`),
      "(sink: ",
      this.rt("EventSink", true),
      `): ${base}Publisher {`,
    );
    f.print("  return {");
    for (const event of app.publishes) {
      const eventName = this.shapeName(event.desc);
      f.print(
        `    publish${eventName}: (event, options) => sink.publish(`,
        this.own(event.desc, `${eventName}Event`),
        ", event, options),",
      );
    }
    f.print("  };");
    f.print("}");
    f.print();
    f.print(
      f.jsDoc(
        `Publish straight to Pub/Sub as application \`${app.name}\` (\`ce-source: ${app.name}\`): each method resolves once Pub/Sub accepted the event. Outside a store transaction only; with a store, write events through \`${camel(base)}Outbox(tx)\` so they commit with the state change.`,
      ),
    );
    f.print(
      f.export("function", `create${base}Publisher`),
      "(pubsub: ",
      pubsub,
      ", options?: Omit<",
      this.rt("EventPublisherOptions", true),
      `, "source">): ${base}Publisher & { flush(): Promise<void> } {`,
    );
    f.print(
      "  const publisher = ",
      this.rt("createEventPublisher"),
      `(pubsub, { ...options, source: ${source} });`,
    );
    f.print(`  return { ...bind${base}Publisher(publisher), flush: () => publisher.flush() };`);
    f.print("}");
    f.print();
    f.print(
      f.jsDoc(
        `Write events of application \`${app.name}\` into the outbox of a store transaction: they commit or roll back with it, and the outbox relay publishes them after commit. Use it wherever state changes and events must agree, e.g. in an API call: \`store.transaction(async (tx) => { …; await ${camel(base)}Outbox(tx).publish…(…); })\`.`,
      ),
    );
    f.print(
      f.export("function", `${camel(base)}Outbox`),
      "<DB>(tx: ",
      this.rt("StoreTransaction", true),
      `<DB>): ${base}Publisher {`,
    );
    f.print(`  return bind${base}Publisher(`, this.rt("createOutboxSink"), `(tx, ${source}));`);
    f.print("}");
    f.print();
  }

  private emitConsumer(
    app: ApplicationModel,
    base: string,
    pubsub: Printable,
    publishes: boolean,
  ): void {
    const f = this.f;
    const service = app.service;
    const transactionContext = this.rt("TransactionContext", true);
    const handlerContext = this.rt("HandlerContext", true);
    if (publishes) {
      f.print(
        f.jsDoc(
          `What handlers of \`${app.name}\` get with a store: the transaction, and the application's publisher writing into its outbox.`,
        ),
      );
      f.print(
        f.export("interface", `${base}Context`),
        "<DB = unknown> extends ",
        transactionContext,
        "<DB> {",
      );
      f.print(`  readonly publisher: ${base}Publisher;`);
      f.print("}");
      f.print();
      f.print(
        f.jsDoc(
          `What handlers of \`${app.name}\` get without a store: the application's publisher, straight to Pub/Sub.`,
        ),
      );
      f.print(f.export("interface", `${base}AtLeastOnceContext`), " {");
      f.print(`  readonly publisher: ${base}Publisher;`);
      f.print("}");
    } else {
      f.print(f.jsDoc(`What handlers of \`${app.name}\` get with a store: the transaction.`));
      f.print(f.export("type", `${base}Context`), "<DB = unknown> = ", transactionContext, "<DB>;");
      f.print();
      f.print(f.jsDoc(`What handlers of \`${app.name}\` get without a store: nothing more.`));
      f.print(f.export("type", `${base}AtLeastOnceContext`), " = object;");
    }
    f.print();
    f.print(
      f.jsDoc(
        `The business logic of application \`${app.name}\`: one method per consumer rpc of ${service.typeName}. ` +
          "Return to ack; throw to nack (Pub/Sub redelivers with the subscription's backoff, then dead-letters after max delivery attempts); " +
          "throw a PermanentError to dead-letter at once.\n\n" +
          `With a store (\`subscribe${base}\`), each event's effects happen once: the inbox claim, the writes through \`context.tx\` and the events of \`context.publisher\` commit together, and a duplicate never reaches the handler. ` +
          `Without one (\`subscribe${base}AtLeastOnce\`), delivery is at least once: the same event (same \`context.envelope.id\`) can arrive again and the handler must tolerate it.`,
      ),
    );
    f.print(f.export("interface", `${base}Handlers`), `<Context = ${base}Context> {`);
    for (const sub of app.subscriptions) {
      const rpcComment = leadingComment(sub.method);
      const settings = `Subscription \`${sub.name}\`: ${sub.maxDeliveryAttempts} delivery attempts, ack deadline ${sub.ackDeadlineSeconds} s, backoff ${sub.minBackoffSeconds}–${sub.maxBackoffSeconds} s${sub.ordered ? ", ordered" : ""}${sub.deadLetterIds === undefined ? ", no dead-letter topic" : `, dead letters to \`${sub.deadLetterIds.topic}\``}.`;
      f.print(f.jsDoc(`${rpcComment === "" ? "" : `${rpcComment}\n\n`}${settings}`, "  "));
      f.print(
        `  ${camel(sub.method.name)}(event: `,
        ...this.validOf(sub.event.desc),
        ", context: ",
        handlerContext,
        "<typeof ",
        f.importSchema(sub.event.desc, true),
        "> & Context): Promise<void> | void;",
      );
    }
    f.print("}");
    f.print();
    const names = app.subscriptions.map((s) => `\`${s.name}\``).join(", ");
    const store = this.rt("Store", true);
    const consumerOptions = this.rt("ConsumerOptions", true);
    const consumer = this.rt("Consumer", true);
    f.print(
      f.jsDoc(
        `Consume every subscription of application \`${app.name}\` (${names}) with exactly-once effects: each delivery runs in a transaction of \`options.store\` that claims the event in the inbox first. Close the returned consumer to stop gracefully.`,
      ),
    );
    f.print(
      f.export("function", `subscribe${base}`),
      "<DB>(pubsub: ",
      pubsub,
      `, handlers: ${base}Handlers<${base}Context<DB>>, options: `,
      consumerOptions,
      " & { readonly store: ",
      store,
      "<DB> }): ",
      consumer,
      " {",
    );
    f.print(
      `  const context = (tx: `,
      this.rt("StoreTransaction", true),
      `<DB>): ${base}Context<DB> => (${publishes ? `{ tx, publisher: ${camel(base)}Outbox(tx) }` : "{ tx }"});`,
    );
    f.print("  return ", this.rt("startConsumer"), "(pubsub, [");
    for (const sub of app.subscriptions) {
      const method = camel(sub.method.name);
      f.print(
        "    ",
        this.rt("bindHandler"),
        `(${base}Subscriptions.${method}, (event, c) => handlers.${method}(event as `,
        ...this.validOf(sub.event.desc),
        ", ",
        this.rt("withTransaction"),
        "(c, context))),",
      );
    }
    f.print("  ], options);");
    f.print("}");
    f.print();
    f.print(
      f.jsDoc(
        `Consume every subscription of application \`${app.name}\` (${names}) without a store: delivery is at least once, so a handler sees an event again after a redelivery and must tolerate duplicates. Close the returned consumer to stop gracefully.`,
      ),
    );
    f.print(
      f.export("function", `subscribe${base}AtLeastOnce`),
      "(pubsub: ",
      pubsub,
      `, handlers: ${base}Handlers<${base}AtLeastOnceContext>, options?: Omit<`,
      consumerOptions,
      ', "store">): ',
      consumer,
      " {",
    );
    if (publishes) {
      f.print(
        `  const publisher = create${base}Publisher(pubsub, options?.logger === undefined ? {} : { logger: options.logger });`,
      );
    }
    f.print("  return ", this.rt("startConsumer"), "(pubsub, [");
    for (const sub of app.subscriptions) {
      const method = camel(sub.method.name);
      f.print(
        "    ",
        this.rt("bindHandler"),
        `(${base}Subscriptions.${method}, (event, c) => handlers.${method}(event as `,
        ...this.validOf(sub.event.desc),
        publishes ? ", { ...c, publisher }))," : ", c)),",
      );
    }
    f.print("  ], options);");
    f.print("}");
    f.print();
  }

  private joined(items: Printable[]): Printable[] {
    const out: Printable[] = [];
    items.forEach((item, i) => {
      if (i > 0) {
        out.push(", ");
      }
      out.push(item);
    });
    return out;
  }
}
