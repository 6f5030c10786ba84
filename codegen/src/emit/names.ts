/**
 * Every identifier protoc-gen-protoevents prints, and the module each one
 * lives in. The emitters, the registry, and any tool that refers to generated
 * code by name (`protoevents sync` looks for `…Handlers`) ask here, so a
 * rename happens in one place and they cannot drift apart.
 *
 * A message's names start from the shape name protoc-gen-es gives it
 * (`OrderPlaced`, or `Outer_Inner` for a nested message). protoplugin decides
 * that name, and `f.importShape(message).name` reads it. An application's
 * names start from its service's short name, and a handler method's name
 * from its rpc.
 */
import type { DescFile, DescMessage, DescService } from "@bufbuild/protobuf";
import type { GeneratedFile, Printable } from "@bufbuild/protoplugin";

/** What protoc-gen-protoevents appends to a proto file's name: `order_events.proto` → `order_events_pe.ts`. */
export const GENERATED_FILE_SUFFIX = "_pe";

/** A module specifier of a generated module, with or without its extension. */
const GENERATED_MODULE = new RegExp(`${GENERATED_FILE_SUFFIX}(\\.[jt]s)?$`);

/** The file name of our output for a proto file, without extension. */
export function peFileName(file: DescFile): string {
  return `${file.name}${GENERATED_FILE_SUFFIX}`;
}

/**
 * The module generated code imports a file's symbols from. It is relative to
 * the output root; protoplugin makes it relative to the importing file and
 * applies `import_extension`.
 */
export function peModule(file: DescFile): string {
  return `./${peFileName(file)}.js`;
}

/** Whether a module specifier names a module protoc-gen-protoevents wrote, e.g. `../gen/shop_pe.js`. */
export function isGeneratedModule(specifier: string): boolean {
  return GENERATED_MODULE.test(specifier);
}

/** What is generated for a message that has field rules. */
export interface MessageNames {
  /** The type producers pass, e.g. `OrderPlacedInput`. */
  readonly input: string;
  /** The type consumers receive once the rules passed, e.g. `OrderPlacedValid`. */
  readonly valid: string;
  /** The public validator, e.g. `validateOrderPlaced`. */
  readonly validator: string;
  /** The allocation-free checker behind it, also called across files, e.g. `checkOrderPlaced`. */
  readonly checker: string;
}

/** Names of a message's types and validator, from its shape name. */
export function messageNames(shape: string): MessageNames {
  return {
    input: `${shape}Input`,
    valid: `${shape}Valid`,
    validator: `validate${shape}`,
    checker: `check${shape}`,
  };
}

/** What is generated for an event. */
export interface EventNames {
  /** e.g. `ORDER_PLACED_TOPIC`. */
  readonly topicConstant: string;
  /** e.g. `ORDER_PLACED_TYPE`. */
  readonly typeConstant: string;
  /** The event contract, e.g. `OrderPlacedEvent`. */
  readonly contract: string;
  /** e.g. `encodeOrderPlaced`. */
  readonly encode: string;
  /** e.g. `decodeOrderPlaced`. */
  readonly decode: string;
  /** The method of a typed publisher, e.g. `publishOrderPlaced`. */
  readonly publish: string;
}

/** Names of an event's constants, contract, codecs and publish method, from its shape name. */
export function eventNames(shape: string): EventNames {
  const constant = screaming(shape);
  return {
    topicConstant: `${constant}_TOPIC`,
    typeConstant: `${constant}_TYPE`,
    contract: `${shape}Event`,
    encode: `encode${shape}`,
    decode: `decode${shape}`,
    publish: `publish${shape}`,
  };
}

/** The module-level constant holding a pattern rule's matcher, e.g. `PATTERN_Money_currency`. */
export function patternConstantName(shape: string, field: string): string {
  return `PATTERN_${shape}_${field}`.replace(/[^A-Za-z0-9_$]/g, "_");
}

/** What is generated for an application (a service with the application option). */
export interface ApplicationNames {
  /** e.g. `PaymentServiceSubscriptions`. */
  readonly subscriptions: string;
  /** e.g. `PaymentServiceApplication`. */
  readonly application: string;
  /** e.g. `PaymentServicePublisher`. */
  readonly publisher: string;
  /** e.g. `bindPaymentServicePublisher`. */
  readonly bindPublisher: string;
  /** e.g. `createPaymentServicePublisher`. */
  readonly createPublisher: string;
  /** e.g. `paymentServiceOutbox`. */
  readonly outbox: string;
  /** e.g. `PaymentServiceContext`. */
  readonly context: string;
  /** e.g. `PaymentServiceAtLeastOnceContext`. */
  readonly atLeastOnceContext: string;
  /** e.g. `PaymentServiceHandlers`. */
  readonly handlers: string;
  /** e.g. `subscribePaymentService`. */
  readonly subscribe: string;
  /** e.g. `subscribePaymentServiceAtLeastOnce`. */
  readonly subscribeAtLeastOnce: string;
}

/** Names of an application's generated code, from its service's short name (`PaymentService`). */
export function applicationNames(service: string): ApplicationNames {
  return {
    subscriptions: `${service}Subscriptions`,
    application: `${service}Application`,
    publisher: `${service}Publisher`,
    bindPublisher: `bind${service}Publisher`,
    createPublisher: `create${service}Publisher`,
    outbox: `${camel(service)}Outbox`,
    context: `${service}Context`,
    atLeastOnceContext: `${service}AtLeastOnceContext`,
    handlers: `${service}Handlers`,
    subscribe: `subscribe${service}`,
    subscribeAtLeastOnce: `subscribe${service}AtLeastOnce`,
  };
}

/**
 * The handler method of a consumer rpc, also its key in `…Subscriptions`:
 * `ChargeOrder` → `chargeOrder`.
 */
export function handlerMethodName(rpc: string): string {
  return camel(rpc);
}

/** The names of generated code as one generated file refers to it. */
export interface GeneratedNames {
  /** The shape name protoc-gen-es gives a message, which its other names start from. */
  shape(message: DescMessage): string;
  message(message: DescMessage): MessageNames;
  event(message: DescMessage): EventNames;
  application(service: DescService): ApplicationNames;
  /**
   * A symbol generated for `owner`: the bare name inside the owner's own
   * module, an import from it anywhere else.
   */
  ref(owner: DescMessage | DescService, name: string, typeOnly?: boolean): Printable;
}

/**
 * Names as the generated file `f` refers to them.
 *
 * @param here the proto file whose module `f` is; undefined for the registry,
 *   which imports every symbol it names.
 */
export function generatedNames(f: GeneratedFile, here?: DescFile): GeneratedNames {
  const shape = (message: DescMessage) => f.importShape(message).name;
  return {
    shape,
    message: (message) => messageNames(shape(message)),
    event: (message) => eventNames(shape(message)),
    application: (service) => applicationNames(service.name),
    ref(owner, name, typeOnly = false) {
      return owner.file === here ? name : f.import(name, peModule(owner.file), typeOnly);
    },
  };
}

/** `SCREAMING_CASE` of a shape name. */
function screaming(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/([A-Z])([A-Z][a-z])/g, "$1_$2")
    .toUpperCase();
}

/** `camelCase` of a PascalCase name. */
function camel(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}
