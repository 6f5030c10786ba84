import { readdir, readFile } from "node:fs/promises";
import { type AddressInfo, createServer, type Socket } from "node:net";
import { join } from "node:path";
import { Writable } from "node:stream";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Message, PubSub } from "@google-cloud/pubsub";
import { pino } from "pino";
import { describe, expect, inject, it } from "vitest";
import {
  createOrderSagaServicePublisher,
  createShippingServicePublisher,
  notificationServiceOutbox,
} from "../../generated/checkout/v1/applications_pe.js";
import { CancellationReason } from "../../generated/checkout/v1/common_pb.js";
import { NotificationKind } from "../../generated/checkout/v1/notification_events_pb.js";
import {
  decodeNotificationSent,
  NOTIFICATION_SENT_TOPIC,
  type NotificationSentValid,
} from "../../generated/checkout/v1/notification_events_pe.js";
import {
  type OrderConfirmed,
  OrderConfirmedSchema,
} from "../../generated/checkout/v1/order_events_pb.js";
import type {
  OrderCancelledInput,
  OrderConfirmedInput,
  OrderConfirmedValid,
} from "../../generated/checkout/v1/order_events_pe.js";
import type { OrderReadyForShippingInput } from "../../generated/checkout/v1/shipping_events_pe.js";
import { registry } from "../../generated/protoevents_registry.js";
import {
  Code,
  createLogger,
  isProtoeventsError,
  type Logger,
  provision,
  type Store,
} from "../../runtime/src/index.js";
import { type RunningService, startService } from "../../services/lib/run-service.js";
import {
  cancellationEmail,
  escapeForFileName,
  formatMoney,
  mailFileName,
  notificationId,
  wrap,
} from "../../services/notification/emails.js";
import type { Mail, Mailer } from "../../services/notification/mailer.js";
import {
  createMailer,
  createSmtpMailer,
  messageIdDomain,
} from "../../services/notification/mailer.js";
import {
  createNotificationHandlers,
  definition,
  migrations,
  type NotificationTables,
} from "../../services/notification/service.js";
import { afterThisTest, tempDir } from "../helpers/cleanup.js";
import { testPubSub } from "../helpers/pubsub.js";
import { testStoreLocation } from "../helpers/stores.js";
import { waitFor } from "../helpers/wait.js";

const quiet = createLogger({ test: "notification" });
quiet.level = "silent";

// ---- fixtures ---------------------------------------------------------------

const items = [
  {
    productId: "sku-keyboard",
    productName: "Keyboard",
    quantity: 1,
    unitPrice: { currencyCode: "EUR", amountMinor: 7990n },
  },
  { productId: "sku-mouse", quantity: 2, unitPrice: { currencyCode: "EUR", amountMinor: 2495n } },
];

const shippingAddress = {
  recipientName: "Ada Lovelace",
  line1: "12 St James's Square",
  city: "London",
  postalCode: "SW1Y 4JH",
  countryCode: "GB",
};

function confirmed(orderId: string): OrderConfirmedInput {
  return {
    orderId,
    customerId: "cust-42",
    customerEmail: "ada@example.com",
    total: { currencyCode: "EUR", amountMinor: 12_980n },
    paymentId: `pay_${orderId}`,
    reservationId: `res_${orderId}`,
    items,
    shippingAddress,
    confirmedAt: timestampFromDate(new Date("2026-11-26T10:00:05Z")),
  };
}

function cancelled(orderId: string): OrderCancelledInput {
  return {
    orderId,
    customerId: "cust-42",
    customerEmail: "ada@example.com",
    reason: CancellationReason.OUT_OF_STOCK,
    detail: "sku-limited: 2 requested, 0 available",
    refundRequired: true,
    releaseRequired: false,
    cancelledAt: timestampFromDate(new Date("2026-11-26T10:00:05Z")),
  };
}

function readyForShipping(orderId: string): OrderReadyForShippingInput {
  return {
    orderId,
    shipmentId: `shp_${orderId}`,
    customerId: "cust-42",
    customerEmail: "ada@example.com",
    shippingAddress,
    items,
    readyAt: timestampFromDate(new Date("2026-11-26T10:01:00Z")),
  };
}

