import type { DescField, DescFile, DescMessage, DescMethod, DescService } from "@bufbuild/protobuf";
import { getComments } from "@bufbuild/protoplugin";
import { fileOf, type OptionName, optionNumber, optionNumberOfFile } from "./options.js";

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
  const base = getComments(desc).sourcePath;
  return spanOf(fileOf(desc), [...base, ...subPath], base.length, prefix);
}

/**
 * The location of the longest prefix of `path` (at least `minLength` long)
 * that the compiler kept a span for; the file's first line when none.
 */
function spanOf(
  file: DescFile,
  path: readonly number[],
  minLength: number,
  prefix: string,
): SourceLocation {
  const locations = file.proto.sourceCodeInfo?.location ?? [];
  for (let length = path.length; length >= minLength; length--) {
    const wanted = path.slice(0, length);
    const found = locations.find(
      (l) => l.path.length === wanted.length && l.path.every((n, i) => n === wanted[i]),
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

/** FileDescriptorProto.options. */
const FILE_OPTIONS_FIELD = 8;

/**
 * Where a file option of ours (`option (protoevents.v1.defaults) = …`), or a
 * field inside it, is declared; the file's first line without source info.
 */
export function locateFileOption(
  file: DescFile,
  option: OptionName,
  prefix = "",
  ...fields: number[]
): SourceLocation {
  return spanOf(file, [FILE_OPTIONS_FIELD, optionNumberOfFile(file, option), ...fields], 2, prefix);
}
