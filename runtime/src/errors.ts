/**
 * Error codes of protoevents. Every error that crosses a module boundary is a
 * {@link ProtoeventsError} carrying one of these codes.
 */
export enum Code {
  /** A caller passed an argument or configuration that cannot work. */
  InvalidArgument = "invalid_argument",
  /** A contract (.proto) cannot work; refused by codegen. */
  InvalidContract = "invalid_contract",
  /** An event broke a field rule of its contract. Permanent. */
  ValidationFailed = "validation_failed",
  /** A payload could not be decoded as the contract's message. Permanent. */
  DecodeFailed = "decode_failed",
  /** A message's payload is larger than its contract's `max_bytes`. Permanent. */
  TooLarge = "too_large",
  /** A message carried a `ce-type` the subscription does not consume. Permanent. */
  UnknownEventType = "unknown_event_type",
  /**
   * A handler published (or wrote to its outbox) an event that breaks that
   * event's own contract: the handler's bug, not the incoming event's. Permanent.
   */
  OutgoingEventInvalid = "outgoing_event_invalid",
  /** A handler declared the event unprocessable. Permanent. */
  Permanent = "permanent",
  /** A handler failed; the event is redelivered. Retryable. */
  HandlerFailed = "handler_failed",
  /** Pub/Sub did not accept a publish. Retryable. */
  PublishFailed = "publish_failed",
  /** The service's store (SQLite or PostgreSQL) could not be reached or could not commit. Retryable. */
  StoreUnavailable = "store_unavailable",
  /** A Pub/Sub admin call (provisioning) failed. */
  PubSubUnavailable = "pubsub_unavailable",
  /** An existing resource differs in a way Pub/Sub cannot change in place. */
  ProvisioningConflict = "provisioning_conflict",
  /** The Pub/Sub emulator is not installed where we looked. */
  EmulatorNotFound = "emulator_not_found",
  /** The buf CLI (the `@bufbuild/buf` package) is not installed or cannot run. */
  BufNotFound = "buf_not_found",
  /** A protoevents configuration file (protoevents.json) is invalid or names a missing directory. */
  InvalidConfig = "invalid_config",
  /** The Pub/Sub emulator did not start or did not answer. */
  EmulatorFailed = "emulator_failed",
  /** The consumer or publisher was closed. */
  Closed = "closed",
  /** Anything not classified above. */
  Internal = "internal",
}

const permanentCodes: ReadonlySet<Code> = new Set([
  Code.TooLarge,
  Code.OutgoingEventInvalid,
  Code.ValidationFailed,
  Code.DecodeFailed,
  Code.UnknownEventType,
  Code.Permanent,
]);

/**
 * Whether a failure with this code must not be retried: the subscriber sends
 * such a message to the dead-letter topic at once instead of nacking it.
 */
export function isPermanentCode(code: Code): boolean {
  return permanentCodes.has(code);
}

/** One broken field rule: where, which rule, and why. */
export interface FieldViolation {
  /** Field path in proto names, e.g. `items[2].quantity`. */
  readonly path: string;
  /** The rule id: `required`, `min_len`, `max_len`, `pattern`, `min`, `max`, `min_items`, `max_items`. */
  readonly rule: string;
  /** A sentence for humans. */
  readonly message: string;
}

/** The result of validating a valid event: shared, frozen, allocation-free. */
export const NO_VIOLATIONS: readonly FieldViolation[] = Object.freeze([]);

/** Structured details an error may carry. */
export interface ErrorDetails {
  readonly violations?: readonly FieldViolation[];
  readonly [key: string]: unknown;
}

/**
 * The one error type of protoevents. The code is machine-readable and
 * stands in front of the message: `[validation_failed] …`.
 *
 * Use {@link ProtoeventsError.from} at every catch site on a boundary, and
 * {@link isProtoeventsError} rather than `instanceof` to identify one.
 */
export class ProtoeventsError extends Error {
  override name = "ProtoeventsError";
  /** The machine-readable code. */
  readonly code: Code;
  /** The message without the code prefix. */
  readonly rawMessage: string;
  /** Structured details, e.g. field violations. */
  readonly details: ErrorDetails;

  constructor(code: Code, message: string, options?: { cause?: unknown; details?: ErrorDetails }) {
    super(
      `[${code}] ${message}`,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.code = code;
    this.rawMessage = message;
    this.details = options?.details ?? {};
  }

  /** Whether the failure must not be retried (see {@link isPermanentCode}). */
  get permanent(): boolean {
    return isPermanentCode(this.code);
  }

  /**
   * Normalise anything thrown into a ProtoeventsError. A ProtoeventsError is
   * returned as is; anything else is wrapped with `code` (default Internal),
   * keeping the original as `cause`.
   */
  static from(reason: unknown, code: Code = Code.Internal): ProtoeventsError {
    if (isProtoeventsError(reason)) {
      return reason;
    }
    return new ProtoeventsError(code, reasonToString(reason), { cause: reason });
  }
}

/**
 * Throw this from a handler to say the event can never be processed (for
 * example, it references an order that does not exist and never will). The
 * subscriber sends it to the dead-letter topic at once instead of retrying.
 */
export class PermanentError extends ProtoeventsError {
  override name = "ProtoeventsError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(Code.Permanent, message, options);
  }
}

/**
 * Whether the value is a ProtoeventsError, also when it comes from another
 * copy of this package (checks name and shape, not only the prototype).
 */
export function isProtoeventsError(value: unknown): value is ProtoeventsError {
  if (value instanceof ProtoeventsError) {
    return true;
  }
  if (!(value instanceof Error) || value.name !== "ProtoeventsError") {
    return false;
  }
  const code = (value as { code?: unknown }).code;
  return typeof code === "string" && (Object.values(Code) as string[]).includes(code);
}

/** A readable string for anything thrown. */
export function reasonToString(reason: unknown): string {
  if (reason instanceof Error) {
    return reason.message;
  }
  if (typeof reason === "string") {
    return reason;
  }
  try {
    return JSON.stringify(reason) ?? String(reason);
  } catch {
    return String(reason);
  }
}
