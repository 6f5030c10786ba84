import type { DescField, DescMessage, DescMethod, DescService } from "@bufbuild/protobuf";
import { getComments } from "@bufbuild/protoplugin";
import { fileOf, type OptionName, optionNumber } from "./options.js";

/** A position in a .proto file, 1-based like editors and compilers print it. */
export interface SourceLocation {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

type Located = DescMessage | DescField | DescService | DescMethod;

/** Field numbers of `options` in the descriptor protos, to extend a source path into an option. */
const OPTIONS_FIELD: Record<Located["kind"], number> = {
  message: 7, // DescriptorProto.options
  field: 8, // FieldDescriptorProto.options
  service: 3, // ServiceDescriptorProto.options
  rpc: 4, // MethodDescriptorProto.options
};

/** MethodDescriptorProto.input_type and output_type. */
export const METHOD_INPUT_TYPE = 2;
export const METHOD_OUTPUT_TYPE = 3;

/**
 * Where an element, or a part of it, is declared. `subPath` continues the
 * element's source path (e.g. `[METHOD_INPUT_TYPE]`); see {@link optionPath}
 * for options. When the compiler kept no location for the exact path, the
 * closest enclosing one is used.
 */
export function locate(
  desc: Located,
  subPath: readonly number[] = [],
  prefix = "",
): SourceLocation {
  const file = fileOf(desc);
  const base = getComments(desc).sourcePath;
  const locations = file.proto.sourceCodeInfo?.location ?? [];
  for (let length = base.length + subPath.length; length >= base.length; length--) {
    const path = [...base, ...subPath].slice(0, length);
    const found = locations.find(
      (l) => l.path.length === path.length && l.path.every((n, i) => n === path[i]),
    );
    if (found !== undefined && found.span.length >= 3) {
      return {
        file: `${prefix + file.name}.proto`,
        line: (found.span[0] ?? 0) + 1,
        column: (found.span[1] ?? 0) + 1,
      };
    }
  }
  return { file: `${prefix + file.name}.proto`, line: 1, column: 1 };
}

/** The source sub-path of an option of an element: `[options, extension, ...fields]`. */
export function optionPath(
  desc: Located,
  option: OptionName,
  ...fields: number[]
): readonly number[] {
  return [OPTIONS_FIELD[desc.kind], optionNumber(desc, option), ...fields];
}

/** `file:line:column`. */
export function formatLocation(location: SourceLocation): string {
  return `${location.file}:${location.line}:${location.column}`;
}
