/**
 * How e-mails leave the notification service: through an SMTP server when
 * `SMTP_URL` is set, otherwise as `.eml` files a user can open in any mail
 * program. Both are nodemailer transports behind one small interface, so the
 * handlers do not care which one runs.
 */
import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Code, isProtoeventsError, PermanentError, ProtoeventsError } from "@protoevents/runtime";
import nodemailer from "nodemailer";

/** `From` when `MAIL_FROM` is not set. */
export const DEFAULT_MAIL_FROM = '"Checkout" <orders@checkout.example>';

/** One e-mail to send. */
export interface Mail {
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  /**
   * The local part of the `Message-ID`, e.g. `ntf_ord-1_confirmation`; the
   * domain is the sender's. The same on every retry, so a mail program can
   * tell a resent copy.
   */
  readonly messageKey: string;
  /** The file name when the mail is written to disk: deterministic, so a retry overwrites. */
  readonly fileName: string;
}

/** What sending produced. */
export interface SentMail {
  /** The `Message-ID` header, with angle brackets. */
  readonly messageId: string;
  /** Where the mail went: the `.eml` file's path, or `smtp`. */
  readonly destination: string;
}

/** Sends e-mails. */
export interface Mailer {
  /** `file` (`.eml` files) or `smtp`. */
  readonly kind: "file" | "smtp";
  /** Where mails go, for the log: the directory, or the SMTP server's host and port (never credentials). */
  readonly where: string;
  /**
   * Send one e-mail. Resolves once the file is in place or the SMTP server
   * accepted it.
   *
   * @throws PermanentError when the SMTP server refused the recipient for
   *   good (5xx); any other error is transient and worth a retry.
   */
  send(mail: Mail): Promise<SentMail>;
  close(): Promise<void>;
}

/** The domain part of the `From` address, for Message-IDs. */
export function messageIdDomain(from: string): string {
  const match = /@([^\s<>@"]+)>?\s*$/.exec(from);
  return match?.[1] ?? "checkout.example";
}

/** How long the mail server may take to answer at each step of a send; the whole send gets twice that. */
export const DEFAULT_SMTP_TIMEOUT_MS = 10_000;

/**
 * The mailer the environment asks for: SMTP when `SMTP_URL` is set (e.g.
 * `smtp://user:pass@mail.example:587`), otherwise `.eml` files under
 * `<dataDir>/mail/`. `MAIL_FROM` is the sender (default {@link DEFAULT_MAIL_FROM}).
 */
export async function createMailer(env: NodeJS.ProcessEnv, dataDir: string): Promise<Mailer> {
  const from =
    env.MAIL_FROM === undefined || env.MAIL_FROM === "" ? DEFAULT_MAIL_FROM : env.MAIL_FROM;
  const smtpUrl = env.SMTP_URL;
  if (smtpUrl !== undefined && smtpUrl !== "") {
    return createSmtpMailer(smtpUrl, from);
  }
  return createFileMailer(join(dataDir, "mail"), from);
}

/**
 * Write each e-mail as a raw RFC 5322 message to `<dir>/<fileName>`. The file
 * is written under a temporary name and renamed, so a reader never sees half
 * a message and a retry replaces the file in one step.
 */
export async function createFileMailer(dir: string, from: string): Promise<Mailer> {
  await mkdir(dir, { recursive: true });
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true });
  const domain = messageIdDomain(from);
  return {
    kind: "file",
    where: dir,
    async send(mail) {
      const info = await transport.sendMail({
        from,
        to: mail.to,
        subject: mail.subject,
        text: mail.text,
        messageId: `<${mail.messageKey}@${domain}>`,
      });
      const path = join(dir, mail.fileName);
      // Hidden and deterministic: a crash leaves at most one stray temporary
      // per notice, and the retry reuses it.
      const temporary = join(dir, `.${mail.fileName}.tmp`);
      await writeFile(temporary, info.message);
      await rename(temporary, path);
      return { messageId: info.messageId, destination: path };
    },
    async close() {
      transport.close();
    },
  };
}

/**
 * Send each e-mail through the SMTP server at `url`. At least once: the
 * server's acceptance cannot commit with the handler's transaction, so a crash
 * between the two sends the e-mail again on redelivery (with the same
 * `Message-ID`, which lets mail programs fold the copies).
 */
export function createSmtpMailer(
  url: string,
  from: string,
  timeoutMs: number = DEFAULT_SMTP_TIMEOUT_MS,
): Mailer {
  // The send runs inside the handler's store transaction: it must end. The
  // defaults of nodemailer (2 min to connect, 10 min of silence) would hold
  // the transaction, and on SQLite the store's write lock, that long.
  const transport = nodemailer.createTransport({
    url,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
  });
  const domain = messageIdDomain(from);
  const where = smtpServerOf(url);
  return {
    kind: "smtp",
    where,
    async send(mail) {
      let timer: NodeJS.Timeout | undefined;
      try {
        const info = await Promise.race([
          transport.sendMail({
            from,
            to: mail.to,
            subject: mail.subject,
            text: mail.text,
            messageId: `<${mail.messageKey}@${domain}>`,
          }),
          // A server that trickles bytes resets socketTimeout forever: bound the whole send.
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () =>
                reject(
                  new ProtoeventsError(
                    Code.HandlerFailed,
                    `could not send the e-mail: the mail server at ${where} did not finish within ${2 * timeoutMs} ms`,
                  ),
                ),
              2 * timeoutMs,
            );
          }),
        ]);
        return { messageId: info.messageId, destination: "smtp" };
      } catch (error) {
        throw isProtoeventsError(error) ? error : classifySmtpError(error);
      } finally {
        clearTimeout(timer);
      }
    },
    async close() {
      transport.close();
    },
  };
}

/** `host:port` of an SMTP URL, without user or password. */
function smtpServerOf(url: string): string {
  try {
    const parsed = new URL(url);
    return parsed.port === "" ? parsed.hostname : `${parsed.hostname}:${parsed.port}`;
  } catch {
    return "smtp";
  }
}

/** E-mail addresses in a server reply, which must not reach logs or dead-letter attributes. */
const ADDRESS = /[^\s<>@"]+@[^\s<>@"]+/g;

/**
 * A recipient the server rejects with a 5xx reply will be rejected on every
 * retry: dead-letter it at once. Everything else (connection refused, 4xx
 * greylisting, authentication trouble that an operator can fix) is retried.
 * nodemailer's messages quote the recipient, so the error is rebuilt with
 * addresses removed and without the original as `cause` (loggers print
 * causes).
 */
function classifySmtpError(error: unknown): ProtoeventsError {
  const { code, responseCode, message } = (error ?? {}) as {
    code?: unknown;
    responseCode?: unknown;
    message?: unknown;
  };
  const reply = typeof message === "string" ? message.replace(ADDRESS, "[redacted]") : "";
  const what = `SMTP ${String(code ?? "error")}${typeof responseCode === "number" ? ` ${responseCode}` : ""}: ${reply}`;
  if (code === "EENVELOPE" && typeof responseCode === "number" && responseCode >= 500) {
    return new PermanentError(`the mail server refused the recipient (${what})`);
  }
  return new ProtoeventsError(Code.HandlerFailed, `could not send the e-mail (${what})`);
}
