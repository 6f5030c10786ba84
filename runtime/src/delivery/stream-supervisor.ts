/**
 * Stream supervision: open a subscription's streaming pull with flow
 * control, tell a stream error that needs someone to act from one that
 * passes, reopen a stream the server ended for good, and keep each
 * subscription's health for liveness checks.
 */
import { Duration, type SubscriptionOptions } from "@google-cloud/pubsub";
import {
  DEFAULT_CLOSE_TIMEOUT_MS,
  DEFAULT_MAX_BYTES_IN_FLIGHT,
  DEFAULT_MAX_MESSAGES_IN_FLIGHT,
  DEFAULT_MAX_STREAMS,
  REOPEN_MAX_DELAY_MS,
  REOPEN_MIN_DELAY_MS,
} from "../default-options.js";
import { Code, ProtoeventsError } from "../errors.js";
import { GrpcStatus, grpcCode, grpcDetails } from "../grpc.js";
import type { Logger } from "../logger.js";

/** How one subscription of a consumer is doing. */
export interface SubscriptionHealth {
  readonly subscription: string;
  /**
   * `streaming`: open, no permanent error since the last message;
   * `failing`: its stream ended with a status that needs someone to act
   * (NOT_FOUND, PERMISSION_DENIED, UNAUTHENTICATED); it keeps retrying, and
   * goes back to `streaming` on its next message; `closed`.
   */
  readonly state: "streaming" | "failing" | "closed";
  /** The permanent error, while `failing`. */
  readonly error?: ProtoeventsError;
}

/** A consumer's health, for liveness checks: healthy when no subscription is failing. */
export interface ConsumerHealth {
  readonly healthy: boolean;
  readonly subscriptions: readonly SubscriptionHealth[];
}

/**
 * gRPC statuses with which a stream cannot succeed until someone acts: the
 * subscription does not exist, or the credentials may not read it.
 */
const PERMANENT_STREAM_STATUSES: ReadonlyMap<number, string> = new Map([
  [GrpcStatus.NOT_FOUND, "NOT_FOUND"],
  [GrpcStatus.PERMISSION_DENIED, "PERMISSION_DENIED"],
  [GrpcStatus.UNAUTHENTICATED, "UNAUTHENTICATED"],
]);

/**
 * A subscription stream's error as a ProtoeventsError that keeps the gRPC
 * status (code and details) the client reported, so a log line says why.
 */
export function streamError(error: unknown, subscription: string): ProtoeventsError {
  const code = grpcCode(error);
  const details = grpcDetails(error);
  return new ProtoeventsError(
    Code.PubSubUnavailable,
    `the streaming pull of ${subscription} ended` +
      (code === undefined ? "" : ` with gRPC status ${code}`) +
      (details ? `: ${details}` : "") +
      (error instanceof Error && error.message !== "" && error.message !== details
        ? ` (${error.message})`
        : ""),
    { cause: error, details: { grpcCode: code, grpcDetails: details } },
  );
}

/**
 * A stream error as what to report, and whether retrying alone cannot fix
 * it (a permanent status: the subscription is unhealthy until a message
 * arrives again).
 */
export function classifyStreamError(
  error: unknown,
  subscription: string,
): { readonly error: ProtoeventsError; readonly permanent: boolean } {
  const failure = streamError(error, subscription);
  const status = PERMANENT_STREAM_STATUSES.get(grpcCode(error) ?? -1);
  if (status === undefined) {
    return { error: failure, permanent: false };
  }
  return {
    error: new ProtoeventsError(
      Code.PubSubUnavailable,
      `subscription ${subscription} cannot be consumed (${status}): ${status === "NOT_FOUND" ? "provision it (protoevents provision)" : "grant the credentials roles/pubsub.subscriber on it"}; retrying meanwhile. ${failure.rawMessage}`,
      { cause: failure, details: failure.details },
    ),
    permanent: true,
  };
}

/** The parts of a Pub/Sub `Subscription` supervision uses; `M` is its message. */
export interface StreamSubscription<M> {
  on(event: "message", listener: (message: M) => void): unknown;
  on(event: "error", listener: (error: unknown) => void): unknown;
  on(event: "close", listener: () => void): unknown;
  readonly isOpen: boolean;
  open(): void;
  close(): Promise<void>;
}

/** Where streams come from: a Pub/Sub client, or a fake in unit tests. */
export interface StreamSource<M> {
  subscription(name: string, options: SubscriptionOptions): StreamSubscription<M>;
}

/** Flow control and closing of a supervised stream. */
export interface StreamSettings {
  /** @default DEFAULT_MAX_STREAMS */
  readonly maxStreams?: number | undefined;
  /** @default DEFAULT_MAX_MESSAGES_IN_FLIGHT */
  readonly maxMessagesInFlight?: number | undefined;
  /** @default DEFAULT_MAX_BYTES_IN_FLIGHT */
  readonly maxBytesInFlight?: number | undefined;
  /** How long closing waits for unsettled messages. @default DEFAULT_CLOSE_TIMEOUT_MS */
  readonly closeTimeoutMs?: number | undefined;
}

