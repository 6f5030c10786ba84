/**
 * The only module that reads protoevents' custom options. Everything else
 * asks these predicates and never touches the raw option messages.
 *
 * The extensions are looked up in the contracts' own copy of
 * `protoevents/v1/options.proto` (by name), so a repository that moved them to
 * other numbers (`extensionNumbers` in protoevents.json) is read correctly;
 * the compiled-in ones (51800–51804) serve when the numbers match or the file
 * imports no copy at all.
 */
import {
  type DescExtension,
  type DescField,
  type DescFile,
  type DescMessage,
  type DescMethod,
  type DescService,
  getOption,
  hasOption,
} from "@bufbuild/protobuf";
import {
  type ApplicationOptions,
  application,
  Compatibility,
  type ContractDefaults,
  defaults,
  type EventOptions,
  event,
  type FieldRules,
  rules,
  type SubscriptionOptions,
  subscription,
} from "./gen/protoevents/v1/options_pb.js";

export type { ApplicationOptions, ContractDefaults, EventOptions, FieldRules, SubscriptionOptions };

/** The five extensions, as one set of contracts numbers them. */
interface OptionExtensions {
  readonly event: typeof event;
  readonly application: typeof application;
  readonly subscription: typeof subscription;
  readonly rules: typeof rules;
  readonly defaults: typeof defaults;
}

const COMPILED: OptionExtensions = { event, application, subscription, rules, defaults };
const NAMES = ["event", "application", "subscription", "rules", "defaults"] as const;

/** One of protoevents' five options. */
export type OptionName = (typeof NAMES)[number];
const byFile = new WeakMap<DescFile, OptionExtensions>();

/** Every extension of `protoevents.v1` in the file or the files it imports, by short name. */
function findExtensions(file: DescFile): Map<string, DescExtension> {
  const found = new Map<string, DescExtension>();
  const seen = new Set<DescFile>();
  const queue = [file];
  while (queue.length > 0) {
    const next = queue.pop() as DescFile;
    if (seen.has(next)) {
      continue;
    }
    seen.add(next);
    if (next.proto.package === "protoevents.v1") {
      for (const ext of next.extensions) {
        found.set(ext.name, ext);
      }
    }
    queue.push(...next.dependencies);
  }
  return found;
}

function extensionsOf(file: DescFile): OptionExtensions {
  let known = byFile.get(file);
  if (known === undefined) {
    const found = findExtensions(file);
    const renumbered = NAMES.some((name) => {
      const ext = found.get(name);
      return ext !== undefined && ext.number !== COMPILED[name].number;
    });
    known = renumbered
      ? // The copy's extensions have the compiled messages' fields, only other
        // numbers: the values they read have the same shape.
        {
          event: (found.get("event") ?? event) as typeof event,
          application: (found.get("application") ?? application) as typeof application,
          subscription: (found.get("subscription") ?? subscription) as typeof subscription,
          rules: (found.get("rules") ?? rules) as typeof rules,
          defaults: (found.get("defaults") ?? defaults) as typeof defaults,
        }
      : COMPILED;
    byFile.set(file, known);
  }
  return known;
}

/** An element that carries one of our options. */
type Element = DescMessage | DescService | DescMethod | DescField;

/** The file that declares an element. */
export function fileOf(desc: Element): DescFile {
  switch (desc.kind) {
    case "message":
    case "service":
      return desc.file;
    case "rpc":
      return desc.parent.file;
    case "field":
      return desc.parent.file;
  }
}

/** Whether the message is an event (has the `(protoevents.v1.event)` option). */
export function isEvent(message: DescMessage): boolean {
  return hasOption(message, extensionsOf(message.file).event);
}

/** The event option of a message, or undefined when it is not an event. */
export function getEventOptions(message: DescMessage): EventOptions | undefined {
  const ext = extensionsOf(message.file).event;
  return hasOption(message, ext) ? getOption(message, ext) : undefined;
}

