// requestCertificate: a certificate for a token, and the same certificate
// again to a retried request whose reply was lost (docs/decisions.md, "A
// retried requestCertificate"). The certificates issued lately are kept in
// memory, not in a table: a legacy network keeps exactly the legacy file.

import { X509Certificate } from "node:crypto";
import { Bits, prefixToCn } from "../utils/address";
import { CertificateAuthority, checkRequest, issueCertificate } from "../utils/cert";
import { Logger } from "../utils/log";
import { keyId } from "../utils/x509";
import { Caller, RpcFault, requestFault } from "./call";
import type { RegistryDb } from "./db";
import { checkPrefixLength } from "./prefix";
import type { RevokedPrefixes } from "./revoked";
import type { Tokens } from "./tokens";

export const CERT_DAYS = 365;
/** How long a certificate is sent again to a retried requestCertificate (same token, same key), in seconds. */
export const RETRY_WINDOW = 300;

/** A certificate issued for a token, kept RETRY_WINDOW seconds for a retried request. */
export interface IssuedRecord {
  token: string;
  prefix: Bits;
  /** SHA-256 of the public key (SPKI DER), hex. */
  key: string;
  /** Seconds since the epoch. */
  at: number;
}

export interface EnrolmentDeps {
  db: Pick<RegistryDb, "issue" | "certOf">;
  tokens: Tokens;
  revoked: RevokedPrefixes;
  /** The CA that signs now (it may be renewed under a running registry). */
  ca: () => CertificateAuthority;
  log: Logger;
  /** Seconds since the epoch. */
  now: () => number;
  /** Told of each certificate issued here, so that any worker answers its retries. */
  onIssued: (record: IssuedRecord) => void;
}

export class Enrolment {
  /** Certificates issued for tokens lately, oldest first; `connection` when this process answered it. */
  private readonly issued = new Map<string, IssuedRecord & { connection?: number }>();

  constructor(private readonly deps: EnrolmentDeps) {}

  /**
   * The token first: a request without a valid one costs a look-up, never a
   * parse or a signature check. Nothing is consumed unless a certificate is
   * issued and checked. A used token is answered again with its certificate
   * when the reply may have been lost (see resend).
   */
  requestCertificate(token: string, csr: string, caller: Caller): string {
    const { db, log, now } = this.deps;
    const row = this.deps.tokens.usable(token);
    if (!row) return this.resend(token, csr, caller);
    const ca = this.deps.ca();
    const bad = checkPrefixLength(row.prefix_len, ca.network.length);
    if (bad) throw new RpcFault("ValueError", bad);
    let issued: { prefix: Bits; cert: string };
    let key: string;
    try {
      const req = checkRequest(csr);
      key = keyId(req.publicKey);
      issued = db.issue(token, (prefix) => issueCertificate(ca, req, prefixToCn(prefix), new Date(now() * 1000), CERT_DAYS));
    } catch (e) {
      throw requestFault(e);
    }
    const { prefix, cert } = issued;
    log.log(1, `certificate issued for prefix ${prefix} (${prefixToCn(prefix)})`);
    const record: IssuedRecord = { token, prefix, key, at: now() };
    this.remember({ ...record, ...(caller.connection !== undefined ? { connection: caller.connection } : {}) });
    this.deps.onIssued(record);
    return cert;
  }

  /** Keeps a certificate issued here or by another worker, forgetting those older than RETRY_WINDOW. */
  remember(record: IssuedRecord & { connection?: number }): void {
    const now = this.deps.now();
    // In insertion order, so the oldest come first.
    for (const [token, r] of this.issued) {
      if (now - r.at <= RETRY_WINDOW) break;
      this.issued.delete(token);
    }
    this.issued.set(record.token, record);
  }

  /**
   * A used token again: its certificate once more if the token was used
   * within RETRY_WINDOW, by the same key, and the reply may have been lost.
   * A request that comes on the very connection that carried the answer
   * proves the client read it (XML-RPC clients do not pipeline): that is a
   * reuse, refused as the legacy registry refuses it.
   */
  private resend(token: string, csr: string, caller: Caller): string {
    const unknown = new RpcFault("LookupError", "unknown or already used token");
    const record = this.issued.get(token);
    if (!record || this.deps.now() - record.at > RETRY_WINDOW) throw unknown;
    if (record.connection !== undefined && record.connection === caller.connection) throw unknown;
    let key: string;
    try {
      key = keyId(checkRequest(csr).publicKey);
    } catch (e) {
      throw requestFault(e);
    }
    const cert = this.deps.db.certOf(record.prefix);
    if (key !== record.key || cert === null || this.deps.revoked.has(record.prefix)) throw unknown;
    let stored: X509Certificate;
    try {
      stored = new X509Certificate(cert);
    } catch {
      throw unknown;
    }
    if (keyId(stored.publicKey) !== key) throw unknown; // renewed or reallocated meanwhile
    this.deps.log.log(1, `certificate for prefix ${record.prefix} (${prefixToCn(record.prefix)}) sent again: a retried request with the same token and key`);
    return cert;
  }
}
