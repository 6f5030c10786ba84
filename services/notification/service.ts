/**
 * The notification service (application `notification`): e-mails customers
 * when their order is confirmed, cancelled or on its way, and announces each
 * e-mail with NotificationSent. When it is down, orders still complete; its
 * subscriptions keep the events and the e-mails go out when it returns.
 */
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, Logger } from "@protoevents/runtime";
import type { Kysely } from "kysely";
import {
  type NotificationServiceContext,
  type NotificationServiceHandlers,
  subscribeNotificationService,
} from "../../generated/checkout/v1/applications_pe.js";
import type { ServiceDefinition } from "../lib/run-service.js";
import {
  cancellationEmail,
  confirmationEmail,
  type MailContent,
  mailFileName,
  type NoticeKind,
  notificationId,
  notificationKindOf,
  shippingEmail,
} from "./emails.js";
import { createMailer, type Mailer } from "./mailer.js";

/**
 * One row per e-mail sent, keyed by (order_id, kind): the business key that
 * makes "one e-mail of each kind per order" hold even when two different
 * events (different ce-ids, e.g. an order confirmed twice by mistake) ask for
 * the same notice. The inbox alone only stops the same event twice. The
 * recipient's address is deliberately not stored.
 */
export interface NotificationsTable {
  readonly order_id: string;
  /** `confirmation`, `cancellation` or `shipping`. */
  readonly kind: NoticeKind;
  /** `ntf_<order_id>_<kind>`, as published in NotificationSent. */
  readonly notification_id: string;
  /** `ce-id` of the event that caused the e-mail. */
  readonly event_id: string;
  /** The `Message-ID` header of the e-mail; null until it was sent. */
  readonly message_id: string | null;
  /** When the row was claimed, Unix milliseconds. */
  readonly claimed_at: number;
  /** When the file was written or the SMTP server accepted the e-mail, Unix milliseconds; null until then. */
  readonly sent_at: number | null;
}

/** The notification service's own tables. */
export interface NotificationTables {
  readonly notifications: NotificationsTable;
}

/** The notification service's migrations (portable SQLite/PostgreSQL types). */
export const migrations = {
  "0001_notifications": {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable("notifications")
        .addColumn("order_id", "text", (c) => c.notNull())
        .addColumn("kind", "text", (c) => c.notNull())
        .addColumn("notification_id", "text", (c) => c.notNull())
        .addColumn("event_id", "text", (c) => c.notNull())
        .addColumn("message_id", "text")
        .addColumn("claimed_at", "bigint", (c) => c.notNull())
        .addColumn("sent_at", "bigint")
        .addPrimaryKeyConstraint("notifications_pkey", ["order_id", "kind"])
        .execute();
    },
  },
};

/** What the handlers need besides the event. */
export interface NotificationDeps {
  readonly mailer: Mailer;
  /** Unix milliseconds. @default Date.now */
  readonly now?: () => number;
}

type Context = NotificationServiceContext<NotificationTables>;

/** What {@link createNotificationHandlers}' shared path reads of a handler's context. */
type NoticeContext = Context & Pick<HandlerContext, "envelope" | "log">;

/** What one notice is: its kind, order and recipient, and how to word it. */
interface Notice {
  readonly kind: NoticeKind;
  readonly orderId: string;
  readonly recipient: string;
  readonly content: () => MailContent;
}

/**
 * The handlers of application `notification`. Each one sends at most one
 * e-mail of its kind per order:
 *
 * 1. claim `(order_id, kind)` in `notifications` (in the delivery's
 *    transaction; a second event for the same notice finds the row and does
 *    nothing: no e-mail, no NotificationSent);
 * 2. send the e-mail;
 * 3. publish NotificationSent through the outbox.
 *
 * The claim, the row update and NotificationSent commit together. The e-mail
 * itself cannot take part in the transaction: a crash (or a failed commit)
 * after sending and before committing runs the handler again on redelivery.
 * With `.eml` files that rewrites the same file (`<order_id>-<kind>.eml`), so
 * there is still exactly one. With SMTP the e-mail is sent at least once: the
 * customer can get a second copy, with the same `Message-ID`. On PostgreSQL
 * two replicas handling two events for the same notice at once serialise on
 * the primary key: the second waits for the first to commit, then sees the
 * claim.
 */
export function createNotificationHandlers(
  deps: NotificationDeps,
): NotificationServiceHandlers<Context> {
  const now = deps.now ?? Date.now;

  async function notify(notice: Notice, context: NoticeContext): Promise<void> {
    const { kind, orderId } = notice;
    const id = notificationId(orderId, kind);
    const log: Logger = context.log;
    const claimed = await context.tx.db
      .insertInto("notifications")
      .values({
        order_id: orderId,
        kind,
        notification_id: id,
        event_id: context.envelope.id,
        message_id: null,
        claimed_at: now(),
        sent_at: null,
      })
      .onConflict((conflict) => conflict.columns(["order_id", "kind"]).doNothing())
      .executeTakeFirst();
    if (claimed.numInsertedOrUpdatedRows === 0n) {
      log.info({ orderId, kind, notificationId: id }, "notification already sent; skipped");
      return;
    }
    const content = notice.content();
    const sent = await deps.mailer.send({
      to: notice.recipient,
      subject: content.subject,
      text: content.text,
      messageKey: id,
      fileName: mailFileName(orderId, kind),
    });
    const sentAt = now();
    await context.tx.db
      .updateTable("notifications")
      .set({ message_id: sent.messageId, sent_at: sentAt })
      .where("order_id", "=", orderId)
      .where("kind", "=", kind)
      .execute();
    await context.publisher.publishNotificationSent({
      orderId,
      notificationId: id,
      kind: notificationKindOf(kind),
      recipientEmail: notice.recipient,
      sentAt: timestampFromMs(sentAt),
    });
    log.info(
      { orderId, kind, notificationId: id, transport: deps.mailer.kind, messageId: sent.messageId },
      "notification sent",
    );
  }

  return {
    sendConfirmation: (event, context) =>
      notify(
        {
          kind: "confirmation",
          orderId: event.orderId,
          recipient: event.customerEmail,
          content: () => confirmationEmail(event),
        },
        context,
      ),
    sendCancellation: (event, context) =>
      notify(
        {
          kind: "cancellation",
          orderId: event.orderId,
          recipient: event.customerEmail,
          content: () => cancellationEmail(event),
        },
        context,
      ),
    sendShippingNotice: (event, context) =>
      notify(
        {
          kind: "shipping",
          orderId: event.orderId,
          recipient: event.customerEmail,
          content: () => shippingEmail(event),
        },
        context,
      ),
  };
}

/**
 * The notification service. Environment: `SMTP_URL` (send through that
 * server; unset: write `.eml` files under `<PROTOEVENTS_DATA_DIR>/mail/`),
 * `MAIL_FROM` (default `"Checkout" <orders@checkout.example>`).
 */
export const definition: ServiceDefinition<NotificationTables> = {
  name: "notification",
  migrations,
  async start({ pubsub, store, log, env, dataDir }) {
    const mailer = await createMailer(env, dataDir);
    const consumer = subscribeNotificationService(pubsub, createNotificationHandlers({ mailer }), {
      store,
      logger: log,
    });
    return {
      // The consumer first, so no handler is mid-send when the mailer closes.
      closables: [consumer, mailer],
      ready: { mail: mailer.kind, mailTo: mailer.where, subscriptions: consumer.subscriptions },
    };
  },
};