/** A raw RFC 5322 message: unfolded headers by lower-case name, and the decoded text body. */
interface ParsedMail {
  readonly headers: ReadonlyMap<string, string>;
  readonly body: string;
}

function decodeQuotedPrintable(text: string): string {
  const bytes: number[] = [];
  const soft = text.replace(/=\r?\n/g, "");
  for (let i = 0; i < soft.length; i++) {
    const char = soft[i] as string;
    if (char === "=" && /^[0-9A-F]{2}$/i.test(soft.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(soft.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(char, "utf8"));
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

function parseMail(raw: string): ParsedMail {
  const split = raw.search(/\r?\n\r?\n/);
  const head = raw.slice(0, split).replace(/\r?\n[ \t]+/g, " ");
  const headers = new Map<string, string>();
  for (const line of head.split(/\r?\n/)) {
    const colon = line.indexOf(":");
    headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  let body = raw.slice(split).replace(/^\r?\n\r?\n/, "");
  if (headers.get("content-transfer-encoding") === "quoted-printable") {
    body = decodeQuotedPrintable(body);
  }
  return { headers, body: body.replace(/\r\n/g, "\n") };
}

// ---- harness ------------------------------------------------------------------

interface Harness {
  readonly pubsub: PubSub;
  readonly mailDir: string;
  /** NotificationSent received, by ce-id. */
  readonly sent: Map<string, NotificationSentValid>;
  start(): Promise<RunningService<NotificationTables>>;
}

/**
 * A fresh emulator project provisioned from the contracts, a temporary data
 * directory, and a subscription of our own on NotificationSent's topic.
 */
async function harness(): Promise<Harness> {
  const pubsub = testPubSub("notification");
  afterThisTest(() => pubsub.close());
  await provision(pubsub, registry, { dryRun: false });
  const dataDir = await tempDir("notification-service");
  const [subscription] = await pubsub
    .topic(NOTIFICATION_SENT_TOPIC)
    .createSubscription("test.notification-sent");
  const sent = new Map<string, NotificationSentValid>();
  subscription.on("message", (message: Message) => {
    const { event, envelope } = decodeNotificationSent({
      data: message.data,
      attributes: message.attributes,
    });
    sent.set(envelope.id, event);
    message.ack();
  });
  afterThisTest(() => subscription.close());
  const env = {
    PUBSUB_EMULATOR_HOST: inject("emulatorHost"),
    PUBSUB_PROJECT_ID: pubsub.projectId,
    PROTOEVENTS_DATA_DIR: dataDir,
    PROTOEVENTS_LOG_LEVEL: "silent",
  };
  return {
    pubsub,
    mailDir: join(dataDir, "mail"),
    sent,
    async start() {
      const running = await startService(definition, env);
      afterThisTest(() => running.stop());
      return running;
    },
  };
}

async function mailFiles(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((name) => name.endsWith(".eml")).sort();
  } catch {
    return [];
  }
}

async function readMail(dir: string, name: string): Promise<ParsedMail> {
  return parseMail(await readFile(join(dir, name), "utf8"));
}

async function outboxCount(running: RunningService<NotificationTables>): Promise<number> {
  return (await running.context.store.db.selectFrom("protoevents_outbox").select("id").execute())
    .length;
}

async function claimed(
  running: RunningService<NotificationTables>,
  eventId: string,
): Promise<boolean> {
  const row = await running.context.store.db
    .selectFrom("protoevents_inbox")
    .select("event_id")
    .where("event_id", "=", eventId)
    .executeTakeFirst();
  return row !== undefined;
}

// ---- the service on the emulator -------------------------------------------------

describe("notification service", () => {
  it("should write one .eml per notice with the right headers and body when each event kind arrives", async () => {
    const h = await harness();
    await h.start();
    const saga = createOrderSagaServicePublisher(h.pubsub);
    const shipping = createShippingServicePublisher(h.pubsub);
    await saga.publishOrderConfirmed(confirmed("ord-2001"));
    await saga.publishOrderCancelled(cancelled("ord-2002"));
    await shipping.publishOrderReadyForShipping(readyForShipping("ord-2001"));

    await waitFor("three NotificationSent", () => h.sent.size === 3);
    expect(await mailFiles(h.mailDir)).toEqual([
      "ord-2001-confirmation.eml",
      "ord-2001-shipping.eml",
      "ord-2002-cancellation.eml",
    ]);

    const confirmation = await readMail(h.mailDir, "ord-2001-confirmation.eml");
    expect(confirmation.headers.get("to")).toBe("ada@example.com");
    expect(confirmation.headers.get("from")).toBe("Checkout <orders@checkout.example>");
    expect(confirmation.headers.get("subject")).toBe("Your order ord-2001 is confirmed");
    expect(confirmation.headers.get("message-id")).toBe(
      "<ntf_ord-2001_confirmation@checkout.example>",
    );
    expect(confirmation.body).toContain("Hello Ada Lovelace,");
    expect(confirmation.body).toContain("  1 x Keyboard at EUR 79.90 = EUR 79.90");
    expect(confirmation.body).toContain("  2 x sku-mouse at EUR 24.95 = EUR 49.90");
    expect(confirmation.body).toContain("Total charged: EUR 129.80");
    expect(confirmation.body).toContain("  12 St James's Square");

    const cancellation = await readMail(h.mailDir, "ord-2002-cancellation.eml");
    expect(cancellation.headers.get("to")).toBe("ada@example.com");
    expect(cancellation.headers.get("subject")).toBe("Your order ord-2002 was cancelled");
    expect(cancellation.body.replace(/\n/g, " ")).toContain(
      "was cancelled because some of the items are out of stock.",
    );
    expect(cancellation.body).toContain("Details: sku-limited: 2 requested, 0 available");
    expect(cancellation.body).toContain("will be refunded");

    const shippingNotice = await readMail(h.mailDir, "ord-2001-shipping.eml");
    expect(shippingNotice.headers.get("to")).toBe("ada@example.com");
    expect(shippingNotice.headers.get("subject")).toBe("Your order ord-2001 is on its way");
    expect(shippingNotice.body).toContain("Shipment: shp_ord-2001");
    expect(shippingNotice.body).toContain("  2 x sku-mouse at EUR 24.95 = EUR 49.90");
    expect(shippingNotice.body).toContain("  SW1Y 4JH London");
    expect(shippingNotice.body).toContain("  GB");

    const events = [...h.sent.values()].sort((a, b) =>
      a.notificationId.localeCompare(b.notificationId),
    );
    expect(
      events.map((e) => ({
        orderId: e.orderId,
        notificationId: e.notificationId,
        kind: e.kind,
        recipientEmail: e.recipientEmail,
      })),
    ).toEqual([
      {
        orderId: "ord-2001",
        notificationId: "ntf_ord-2001_confirmation",
        kind: NotificationKind.CONFIRMATION,
        recipientEmail: "ada@example.com",
      },
      {
        orderId: "ord-2001",
        notificationId: "ntf_ord-2001_shipping",
        kind: NotificationKind.SHIPPING,
        recipientEmail: "ada@example.com",
      },
      {
        orderId: "ord-2002",
        notificationId: "ntf_ord-2002_cancellation",
        kind: NotificationKind.CANCELLATION,
        recipientEmail: "ada@example.com",
      },
    ]);
  });

  it("should send nothing again when a second event for the same order and kind arrives", async () => {
    const h = await harness();
    const running = await h.start();
    const saga = createOrderSagaServicePublisher(h.pubsub);
    await saga.publishOrderConfirmed(confirmed("ord-3001"));
    await waitFor("the first NotificationSent", () => h.sent.size === 1);
    const first = await readFile(join(h.mailDir, "ord-3001-confirmation.eml"), "utf8");

    // A different event (new ce-id) about the same order: another total, so
    // a second e-mail would show.
    const second = await saga.publishOrderConfirmed({
      ...(confirmed("ord-3001") as Exclude<OrderConfirmedInput, OrderConfirmed>),
      total: { currencyCode: "EUR", amountMinor: 99_999n },
    });
    await waitFor("the second event's inbox claim", () => claimed(running, second.id));

    expect(await mailFiles(h.mailDir)).toEqual(["ord-3001-confirmation.eml"]);
    expect(await readFile(join(h.mailDir, "ord-3001-confirmation.eml"), "utf8")).toBe(first);
    expect(await outboxCount(running)).toBe(1);
    const rows = await running.context.store.db.selectFrom("notifications").selectAll().execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ order_id: "ord-3001", kind: "confirmation" });
    await running.relay.drain();
    expect(h.sent.size).toBe(1);
  });

  it("should drain the backlog when restarted after events arrived while it was stopped", async () => {
    const h = await harness();
    const saga = createOrderSagaServicePublisher(h.pubsub);
    const first = await h.start();
    await saga.publishOrderConfirmed(confirmed("ord-4000"));
    await waitFor("the NotificationSent before the stop", () => h.sent.size === 1);
    await first.stop();

    const backlog = Array.from({ length: 10 }, (_, i) => `ord-backlog-${i}`);
    for (const orderId of backlog) {
      await saga.publishOrderConfirmed(confirmed(orderId));
    }
    expect(await mailFiles(h.mailDir)).toEqual(["ord-4000-confirmation.eml"]);

    const second = await h.start();
    await waitFor("eleven NotificationSent", () => h.sent.size === 11);
    const files = await mailFiles(h.mailDir);
    expect(files.filter((name) => name.startsWith("ord-backlog-"))).toEqual(
      backlog.map((orderId) => mailFileName(orderId, "confirmation")).sort(),
    );
    expect(files).toHaveLength(11);
    expect(await outboxCount(second)).toBe(11);
  });
});

// ---- the handlers, in a store transaction ---------------------------------------

/** A mailer that records what it would send, taking `delayMs` per e-mail. */
function recordingMailer(delayMs = 0): Mailer & { readonly mails: Mail[] } {
  const mails: Mail[] = [];
  return {
    kind: "smtp",
    where: "test",
    mails,
    async send(mail) {
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      mails.push(mail);
      return { messageId: `<${mail.messageKey}@test>`, destination: "smtp" };
    },
    async close() {},
  };
}

/** Run the confirmation handler as the consumer would: in a transaction, with a context. */
function deliverConfirmation(
  store: Store<NotificationTables>,
  handlers: ReturnType<typeof createNotificationHandlers>,
  event: OrderConfirmedValid,
  eventId: string,
  log: Logger,
): Promise<void> {
  return store.transaction(async (tx) => {
    const context = {
      tx,
      publisher: notificationServiceOutbox(tx),
      log,
      envelope: { id: eventId },
    } as unknown as Parameters<typeof handlers.sendConfirmation>[1];
    await handlers.sendConfirmation(event, context);
  });
}

describe("createNotificationHandlers", () => {
  it("should never log the recipient's address when it sends and when it skips a notice", async () => {
    const where = await testStoreLocation("sqlite");
    afterThisTest(() => where.remove());
    const store = await where.open<NotificationTables>(migrations);
    afterThisTest(() => store.close());
    const mailer = recordingMailer();
    let logged = "";
    const log = pino(
      { level: "trace" },
      new Writable({
        write(chunk, _encoding, done) {
          logged += String(chunk);
          done();
        },
      }),
    );
    const handlers = createNotificationHandlers({ mailer });
    const event = create(OrderConfirmedSchema, confirmed("ord-5001")) as OrderConfirmedValid;
    await deliverConfirmation(store, handlers, event, "evt-1", log);
    await deliverConfirmation(store, handlers, event, "evt-2", log);

    expect(mailer.mails).toHaveLength(1);
    expect(mailer.mails[0]?.to).toBe("ada@example.com");
    expect(logged).toContain("ord-5001");
    expect(logged).toContain("already sent");
    expect(logged).not.toContain("ada@example.com");
    expect(logged).not.toContain("Ada Lovelace");
  });

  it.each(["sqlite", "postgres"] as const)(
    "should send one e-mail when two events for the same notice are handled at once on %s",
    async (dialect) => {
      const where = await testStoreLocation(dialect);
      afterThisTest(() => where.remove());
      const store = await where.open<NotificationTables>(migrations);
      afterThisTest(() => store.close());
      const mailer = recordingMailer(50);
      const handlers = createNotificationHandlers({ mailer });
      const event = create(OrderConfirmedSchema, confirmed("ord-5002")) as OrderConfirmedValid;
      await Promise.all(
        ["evt-a", "evt-b", "evt-c"].map((id) =>
          deliverConfirmation(store, handlers, event, id, quiet),
        ),
      );
      expect(mailer.mails.map((m) => m.messageKey)).toEqual(["ntf_ord-5002_confirmation"]);
      const outbox = await store.db.selectFrom("protoevents_outbox").select("id").execute();
      expect(outbox).toHaveLength(1);
    },
  );
});

// ---- the SMTP transport ------------------------------------------------------------------

/**
 * Just enough of an SMTP server for nodemailer: accepts every message, or
 * refuses recipients at `reject@…` with 550. Records the raw DATA of each.
 */
async function fakeSmtpServer(): Promise<{
  url: string;
  messages: string[];
  close(): Promise<void>;
}> {
  const messages: string[] = [];
  const server = createServer((socket) => {
    let buffer = "";
    let inData = false;
    socket.write("220 fake ESMTP\r\n");
    socket.on("data", (chunk) => {
      buffer += String(chunk);
      for (;;) {
        if (inData) {
          const end = buffer.indexOf("\r\n.\r\n");
          if (end < 0) {
            return;
          }
          messages.push(buffer.slice(0, end));
          buffer = buffer.slice(end + 5);
          inData = false;
          socket.write("250 queued\r\n");
          continue;
        }
        const eol = buffer.indexOf("\r\n");
        if (eol < 0) {
          return;
        }
        const line = buffer.slice(0, eol);
        buffer = buffer.slice(eol + 2);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === "EHLO" || verb === "HELO") {
          socket.write("250 fake\r\n");
        } else if (verb === "RCPT" && line.includes("reject@")) {
          socket.write("550 5.1.1 <reject@example.com>: recipient unknown\r\n");
        } else if (verb === "DATA") {
          inData = true;
          socket.write("354 go ahead\r\n");
        } else if (verb === "QUIT") {
          socket.end("221 bye\r\n");
        } else {
          socket.write("250 OK\r\n");
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    messages,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe("createMailer with SMTP_URL", () => {
  it("should give up on a mail server that never answers, with a retryable error, instead of holding the transaction", async () => {
    // Accepts the connection and says nothing: no greeting, ever.
    const sockets: Socket[] = [];
    const silent = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    afterThisTest(
      () =>
        new Promise<void>((resolve) => {
          for (const socket of sockets) {
            socket.destroy();
          }
          silent.close(() => resolve());
        }),
    );
    const { port } = silent.address() as AddressInfo;
    const mailer = createSmtpMailer(`smtp://127.0.0.1:${port}`, "shop@shop.example", 300);
    afterThisTest(() => mailer.close());
    const sent = mailer.send({
      to: "ada@example.com",
      subject: "s",
      text: "t",
      messageKey: "k",
      fileName: "unused.eml",
    });
    await expect(sent).rejects.toMatchObject({ code: Code.HandlerFailed, permanent: false });
    await expect(sent).rejects.toThrow(/could not send the e-mail/);
  }, 15_000); // nodemailer's own greeting timeout is 30 s: the bound is ours

  it("should hand the e-mail to the SMTP server when SMTP_URL is set", async () => {
    const smtp = await fakeSmtpServer();
    afterThisTest(() => smtp.close());
    const mailer = await createMailer(
      { SMTP_URL: smtp.url, MAIL_FROM: "Shop <shop@shop.example>" },
      "/nonexistent",
    );
    afterThisTest(() => mailer.close());
    expect(mailer.kind).toBe("smtp");
    const sent = await mailer.send({
      to: "ada@example.com",
      subject: "Your order ord-7001 is confirmed",
      text: "Hello\n",
      messageKey: "ntf_ord-7001_confirmation",
      fileName: "unused.eml",
    });
    expect(sent.messageId).toBe("<ntf_ord-7001_confirmation@shop.example>");
    expect(smtp.messages).toHaveLength(1);
    const mail = parseMail(smtp.messages[0] ?? "");
    expect(mail.headers.get("to")).toBe("ada@example.com");
    expect(mail.headers.get("from")).toBe("Shop <shop@shop.example>");
    expect(mail.headers.get("subject")).toBe("Your order ord-7001 is confirmed");
  });

  it("should dead-letter without quoting the address when the server refuses the recipient for good", async () => {
    const smtp = await fakeSmtpServer();
    afterThisTest(() => smtp.close());
    const mailer = await createMailer({ SMTP_URL: smtp.url }, "/nonexistent");
    afterThisTest(() => mailer.close());
    const error = await mailer
      .send({
        to: "reject@example.com",
        subject: "s",
        text: "t",
        messageKey: "ntf_x_confirmation",
        fileName: "unused.eml",
      })
      .then(
        () => undefined,
        (reason: unknown) => reason,
      );
    expect(isProtoeventsError(error) && error.code).toBe(Code.Permanent);
    expect(String((error as Error).message)).toContain("550");
    expect(String((error as Error).message)).not.toContain("reject@example.com");
  });
});

// ---- the pure rules ------------------------------------------------------------------

describe("formatMoney", () => {
  const cases: Array<[string, bigint, string]> = [
    ["EUR", 12_980n, "EUR 129.80"],
    ["EUR", 5n, "EUR 0.05"],
    ["EUR", 0n, "EUR 0.00"],
    ["USD", 123_456_789n, "USD 1,234,567.89"],
    ["JPY", 1_200n, "JPY 1,200"],
    ["EUR", 9_223_372_036_854_775_807n, "EUR 92,233,720,368,547,758.07"],
  ];
  it.each(cases)(
    "should format %s %d minor units as %s when given",
    (currencyCode, amountMinor, text) => {
      expect(formatMoney({ currencyCode, amountMinor })).toBe(text);
    },
  );
});

describe("notificationId", () => {
  it("should be ntf_<order_id>_<kind> when it fits the 64-character rule", () => {
    expect(notificationId("ord-1", "shipping")).toBe("ntf_ord-1_shipping");
  });

  it("should fall back to a stable hash of the order id when the plain id would be too long", () => {
    const longOrderId = "o".repeat(64);
    const id = notificationId(longOrderId, "confirmation");
    expect(id).toMatch(/^ntf_[0-9a-f]{40}_confirmation$/);
    expect([...id].length).toBeLessThanOrEqual(64);
    expect(notificationId(longOrderId, "confirmation")).toBe(id);
    expect(notificationId(`${"o".repeat(63)}p`, "confirmation")).not.toBe(id);
  });
});

describe("mailFileName", () => {
  it("should escape characters that could leave the directory or collide when the order id has them", () => {
    expect(mailFileName("ord-1", "cancellation")).toBe("ord-1-cancellation.eml");
    expect(mailFileName("../etc/passwd", "shipping")).toBe("%2E%2E%2Fetc%2Fpasswd-shipping.eml");
    expect(escapeForFileName("a b")).not.toBe(escapeForFileName("a_b"));
    expect(escapeForFileName("é")).toBe("%C3%A9");
  });
});

describe("cancellationEmail", () => {
  it("should say no money was taken when no refund is required", () => {
    const mail = cancellationEmail({
      ...cancelled("ord-6001"),
      reason: CancellationReason.PAYMENT_DECLINED,
      refundRequired: false,
      detail: "",
    } as unknown as Parameters<typeof cancellationEmail>[0]);
    expect(mail.text.replace(/\n/g, " ")).toContain("because your payment was declined.");
    expect(mail.text).toContain("You have not been charged for it.");
    expect(mail.text).not.toContain("Details:");
  });
});

describe("wrap", () => {
  it("should break at spaces within the width when a paragraph is long", () => {
    const lines = wrap("one two three four five", 9);
    expect(lines).toEqual(["one two", "three", "four five"]);
  });
});

describe("messageIdDomain", () => {
  it("should take the domain of the From address when it has one", () => {
    expect(messageIdDomain('"Shop" <noreply@shop.example>')).toBe("shop.example");
    expect(messageIdDomain("orders@mail.example")).toBe("mail.example");
    expect(messageIdDomain("nobody")).toBe("checkout.example");
  });
});
