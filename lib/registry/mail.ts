// The token mail (SPEC section 4), sent with nodemailer.

import nodemailer from "nodemailer";

export const TOKEN_FROM = "postmaster@vifibnet.com";
export const TOKEN_SUBJECT = "[Vifibnet] Token Request";

export interface Mailer {
  sendToken(email: string, token: string): Promise<void>;
}

export interface MailHost {
  host: string;
  port: number;
}

/** "host", "host:port", "[v6]" or "[v6]:port"; port 25 by default, as smtplib. */
export function parseMailHost(text: string): MailHost | null {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+))(?::(\d{1,5}))?$/.exec(text);
  if (!m) return null;
  const port = m[3] === undefined ? 25 : Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return { host: (m[1] ?? m[2])!, port };
}

export function tokenMailText(token: string): string {
  return `Hello,\n\nYour token : ${token}\n\nGive it to vifibnet-setup (or setup.py) to get your certificate.\n`;
}

export function createSmtpMailer(mailhost: MailHost): Mailer {
  const transport = nodemailer.createTransport({
    host: mailhost.host,
    port: mailhost.port,
    secure: false,
    // The legacy sent in clear; we use STARTTLS when offered, without
    // requiring a certificate a local relay rarely has.
    tls: { rejectUnauthorized: false },
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 20_000,
  });
  return {
    async sendToken(email, token) {
      await transport.sendMail({ from: TOKEN_FROM, to: email, subject: TOKEN_SUBJECT, text: tokenMailText(token) });
    },
  };
}
