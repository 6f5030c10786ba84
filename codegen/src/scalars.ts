/**
 * What a field's kind means for the values it holds, shared by the model's
 * checks, the printed validators, the golden samples and the gate's reading
 * of rules, so that "set", "64-bit" and "the scalar of a list" mean the same
 * everywhere.
 */
import { type DescField, ScalarType } from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";

/** The 64-bit integer scalars: `bigint` in TypeScript (or `string` with `jstype = JS_STRING`). */
export const INT64_SCALARS: ReadonlySet<ScalarType> = new Set([
  ScalarType.INT64,
  ScalarType.UINT64,
  ScalarType.SINT64,
  ScalarType.FIXED64,
  ScalarType.SFIXED64,
]);

/** Whether the field is a 64-bit integer (singular or list). */
export function is64(field: DescField): boolean {
  return field.scalar !== undefined && INT64_SCALARS.has(field.scalar);
}

/** The scalar of a singular or list field; undefined for enums, messages and maps. */
export function scalarOf(field: DescField): ScalarType | undefined {
  if (field.fieldKind === "scalar") {
    return field.scalar;
  }
  if (field.fieldKind === "list" && field.listKind === "scalar") {
    return field.scalar;
  }
  return undefined;
}

/**
 * Whether a singular scalar or enum field outside a oneof has explicit
 * presence (`optional`): unset is `undefined`, not the zero value.
 */
export function isExplicitScalar(field: DescField): boolean {
  return (
    (field.fieldKind === "scalar" || field.fieldKind === "enum") &&
    field.oneof === undefined &&
    field.presence === FeatureSet_FieldPresence.EXPLICIT
  );
}
