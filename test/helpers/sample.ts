import {
  create,
  type DescField,
  type DescMessage,
  type MessageShape,
  ScalarType,
} from "@bufbuild/protobuf";

/**
 * A message with every field set to a non-default value (two items per list,
 * one entry per map, the first member of each oneof), for round-trip tests.
 * It does not try to satisfy field rules.
 */
export function sampleOf<Desc extends DescMessage>(desc: Desc, depth = 0): MessageShape<Desc> {
  return create(desc, sampleInit(desc, depth) as never);
}

function sampleInit(desc: DescMessage, depth: number): Record<string, unknown> {
  const init: Record<string, unknown> = {};
  for (const member of desc.members) {
    if (member.kind === "oneof") {
      const first = member.fields[0];
      if (first !== undefined) {
        init[member.localName] = { case: first.localName, value: sampleValue(first, depth, 0) };
      }
      continue;
    }
    const field = member;
    switch (field.fieldKind) {
      case "list":
        init[field.localName] = [sampleValue(field, depth, 0), sampleValue(field, depth, 1)];
        break;
      case "map":
        init[field.localName] = { k1: sampleValue(field, depth, 0) };
        break;
      default:
        init[field.localName] = sampleValue(field, depth, 0);
    }
  }
  return init;
}

function scalarValue(scalar: ScalarType, field: DescField, n: number): unknown {
  switch (scalar) {
    case ScalarType.STRING:
      return `${field.name}-${n + 1}`;
    case ScalarType.BYTES:
      return new Uint8Array([n + 1, 2, 3]);
    case ScalarType.BOOL:
      return true;
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return BigInt(1_700_000_000 + n); // also a valid Timestamp.seconds
    case ScalarType.FLOAT:
    case ScalarType.DOUBLE:
      return 1.5 + n;
    default:
      return 7 + n;
  }
}

function sampleValue(field: DescField, depth: number, n: number): unknown {
  const enumDesc = field.enum;
  if (enumDesc !== undefined) {
    return (enumDesc.values.find((v) => v.number !== 0) ?? enumDesc.values[0])?.number ?? 0;
  }
  const message = field.message;
  if (message !== undefined) {
    return depth >= 3 ? {} : sampleInit(message, depth + 1);
  }
  const scalar = field.fieldKind === "map" ? field.scalar : field.scalar;
  return scalarValue(scalar ?? ScalarType.STRING, field, n);
}
