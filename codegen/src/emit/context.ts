/**
 * What every emitter of one generated file works with: the file being
 * printed, the contract model, the analysis, the names, and the symbols
 * generated code imports from the runtime and from Pub/Sub.
 *
 * Every import goes through protoplugin (`f.import*`): no emitter prints an
 * import line or a relative path of its own.
 */
import type { DescFile } from "@bufbuild/protobuf";
import {
  type GeneratedFile,
  getComments,
  type ImportSymbol,
  type Printable,
} from "@bufbuild/protoplugin";
import type { ContractModel } from "../model.js";
import type { Analysis } from "./analysis.js";
import { type GeneratedNames, generatedNames } from "./names.js";

/** Options of the emitter that come from plugin parameters. */
export interface EmitOptions {
  /** Module the generated code imports the runtime from. */
  readonly runtime: string;
}

/** One generated `<file>_pe.ts` being printed. */
export interface FileContext {
  readonly f: GeneratedFile;
  /** The proto file the output is generated for. */
  readonly file: DescFile;
  readonly model: ContractModel;
  readonly analysis: Analysis;
  readonly names: GeneratedNames;
  /** The `PubSub` client type. */
  readonly pubsub: Printable;
  /** A symbol of the runtime module (the `runtime` plugin parameter). */
  rt(name: string, typeOnly?: boolean): ImportSymbol;
}

export function createFileContext(
  f: GeneratedFile,
  file: DescFile,
  model: ContractModel,
  analysis: Analysis,
  options: EmitOptions,
): FileContext {
  return {
    f,
    file,
    model,
    analysis,
    names: generatedNames(f, file),
    pubsub: f.import("PubSub", "@google-cloud/pubsub", true),
    rt: (name, typeOnly = false) => f.import(name, options.runtime, typeOnly),
  };
}

/** The leading comment of an element, without the space after each `//`. */
export function leadingComment(desc: Parameters<typeof getComments>[0]): string {
  return (getComments(desc).leading ?? "")
    .split("\n")
    .map((line) => (line.startsWith(" ") ? line.slice(1) : line))
    .join("\n")
    .trim();
}
