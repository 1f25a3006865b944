// A real SMTP server (smtp-server) that stores each message it receives as
// DIR/<n>.eml. Used in-process by the Node tests and as a program by the
// overlay harness and the Python interop tests (those run it as
// dist/test/helpers/smtp-sink.js): `node smtp-sink.js DIR [PORT]` prints
// "PORT\n" once listening (on 127.0.0.1, any free port by default).

import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { SMTPServer } from "smtp-server";

export interface Mail {
  from: string;
  to: string[];
  raw: string;
}

export interface SmtpSink {
  port: number;
  mails: Mail[];
  /** Resolves with the next mail (or one already received and not yet taken). */
  next(timeoutMs?: number): Promise<Mail>;
  close(): Promise<void>;
}

/** The token mailed to `email`, from the files a sink writes in `dir`, or null if none yet. */
export function tokenInMailDir(dir: string, email: string): string | null {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith(".eml"));
  } catch {
    return null;
  }
  for (const f of files) {
    const raw = readFileSync(join(dir, f), "utf8");
    if (!raw.includes(`X-Envelope-To: ${email}`)) continue;
    const token = /^Your token : ([a-z]{8})\r?$/m.exec(raw)?.[1];
    if (token) return token;
  }
  return null;
}

export async function startSmtpSink(dir?: string, port = 0): Promise<SmtpSink> {
  const mails: Mail[] = [];
  let taken = 0;
  const waiters: Array<() => void> = [];
  if (dir) mkdirSync(dir, { recursive: true });
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    logger: false,
    onData(stream, session, done) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        const mail: Mail = {
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString("utf8"),
        };
        mails.push(mail);
        if (dir) writeFileSync(join(dir, `${mails.length}.eml`), `X-Envelope-From: ${mail.from}\r\nX-Envelope-To: ${mail.to.join(",")}\r\n${mail.raw}`);
        waiters.splice(0).forEach((w) => w());
        done();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    port: (server.server.address() as AddressInfo).port,
    mails,
    async next(timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (taken >= mails.length) {
        if (Date.now() > deadline) throw new Error("no mail arrived in time");
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.max(0, deadline - Date.now()));
          waiters.push(() => { clearTimeout(t); resolve(); });
        });
      }
      return mails[taken++]!;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The program: `smtp-sink DIR` prints "PORT\n" once listening, stops on SIGTERM or SIGINT. */
export function smtpSinkMain(argv: readonly string[]): void {
  const dir = argv[0];
  if (!dir) {
    process.stderr.write("usage: smtp-sink DIR [PORT]\n");
    process.exit(2);
  }
  void startSmtpSink(dir, Number(argv[1] ?? 0)).then((sink) => {
    process.stdout.write(`${sink.port}\n`);
    const stop = (): void => void sink.close().then(() => process.exit(0));
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  });
}

if (require.main === module) smtpSinkMain(process.argv.slice(2));
