/**
 * JSON Schemas (draft 07, as AsyncAPI schema objects) of the catalog's
 * messages and enums: the proto3 JSON form of each payload, with the
 * comments as descriptions, the field rules as schema keywords where JSON
 * Schema has one (`required`, lengths, pattern, item counts, 32-bit ranges),
 * every rule also in `x-protoevents-rules`, and `pii` fields marked `x-pii`.
 */
import { type DescField, ScalarType } from "@bufbuild/protobuf";
import type { FieldRules } from "../options.js";
import {
  type Catalog,
  type CatalogField,
  type CatalogMessage,
  isWellKnown,
} from "./load-catalog.js";

/** A JSON Schema object. */
export type JsonSchema = { [keyword: string]: unknown };

/** Where {@link catalogSchemas} puts the schemas: `$ref` targets are `<prefix><type name>`. */
export const SCHEMA_REF_PREFIX = "#/components/schemas/";

const int64Scalars: ReadonlySet<ScalarType> = new Set([
  ScalarType.INT64,
  ScalarType.SINT64,
  ScalarType.SFIXED64,
]);
const uint64Scalars: ReadonlySet<ScalarType> = new Set([ScalarType.UINT64, ScalarType.FIXED64]);
const int32Scalars: ReadonlySet<ScalarType> = new Set([
  ScalarType.INT32,
  ScalarType.SINT32,
  ScalarType.SFIXED32,
  ScalarType.UINT32,
  ScalarType.FIXED32,
]);

/** The schema of a scalar in proto3 JSON: 64-bit integers are decimal strings, bytes base64. */
function scalarSchema(scalar: ScalarType, rules: FieldRules | undefined): JsonSchema {
  if (int64Scalars.has(scalar) || uint64Scalars.has(scalar)) {
    return {
      type: "string",
      format: uint64Scalars.has(scalar) ? "uint64" : "int64",
      pattern: uint64Scalars.has(scalar) ? "^[0-9]+$" : "^-?[0-9]+$",
    };
  }
  if (int32Scalars.has(scalar)) {
    const schema: JsonSchema = {
      type: "integer",
      format: scalar === ScalarType.UINT32 || scalar === ScalarType.FIXED32 ? "uint32" : "int32",
    };
    if (rules?.min !== undefined) {
      schema.minimum = Number(rules.min);
    }
    if (rules?.max !== undefined) {
      schema.maximum = Number(rules.max);
    }
    return schema;
  }
  switch (scalar) {
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT: {
      const schema: JsonSchema = { type: "number" };
      if (rules?.min !== undefined) {
        schema.minimum = Number(rules.min);
      }
      if (rules?.max !== undefined) {
        schema.maximum = Number(rules.max);
      }
      return schema;
    }
    case ScalarType.BOOL:
      return { type: "boolean" };
    case ScalarType.BYTES: {
      // Lengths of bytes count bytes, not base64 characters: rules only in x-protoevents-rules.
      return { type: "string", contentEncoding: "base64" };
    }
    default: {
      const schema: JsonSchema = { type: "string" };
      if (rules?.minLen !== undefined) {
        schema.minLength = rules.minLen;
      }
      if (rules?.maxLen !== undefined) {
        schema.maxLength = rules.maxLen;
      }
      if (rules !== undefined && rules.pattern !== "") {
        schema.pattern = rules.pattern;
      }
      return schema;
    }
  }
}

/** The JSON form of a well-known type. */
function wellKnownSchema(typeName: string): JsonSchema {
  switch (typeName) {
    case "google.protobuf.Timestamp":
      return { type: "string", format: "date-time" };
    case "google.protobuf.Duration":
      return { type: "string", pattern: "^-?[0-9]+(\\.[0-9]{1,9})?s$" };
    case "google.protobuf.Empty":
      return { type: "object" };
    case "google.protobuf.Struct":
      return { type: "object" };
    case "google.protobuf.StringValue":
    case "google.protobuf.BytesValue":
    case "google.protobuf.Int64Value":
    case "google.protobuf.UInt64Value":
      return { type: "string" };
    case "google.protobuf.BoolValue":
      return { type: "boolean" };
    case "google.protobuf.Int32Value":
    case "google.protobuf.UInt32Value":
      return { type: "integer" };
    case "google.protobuf.DoubleValue":
    case "google.protobuf.FloatValue":
      return { type: "number" };
    default:
      return {};
  }
}

