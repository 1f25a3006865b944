// Enrolment tokens: minted as the legacy mints them, mailed within the
// limits of the token gate (./token-limit.ts), valid --token-ttl seconds,
// purged once older. They live in the legacy `tokens` table, so a legacy
// registry would honour them too (docs/decisions.md, "Tables only for new
// features").

import { randomInt } from "node:crypto";
import { clientSource } from "../utils/address";
import { Logger } from "../utils/log";
import { Caller, RpcFault, days, isoTime } from "./call";
import type { RegistryDb, TokenRow } from "./db";
import { Mailer } from "./mail";
import { TokenGate } from "./token-limit";

export const TOKEN_PREFIX_LENGTH = 16;
/** How long a token is valid by default (--token-ttl): a mail may take hours to be read. */
export const TOKEN_TTL = 86_400;

const EMAIL = /^[^\s@<>()[\]",;:\\]+@[^\s@<>()[\]",;:\\]+$/;

/** Why `email` cannot be a token's address, or null. */
export function emailProblem(email: string): string | null {
  return email.length > 254 || !EMAIL.test(email) ? `not an email address: ${JSON.stringify(email.slice(0, 80))}` : null;
}

/** 8 distinct lowercase letters, as the legacy's random.sample, from a CSPRNG. */
export function makeToken(): string {
  const letters = "abcdefghijklmnopqrstuvwxyz".split("");
  for (let i = 0; i < 8; i++) {
    const j = i + randomInt(letters.length - i);
    [letters[i], letters[j]] = [letters[j]!, letters[i]!];
  }
  return letters.slice(0, 8).join("");
}

export interface TokenDeps {
  db: Pick<RegistryDb, "addToken" | "getToken" | "deleteToken" | "purgeTokens">;
  mailer: Mailer;
  log: Logger;
  /** Seconds since the epoch. */
  now: () => number;
  /** Seconds a token is valid (TOKEN_TTL). */
  ttl: number;
  /** Decides whether a token may be mailed. */
  gate: TokenGate;
}

export class Tokens {
  constructor(private readonly deps: TokenDeps) {}

  /**
   * Mails a token, within the limits of the token gate (per address, per
   * client): beyond them a fault says when to retry, and nothing is mailed.
   */
  async request(email: string, caller: Caller): Promise<null> {
    const bad = emailProblem(email);
    if (bad) throw new RpcFault("ValueError", bad);
    const { db, log } = this.deps;
    const now = this.deps.now();
    const retryAt = await this.deps.gate.admit(email, clientSource(caller.address), now);
    if (retryAt !== null) {
      log.log(2, `token request for ${email} from ${caller.address ?? "?"} refused: over the limit until ${isoTime(retryAt)}`);
      throw new RpcFault("RuntimeError", `too many token requests for ${email} or from ${caller.address ?? "this client"}: retry after ${isoTime(retryAt)} (in ${Math.max(1, retryAt - now)} s)`);
    }
    let token: string;
    do token = makeToken();
    while (!db.addToken({ token, email, prefix_len: TOKEN_PREFIX_LENGTH, date: now }));
    try {
      await this.deps.mailer.sendToken(email, token);
    } catch (e) {
      db.deleteToken(token);
      throw new RpcFault("ConnectionError", `could not mail the token to ${email}: ${(e as Error).message}`);
    }
    log.log(1, `token sent to ${email}`);
    return null;
  }

  /**
   * The row of `token` if it can be used now; undefined when it is unknown
   * (or used). An expired token is deleted and refused with a fault.
   */
  usable(token: string): TokenRow | undefined {
    const row = this.deps.db.getToken(token);
    if (row && this.expired(row.date)) {
      this.deps.db.deleteToken(token);
      throw new RpcFault("LookupError", `the token expired on ${isoTime(row.date + this.deps.ttl)} (tokens are valid ${days(this.deps.ttl)}): ask for a new one`);
    }
    return row;
  }

  /** A token of `date` has expired (a date of 0 or before means "not dated yet": see RegistryDb.purgeTokens). */
  private expired(date: number): boolean {
    return date > 0 && date + this.deps.ttl <= this.deps.now();
  }

  /** Deletes the tokens older than the TTL. */
  purge(now: number): void {
    const tokens = this.deps.db.purgeTokens(this.deps.ttl, now);
    if (tokens > 0) this.deps.log.log(2, `purged ${tokens} token(s) older than ${this.deps.ttl} s (--token-ttl)`);
  }
}
