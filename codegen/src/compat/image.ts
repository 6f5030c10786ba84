/**
 * Reading a buf image (what `buf build` writes and every release keeps) into
 * protobuf-es descriptors. A buf image is wire-compatible with
 * `google.protobuf.FileDescriptorSet`; our custom options stay in the
 * options messages and are read through `options.ts` like in the plugin.
 */
import {
  createFileRegistry,
  type DescFile,
  type FileRegistry,
  fromBinary,
} from "@bufbuild/protobuf";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { type FileDescriptorProto, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { Code, ProtoeventsError } from "@protoevents/runtime/errors";

/** The files of an image as descriptors. */
export interface ContractImage {
  /** The module's own files (not its imports). */
  readonly files: readonly DescFile[];
  /** Every file, imports included (e.g. `google/protobuf/timestamp.proto`). */
  readonly allFiles: readonly DescFile[];
  /** Every file, message, enum and extension of the image, e.g. for JSON with `Any`. */
  readonly registry: FileRegistry;
}

/** `ImageFile.buf_extension` in buf's image.proto; its field 1 is `is_import`. */
const BUF_EXTENSION_FIELD = 8042;

/** Whether buf marked the file as an import of the module (from a dependency or buf's WKTs). */
function isImport(file: FileDescriptorProto): boolean {
  for (const unknown of file.$unknown ?? []) {
    if (unknown.no !== BUF_EXTENSION_FIELD) {
      continue;
    }
    const reader = new BinaryReader(unknown.data);
    // data is the length-delimited field itself: skip its length prefix.
    const end = reader.uint32() + reader.pos;
    while (reader.pos < end) {
      const [no, wireType] = reader.tag();
      if (no === 1) {
        return reader.bool();
      }
      reader.skip(wireType, no);
    }
    return false;
  }
  // A plain FileDescriptorSet: only the well-known types are imports here.
  return file.name.startsWith("google/protobuf/");
}

/** Parse a buf image (or a FileDescriptorSet) into descriptors. */
export function readImage(bytes: Uint8Array, origin = "image"): ContractImage {
  try {
    const set = fromBinary(FileDescriptorSetSchema, bytes);
    const imports = new Set(set.file.filter(isImport).map((f) => f.name));
    const registry = createFileRegistry(set);
    const allFiles = set.file.map((f) => {
      const desc = registry.getFile(f.name);
      if (desc === undefined) {
        throw new Error(`file ${f.name} is missing from the registry`);
      }
      return desc;
    });
    return { allFiles, files: allFiles.filter((f) => !imports.has(f.proto.name)), registry };
  } catch (cause) {
    throw new ProtoeventsError(
      Code.InvalidContract,
      `${origin} is not a readable buf image: ${(cause as Error).message}`,
      { cause },
    );
  }
}