function refOrInline(typeName: string): JsonSchema {
  return isWellKnown(typeName)
    ? wellKnownSchema(typeName)
    : { $ref: `${SCHEMA_REF_PREFIX}${typeName}` };
}

/** The schema of one value of the field (an item, for lists and maps). */
function valueSchema(field: DescField, rules: FieldRules | undefined): JsonSchema {
  switch (field.fieldKind) {
    case "scalar":
      return scalarSchema(field.scalar, rules);
    case "enum":
      return refOrInline(field.enum.typeName);
    case "message":
      return refOrInline(field.message.typeName);
    case "list":
      return field.listKind === "scalar"
        ? scalarSchema(field.scalar, rules)
        : refOrInline(field.listKind === "enum" ? field.enum.typeName : field.message.typeName);
    case "map":
      return field.mapKind === "scalar"
        ? scalarSchema(field.scalar, undefined)
        : refOrInline(field.mapKind === "enum" ? field.enum.typeName : field.message.typeName);
  }
}

/** The rules as they are in the contract, for tools that want them exactly. */
function rulesExtension(rules: FieldRules): JsonSchema {
  const out: JsonSchema = {};
  if (rules.required) {
    out.required = true;
  }
  for (const key of ["minLen", "maxLen", "minItems", "maxItems"] as const) {
    if (rules[key] !== undefined) {
      out[key] = rules[key];
    }
  }
  if (rules.min !== undefined) {
    out.min = rules.min.toString();
  }
  if (rules.max !== undefined) {
    out.max = rules.max.toString();
  }
  if (rules.pattern !== "") {
    out.pattern = rules.pattern;
  }
  if (rules.pii) {
    out.pii = true;
  }
  return out;
}

function fieldSchema(field: CatalogField): JsonSchema {
  const rules = field.fieldRules;
  const desc = field.desc;
  let schema: JsonSchema;
  if (desc.fieldKind === "list") {
    schema = { type: "array", items: valueSchema(desc, rules) };
    if (rules?.minItems !== undefined) {
      schema.minItems = rules.minItems;
    }
    if (rules?.maxItems !== undefined) {
      schema.maxItems = rules.maxItems;
    }
  } else if (desc.fieldKind === "map") {
    schema = { type: "object", additionalProperties: valueSchema(desc, rules) };
    if (rules?.minItems !== undefined) {
      schema.minProperties = rules.minItems;
    }
    if (rules?.maxItems !== undefined) {
      schema.maxProperties = rules.maxItems;
    }
  } else {
    schema = valueSchema(desc, rules);
  }
  // Keywords beside a $ref are ignored in draft 07: wrap the reference.
  if (schema.$ref !== undefined) {
    schema = { allOf: [schema] };
  }
  if (field.comment !== "") {
    schema.description = field.comment;
  }
  if (field.pii) {
    schema["x-pii"] = true;
  }
  if (rules !== undefined) {
    schema["x-protoevents-rules"] = rulesExtension(rules);
  }
  schema["x-proto-field"] = { name: field.name, number: field.number, type: field.type };
  return schema;
}

/** The schema of a message: an object of its fields by JSON name, the required ones listed. */
export function messageSchema(message: CatalogMessage): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  const required: string[] = [];
  for (const field of message.fields) {
    properties[field.jsonName] = fieldSchema(field);
    if (field.required) {
      required.push(field.jsonName);
    }
  }
  const schema: JsonSchema = { type: "object", title: message.typeName };
  if (message.comment !== "") {
    schema.description = message.comment;
  }
  schema.properties = properties;
  if (required.length > 0) {
    schema.required = required;
  }
  return schema;
}

/**
 * The schema of every event, every message they contain and every enum,
 * keyed by full proto name; references between them point into the same map
 * ({@link SCHEMA_REF_PREFIX}).
 */
export function catalogSchemas(catalog: Catalog): Record<string, JsonSchema> {
  const schemas: Record<string, JsonSchema> = {};
  for (const message of [...catalog.events, ...catalog.types]) {
    schemas[message.typeName] = messageSchema(message);
  }
  for (const e of catalog.enums) {
    const schema: JsonSchema = {
      type: "string",
      title: e.typeName,
      enum: e.values.map((v) => v.name),
    };
    const lines = e.values.filter((v) => v.comment !== "").map((v) => `- ${v.name}: ${v.comment}`);
    const description = [e.comment, ...lines].filter((t) => t !== "").join("\n");
    if (description !== "") {
      schema.description = description;
    }
    schemas[e.typeName] = schema;
  }
  return schemas;
}