/** What a supervised stream reports. */
export interface StreamListener<M> {
  /** A message to dispatch; never called after close(). */
  onMessage(message: M): void;
  /** A stream error, permanent ones already worded with what to do. */
  onError(error: ProtoeventsError): void;
  /** The subscription started failing (an error) or streams again (undefined). */
  onFailing(error: ProtoeventsError | undefined): void;
}

/** A supervised subscription stream. */
export interface SupervisedStream {
  /** Stop reopening, nack what still arrives, and close the stream (the client waits for unsettled messages). */
  close(): Promise<void>;
}

/**
 * Open `name` and keep it open until close(). The client retries a stream
 * that ends with a transient status by itself; one that ends otherwise (the
 * subscription deleted and re-created, a server that ends the stream with
 * OK or an unknown status) closes the subscription for good. It is reopened
 * with backoff from {@link REOPEN_MIN_DELAY_MS} doubling to
 * {@link REOPEN_MAX_DELAY_MS}: a consumer that silently stops pulling
 * strands its events. A message resets the backoff, and ends a failing
 * state.
 */
export function superviseStream<M extends { nack(): void }>(
  source: StreamSource<M>,
  name: string,
  settings: StreamSettings,
  listener: StreamListener<M>,
  log: Logger,
): SupervisedStream {
  const subscription = source.subscription(name, {
    flowControl: {
      maxMessages: settings.maxMessagesInFlight ?? DEFAULT_MAX_MESSAGES_IN_FLIGHT,
      maxBytes: settings.maxBytesInFlight ?? DEFAULT_MAX_BYTES_IN_FLIGHT,
      allowExcessMessages: false,
    },
    streamingOptions: { maxStreams: settings.maxStreams ?? DEFAULT_MAX_STREAMS },
    closeOptions: {
      behavior: "WAIT",
      timeout: Duration.from({
        milliseconds: settings.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS,
      }),
    },
  });
  let closing = false;
  let failing = false;
  let reopenDelayMs = REOPEN_MIN_DELAY_MS;
  const reopenTimers = new Set<NodeJS.Timeout>();

  subscription.on("message", (message: M) => {
    reopenDelayMs = REOPEN_MIN_DELAY_MS;
    if (failing) {
      failing = false;
      log.info({ op: "subscribe", subscription: name }, "subscription streams again");
      listener.onFailing(undefined);
    }
    if (closing) {
      message.nack();
      return;
    }
    listener.onMessage(message);
  });
  subscription.on("error", (error: unknown) => {
    const failure = classifyStreamError(error, name);
    if (failure.permanent) {
      // Retrying cannot fix it alone: unhealthy until a message arrives again.
      failing = true;
      listener.onFailing(failure.error);
    }
    listener.onError(failure.error);
  });
  subscription.on("close", () => {
    if (closing) {
      return;
    }
    const delayMs = reopenDelayMs;
    reopenDelayMs = Math.min(reopenDelayMs * 2, REOPEN_MAX_DELAY_MS);
    log.warn(
      { op: "reopen", subscription: name, delayMs },
      "subscription stream closed by the server; reopening",
    );
    const timer = setTimeout(() => {
      reopenTimers.delete(timer);
      if (!closing && !subscription.isOpen) {
        subscription.open();
      }
    }, delayMs);
    reopenTimers.add(timer);
  });

  return {
    close(): Promise<void> {
      closing = true;
      for (const timer of reopenTimers) {
        clearTimeout(timer);
      }
      reopenTimers.clear();
      return subscription.close();
    },
  };
}

/**
 * The health of a consumer's subscriptions: which are failing, and whether
 * the consumer closed. Calls `onChange` when a subscription starts or stops
 * failing.
 */
export class HealthTracker {
  private readonly failing = new Map<string, ProtoeventsError>();
  private closed = false;

  constructor(
    private readonly subscriptions: readonly string[],
    private readonly onChange: ((health: ConsumerHealth) => void) | undefined,
  ) {}

  /** Record that `subscription` is failing with `error`, or streams again (undefined). */
  setFailing(subscription: string, error: ProtoeventsError | undefined): void {
    const was = this.failing.has(subscription);
    if (error === undefined) {
      this.failing.delete(subscription);
    } else {
      this.failing.set(subscription, error);
    }
    if (was !== (error !== undefined)) {
      this.onChange?.(this.health());
    }
  }

  /** Every subscription is `closed` from now on. */
  close(): void {
    this.closed = true;
  }

  health(): ConsumerHealth {
    return {
      healthy: this.failing.size === 0 && !this.closed,
      subscriptions: this.subscriptions.map((subscription) => {
        const error = this.failing.get(subscription);
        return this.closed
          ? { subscription, state: "closed" as const }
          : error === undefined
            ? { subscription, state: "streaming" as const }
            : { subscription, state: "failing" as const, error };
      }),
    };
  }
}
