// A node's certificates over the years (issue 11): when the daemon renews its
// own certificate, what it accepts as the renewed one, and which CA offered
// by the registry it installs in place of ca.pem. Pure: certificates (PEM)
// and the time in, verdicts out; ./daemon/renewal.ts acts on them.
//
// The registry's renewCertificate(cert, csr) keeps the prefix, the key and
// the subject; vifibnet-ca --renew keeps the CA's key, subject and serial
// (the network prefix). So a renewed certificate is accepted only when it
// holds the same key and subject (byte for byte), is issued by ca.pem and
// lasts longer, and
// a CA only when it is the same CA with a later expiry: anything else the
// registry answers is refused (a broken or foreign registry, or someone on
// the path: the registry speaks plain HTTP).

import { X509Certificate } from "node:crypto";
import { CertificateError, EXPIRY_WARNING_DAYS, caProblem, signedWithSha1, subjectDer } from "./utils/x509";

export const RENEW_CERTIFICATE = "renewCertificate";
export const GET_CA = "getCa";

const DAY_MS = 86_400_000;
/** A certificate with fewer days left is renewed: the days under which setup and the daemon warn. */
export const RENEW_BEFORE_DAYS = EXPIRY_WARNING_DAYS;
/** How often the daemon looks at its certificates' expiry. */
export const CHECK_EVERY_MS = DAY_MS;
/** The wait after a failed renewal, doubling while it keeps failing, at most MAX_RETRY_MS. */
export const FIRST_RETRY_MS = 10 * 60_000;
export const MAX_RETRY_MS = 6 * 3_600_000;
/** A renewed certificate may start this much after our clock says now (the registry's clock may be ahead). */
export const CLOCK_SLACK_MS = 3_600_000;

/** Why the certificate should be renewed now, or null. */
export type RenewalReason = "expiring" | "sha1";

export function renewalReason(cert: { notAfter: number; sha1: boolean }, now: number): RenewalReason | null {
  if (cert.notAfter - now < RENEW_BEFORE_DAYS * DAY_MS) return "expiring";
  return cert.sha1 ? "sha1" : null;
}

/**
 * The wait until the next look at a certificate that is not due: a day, or
 * less when it enters its renewal window sooner (so it is renewed then, not
 * up to a day later).
 */
export function untilNextLook(cert: { notAfter: number }, now: number): number {
  return Math.max(0, Math.min(CHECK_EVERY_MS, cert.notAfter - RENEW_BEFORE_DAYS * DAY_MS - now));
}

/** The wait before renewal attempt `failures` + 1, after `failures` (>= 1) failed in a row. */
export function retryDelay(failures: number): number {
  return Math.min(FIRST_RETRY_MS * 2 ** Math.max(0, failures - 1), MAX_RETRY_MS);
}

/** What the daemon reads of a certificate. */
export interface CertificateFacts {
  notBefore: number;
  notAfter: number;
  sha1: boolean;
}

function load(pem: string, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (e) {
    throw new CertificateError(`${what} is not a PEM certificate (${(e as Error).message})`);
  }
}

const spki = (c: X509Certificate): Buffer => c.publicKey.export({ type: "spki", format: "der" });

function facts(c: X509Certificate): CertificateFacts {
  return { notBefore: Date.parse(c.validFrom), notAfter: Date.parse(c.validTo), sha1: signedWithSha1(c) };
}

export function certificateFacts(pem: string): CertificateFacts {
  return facts(load(pem, "the certificate"));
}

/**
 * Checks the registry's answer to renewCertificate against the certificate
 * it renews and the CA: the same public key and subject, issued (and
 * signed) by the CA, valid now and longer than the current one. Returns
 * its facts; throws CertificateError saying what is wrong.
 */
export function checkRenewed(currentPem: string, renewedPem: string, caPem: string, now: number): CertificateFacts {
  const current = load(currentPem, "the current certificate");
  const renewed = load(renewedPem, "the registry's answer");
  const ca = load(caPem, "the CA file");
  if (!spki(renewed).equals(spki(current))) throw new CertificateError("the renewed certificate holds another key than ours");
  if (!subjectDer(renewed).equals(subjectDer(current)))
    throw new CertificateError(`the renewed certificate names another subject (${renewed.subject.replace(/\n/g, ", ")}, not ${current.subject.replace(/\n/g, ", ")})`);
  if (!renewed.checkIssued(ca) || !renewed.verify(ca.publicKey)) throw new CertificateError("the renewed certificate was not issued by our CA (ca.pem)");
  const f = facts(renewed);
  if (f.notAfter <= Date.parse(current.validTo)) throw new CertificateError(`the renewed certificate expires no later than ours (${renewed.validTo})`);
  if (f.notAfter <= now || f.notBefore > now + CLOCK_SLACK_MS)
    throw new CertificateError(`the renewed certificate is not valid now (from ${renewed.validFrom} to ${renewed.validTo}): is a clock wrong?`);
  return f;
}

export type CaVerdict =
  | { kind: "same" }
  /** The same CA (key, subject, serial: the network), re-issued to expire later: install it. */
  | { kind: "renewed"; notAfter: number }
  /** Anything else: warn, never install. */
  | { kind: "different"; why: string };

/** What to do with the CA the registry serves (getCa), given ca.pem. */
export function compareCa(currentPem: string, offeredPem: string, now: number): CaVerdict {
  const current = load(currentPem, "ca.pem");
  let offered: X509Certificate;
  try {
    offered = new X509Certificate(offeredPem);
  } catch (e) {
    return { kind: "different", why: `it is not a PEM certificate (${(e as Error).message})` };
  }
  if (offered.raw.equals(current.raw)) return { kind: "same" };
  if (!spki(offered).equals(spki(current))) return { kind: "different", why: "it holds another key" };
  if (!subjectDer(offered).equals(subjectDer(current))) return { kind: "different", why: `its subject is ${offered.subject.replace(/\n/g, ", ")}` };
  if (offered.serialNumber !== current.serialNumber) return { kind: "different", why: `its serial (the network) is 0x${offered.serialNumber}` };
  // Same key: only the CA's key could have signed it; a forgery fails here.
  if (!offered.verify(current.publicKey)) return { kind: "different", why: "its signature is not the CA key's" };
  const bad = caProblem(offered, new Date(now));
  if (bad) return { kind: "different", why: `it ${bad}` };
  const notAfter = Date.parse(offered.validTo);
  if (notAfter <= Date.parse(current.validTo)) return { kind: "different", why: `it expires no later than ours (${offered.validTo})` };
  return { kind: "renewed", notAfter };
}

/** The warnings of a daily look: the node certificate or the CA expiring within RENEW_BEFORE_DAYS. */
export function expiryWarnings(cert: { path: string; notAfter: number }, ca: { path: string; notAfter: number }, now: number): string[] {
  const out: string[] = [];
  for (const [what, c, remedy] of [
    ["certificate", cert, "the daemon renews it from the registry (renewCertificate), or renew it by hand with vifibnet-setup --renew"],
    ["CA certificate", ca, "the network's operator renews it (vifibnet-ca --renew), and nodes take it from the registry"],
  ] as const) {
    const days = Math.floor((c.notAfter - now) / DAY_MS);
    if (c.notAfter <= now) out.push(`the ${what} ${c.path} has expired: peers refuse it; ${remedy}`);
    else if (days < RENEW_BEFORE_DAYS) out.push(`the ${what} ${c.path} expires in ${days} day(s), on ${new Date(c.notAfter).toISOString()}: ${remedy}`);
  }
  return out;
}