/** The application option of a service, or undefined when it is not an application. */
export function getApplicationOptions(service: DescService): ApplicationOptions | undefined {
  const ext = extensionsOf(service.file).application;
  return hasOption(service, ext) ? getOption(service, ext) : undefined;
}

/** Whether the rpc sets the subscription option. */
export function hasSubscriptionOptions(method: DescMethod): boolean {
  return hasOption(method, extensionsOf(method.parent.file).subscription);
}

/** The subscription option of an rpc; all defaults when it is not set. */
export function getSubscriptionOptions(method: DescMethod): SubscriptionOptions {
  return getOption(method, extensionsOf(method.parent.file).subscription);
}

/** The field rules of a field, or undefined when it has none. */
export function getFieldRules(field: DescField): FieldRules | undefined {
  const ext = extensionsOf(field.parent.file).rules;
  return hasOption(field, ext) ? getOption(field, ext) : undefined;
}

/** The field number of an option's extension where `desc` is declared, for locating it in the source. */
export function optionNumber(desc: Element, option: OptionName): number {
  return extensionsOf(fileOf(desc))[option].number;
}

/** The number of one of our extensions as a file's contracts number it. */
export function optionNumberOfFile(file: DescFile, option: OptionName): number {
  return extensionsOf(file)[option].number;
}

/** The package defaults a file declares (`(protoevents.v1.defaults)`), or undefined. */
export function getContractDefaults(file: DescFile): ContractDefaults | undefined {
  const ext = extensionsOf(file).defaults;
  return hasOption(file, ext) ? getOption(file, ext) : undefined;
}

/** The compatibility mode a file sets for its package, or undefined. */
export function fileCompatibility(file: DescFile): CompatibilityMode | undefined {
  const declared = getContractDefaults(file);
  return declared === undefined ? undefined : compatibilityMode(declared.compatibility);
}

/** A compatibility mode as Schema Registry names it. */
export type CompatibilityMode =
  | "BACKWARD"
  | "BACKWARD_TRANSITIVE"
  | "FORWARD"
  | "FORWARD_TRANSITIVE"
  | "FULL"
  | "FULL_TRANSITIVE";

/** Every mode, in the order reports list them. */
export const COMPATIBILITY_MODES: readonly CompatibilityMode[] = [
  "BACKWARD",
  "BACKWARD_TRANSITIVE",
  "FORWARD",
  "FORWARD_TRANSITIVE",
  "FULL",
  "FULL_TRANSITIVE",
];

/** The mode of events that declare none in a package that declares none: any deploy order, every release. */
export const DEFAULT_COMPATIBILITY: CompatibilityMode = "FULL_TRANSITIVE";

/** The mode an enum value stands for; undefined for UNSPECIFIED (and unknown numbers). */
export function compatibilityMode(value: Compatibility): CompatibilityMode | undefined {
  switch (value) {
    case Compatibility.BACKWARD:
      return "BACKWARD";
    case Compatibility.BACKWARD_TRANSITIVE:
      return "BACKWARD_TRANSITIVE";
    case Compatibility.FORWARD:
      return "FORWARD";
    case Compatibility.FORWARD_TRANSITIVE:
      return "FORWARD_TRANSITIVE";
    case Compatibility.FULL:
      return "FULL";
    case Compatibility.FULL_TRANSITIVE:
      return "FULL_TRANSITIVE";
    default:
      return undefined;
  }
}

/** A package's `(protoevents.v1.defaults)`: the mode and the first file that declares it. */
export interface PackageDefaults {
  readonly compatibility: CompatibilityMode;
  readonly file: DescFile;
}

/** Each package's `(protoevents.v1.defaults)`, from the first of its files that sets a mode. */
export function packageDefaultsOf(files: readonly DescFile[]): Map<string, PackageDefaults> {
  const out = new Map<string, PackageDefaults>();
  for (const file of files) {
    const mode = fileCompatibility(file);
    if (mode !== undefined && !out.has(file.proto.package)) {
      out.set(file.proto.package, { compatibility: mode, file });
    }
  }
  return out;
}
