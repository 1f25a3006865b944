// renewCertificate: a node's certificate renewed for the key it holds, with
// the same prefix, so the node keeps its address (docs/decisions.md,
// "Renewal keeps the key and the subject"). When a node asks is
// lib/renewal.ts.

import { KeyObject, X509Certificate } from "node:crypto";
import { cnToPrefix } from "../utils/address";
import { CertificateAuthority, checkRequest, renewNodeCertificate } from "../utils/cert";
import { Logger } from "../utils/log";
import { CertificateError, keyId, signedWithSha1 as isSha1 } from "../utils/x509";
import { RpcFault, days, isoTime, requestFault } from "./call";
import type { RegistryDb } from "./db";
import { CERT_DAYS } from "./enrolment";
import { RevokedPrefixes, revokedFault } from "./revoked";

/** How long after its expiry a certificate may still be renewed by default (--renew-grace): 90 days. */
export const RENEW_GRACE = 90 * 86_400;

export interface RenewalDeps {
  db: Pick<RegistryDb, "certOf" | "replaceCert">;
  revoked: RevokedPrefixes;
  /** The CA that signs now (it may be renewed under a running registry). */
  ca: () => CertificateAuthority;
  log: Logger;
  /** Seconds since the epoch. */
  now: () => number;
  /** Seconds after its expiry a certificate may still be renewed (RENEW_GRACE). */
  grace: number;
}

export class Renewal {
  constructor(private readonly deps: RenewalDeps) {}

  /**
   * A new certificate for the key of `certPem`, which must be the one stored
   * for its prefix: same subject, new serial, valid CERT_DAYS from now,
   * SHA-256; it replaces the stored one. `csr` proves the caller holds the
   * key (its signature) and must carry the same public key. Refused for a
   * revoked prefix and for a certificate expired more than --renew-grace ago.
   * The cheap checks come first: a caller without the stored certificate
   * costs a look-up, never a signature check.
   */
  renewCertificate(certPem: string, csr: string): string {
    const { db, log, now, grace } = this.deps;
    let old: X509Certificate;
    try {
      old = new X509Certificate(certPem);
    } catch (e) {
      throw new RpcFault("ValueError", `renewal refused: not a PEM certificate (${(e as Error).message})`);
    }
    const cn = /(?:^|\n)CN=([^\n]*)/.exec(old.subject)?.[1] ?? "";
    const prefix = cnToPrefix(cn);
    if (prefix === null) throw new RpcFault("ValueError", `renewal refused: the certificate's CN ${JSON.stringify(cn.slice(0, 40))} is not a node prefix such as 5/16`);
    const storedPem = db.certOf(prefix);
    if (storedPem === null) throw new RpcFault("LookupError", `renewal refused: no certificate was issued for ${cn}`);
    let stored: X509Certificate | null;
    try {
      stored = new X509Certificate(storedPem);
    } catch {
      stored = null;
    }
    this.deps.revoked.refresh(); // rare and decisive: not the throttled view
    const revoked = this.deps.revoked.get(prefix);
    if (revoked) throw revokedFault(revoked, "its certificate cannot be renewed");
    const ca = this.deps.ca();
    const current = stored !== null && stored.raw.equals(old.raw);
    // An earlier certificate of the same key and prefix, CA-signed: the node lost the reply to its renewal.
    const earlier = !current && stored !== null && old.verify(ca.publicKey) && keyId(old.publicKey) === keyId(stored.publicKey) &&
      Date.parse(old.validFrom) < Date.parse(stored.validFrom);
    if (!current && !earlier)
      throw new RpcFault("PermissionError", `renewal refused: this is not the certificate the registry holds for ${cn} (a foreign certificate, or one replaced by a new enrolment)`);
    const expiredFor = now() - Date.parse(old.validTo) / 1000;
    if (current && expiredFor > grace)
      throw new RpcFault("PermissionError", `renewal refused: the certificate of ${cn} expired on ${isoTime(Date.parse(old.validTo) / 1000)}, more than ${days(grace)} ago (--renew-grace): enrol again with a new token`);
    let key: KeyObject;
    try {
      key = checkRequest(csr).publicKey;
    } catch (e) {
      throw requestFault(e);
    }
    if (keyId(key) !== keyId(old.publicKey))
      throw new RpcFault("PermissionError", `renewal refused: the request is not signed with the key of the certificate of ${cn}`);
    if (earlier) {
      log.log(1, `renewed certificate of ${cn} sent again: the node presented the one it replaced`);
      return storedPem;
    }
    let pem: string;
    try {
      pem = renewNodeCertificate(ca, storedPem, new Date(now() * 1000), CERT_DAYS);
    } catch (e) {
      if (e instanceof CertificateError) throw new RpcFault("ValueError", `renewal refused: ${e.message}`);
      throw e;
    }
    if (!db.replaceCert(prefix, storedPem, pem))
      throw new RpcFault("RuntimeError", `the certificate of ${cn} was renewed by another request meanwhile: renew again with the new one`);
    log.log(1, `certificate of ${cn} renewed${stored && isSha1(stored) ? " (was SHA-1)" : ""}, valid until ${new X509Certificate(pem).validTo}`);
    return pem;
  }
}
