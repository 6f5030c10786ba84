/**
 * The store: one transactional database per service holding the inbox (which
 * events each subscription already handled), the outbox (events to publish
 * once the transaction commits) and the service's own state. A handler's
 * claim, writes and outgoing events commit together or not at all.
 *
 * Two implementations share every query (Kysely): SQLite for the embedded
 * default, PostgreSQL for several replicas of a service on one subscription.
 */
import type { Generated, Kysely, Transaction } from "kysely";

/** The inbox: one row per (subscription, event id) handled. */
export interface InboxTable {
  readonly subscription: string;
  readonly event_id: string;
  /** When the claim committed, Unix milliseconds. */
  readonly claimed_at: number;
}

/** The outbox: one row per event to publish after commit. */
export interface OutboxTable {
  /** Commit order within the store; the relay publishes in this order per ordering key. */
  readonly id: Generated<number>;
  /** `ce-id`. */
  readonly event_id: string;
  /** `ce-type`, for logs and tooling. */
  readonly event_type: string;
  /** Topic id. */
  readonly topic: string;
  readonly ordering_key: string | null;
  /** The encoded payload. */
  readonly data: Uint8Array;
  /** Message attributes as a JSON object. */
  readonly attributes: string;
  /** Unix milliseconds. */
  readonly created_at: number;
  /** When Pub/Sub accepted it, Unix milliseconds; null while pending. */
  readonly sent_at: number | null;
  /** Failed publish attempts so far. */
  readonly attempts: Generated<number>;
  readonly last_error: string | null;
}

/** The tables protoevents keeps in every store, next to the service's own. */
/**
 * Leases: who may do a job that must run once per store (the outbox relay),
 * until when. A holder renews its lease while it works; a holder that stops
 * (crashed, hung on a dead connection) loses it when it expires.
 */
export interface LeaseTable {
  readonly name: string;
  /** The holder's random id. */
  readonly holder: string;
  /** Unix milliseconds. */
  readonly expires_at: number;
}

export interface ProtoeventsTables {
  readonly protoevents_inbox: InboxTable;
  readonly protoevents_outbox: OutboxTable;
  readonly protoevents_lease: LeaseTable;
}

/** An event ready for the outbox: topic, encoded payload, attributes, ordering key. */
export interface OutboxEntry {
  readonly eventId: string;
  readonly eventType: string;
  readonly topic: string;
  readonly orderingKey: string | undefined;
  readonly data: Uint8Array;
  readonly attributes: Readonly<Record<string, string>>;
}

/** A pending outbox row as the relay reads it. */
export interface PendingOutboxRow extends OutboxEntry {
  /** Row id, in commit order. */
  readonly id: number;
  readonly attempts: number;
  readonly createdAt: number;
}

/**
 * A transaction of a store. Everything done through it commits together when
 * the work function returns and rolls back when it throws.
 */
export interface StoreTransaction<DB = unknown> {
  /** Kysely bound to this transaction, for the service's own tables. */
  readonly db: Transaction<DB & ProtoeventsTables>;
  /**
   * Record that `subscription` handled `eventId`. Resolves true when this
   * transaction made the claim, false when it already existed (a duplicate).
   * Concurrent claims of one pair are serialised by the database: exactly one
   * transaction gets true, also across processes on PostgreSQL.
   */
  claim(subscription: string, eventId: string): Promise<boolean>;
  /** Append events to the outbox, in order. */
  enqueue(entries: readonly OutboxEntry[]): Promise<void>;
}

/**
 * What a consumer needs of a store: transactions that can claim in the inbox.
 * Any `Store<DB>` is one, whatever its tables.
 */
export interface InboxStore {
  transaction<T>(work: (tx: Pick<StoreTransaction, "claim">) => Promise<T>): Promise<T>;
}

/** What the outbox relay needs of a store. Any `Store<DB>` is one. */
export type OutboxStore = Pick<
  Store,
  "lockOutbox" | "pendingOutbox" | "markSent" | "markFailed" | "onOutboxCommit" | "outboxBacklog"
>;

/** Kinds of store. */
export type StoreDialect = "sqlite" | "postgres";

/**
 * A service's store.
 *
 * @typeParam DB the service's own tables (Kysely table interfaces).
 */
export interface Store<DB = unknown> {
  readonly dialect: StoreDialect;
  /** Kysely on the store, for reads and for the service's own migrations. */
  readonly db: Kysely<DB & ProtoeventsTables>;
  /**
   * Run `work` in one transaction. Commits when it resolves, rolls back when
   * it throws (and rethrows).
   *
   * @throws ProtoeventsError `store_unavailable` (retryable) when the database
   *   cannot be reached or the commit fails; errors thrown by `work` pass
   *   through unchanged.
   */
  transaction<T>(work: (tx: StoreTransaction<DB>) => Promise<T>): Promise<T>;
  /**
   * Run `work` as the only outbox relay of this store, so that two replicas
   * never publish the same rows or overtake each other on an ordering key.
   * Resolves to `work`'s result, or to `undefined` at once (without running
   * it) when another relay holds the lock.
   *
   * A lease row in the store itself (`protoevents_lease`), taken in one
   * atomic upsert, renewed while `work` runs and given up after it: it
   * excludes relays in other processes and on other machines alike, on
   * SQLite and PostgreSQL. A relay that stops renewing (crashed, or hung on
   * a dead connection) loses it when it expires (30 s by default), and
   * another takes over.
   */
  lockOutbox<T>(work: () => Promise<T>): Promise<T | undefined>;
  /** Pending outbox rows, oldest first, at most `limit`. */
  pendingOutbox(limit: number): Promise<PendingOutboxRow[]>;
  /** How many outbox rows are not yet published. */
  outboxBacklog(): Promise<number>;
  /** Mark outbox rows as sent at `sentAt` (Unix milliseconds). */
  markSent(ids: readonly number[], sentAt: number): Promise<void>;
  /** Record a failed publish attempt of an outbox row. */
  markFailed(id: number, error: string): Promise<void>;
  /**
   * Delete inbox claims and sent outbox rows older than `olderThan` (Unix
   * milliseconds). Pending outbox rows are never deleted.
   */
  prune(olderThan: number): Promise<{ inbox: number; outbox: number }>;
  /**
   * Call `listener` after every commit that enqueued outbox rows, so a relay
   * in this process publishes at once instead of at its next poll. Returns a
   * function that removes the listener.
   */
  onOutboxCommit(listener: () => void): () => void;
  /** Close connections. Idempotent. */
  close(): Promise<void>;
}
