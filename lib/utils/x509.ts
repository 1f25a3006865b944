// Reading certificates with Node's own X509Certificate: what setup checks of
// the certificate it receives and the daemon of its own. Kept apart from
// ./cert.ts so the daemon does not load node-forge (about 10 MB resident).

import { KeyObject, X509Certificate, createHash, createPublicKey, sign } from "node:crypto";
import { Bits, cnToPrefix, networkFromSerial } from "./address";
import { DerElement, TAG, children, derElement, expectElement, oidOf, readElement } from "./der";

/** A certificate or request that cannot be used, with a reason a user can act on. */
export class CertificateError extends Error {
  override name = "CertificateError";
}

/** A public key's identity: SHA-256 of its SPKI DER, hex. */
export function keyId(key: KeyObject): string {
  return createHash("sha256").update(key.export({ type: "spki", format: "der" })).digest("hex");
}

/** The network prefix a CA certificate carries in its serial (SPEC section 2). */
export function caNetwork(caPem: string): Bits {
  const serial = BigInt("0x" + new X509Certificate(caPem).serialNumber);
  return networkFromSerial(serial);
}

/** What a node learns from the certificate the registry issued. */
export interface NodeCertificate {
  /** Prefix bits from the CN ("5/16" → "0000000000000101"), or null if the CN has another shape. */
  prefix: Bits | null;
  commonName: string;
  /** True when signed with SHA-1 (the legacy registry): OpenSSL 3 refuses it by default. */
  sha1: boolean;
}

/** The OID sha1WithRSAEncryption. */
const SHA1_WITH_RSA = "1.2.840.113549.1.1.5";

/** Certificate { tbsCertificate, signatureAlgorithm, signature }: its first two elements. */
function certificateParts(cert: X509Certificate): { tbs: DerElement; algorithm: DerElement; der: Buffer } {
  const der = cert.raw;
  const [tbs, algorithm] = children(der, expectElement(der, 0, TAG.SEQUENCE), 3);
  if (!tbs || !algorithm) throw new CertificateError("malformed certificate");
  return { tbs, algorithm, der };
}

/** The DER of a certificate's subject Name: what "the same subject" means, byte for byte. */
export function subjectDer(cert: X509Certificate): Buffer {
  const { tbs, der } = certificateParts(cert);
  // TBSCertificate: [0] version (absent in v1), serial, signature, issuer, validity, subject, ...
  const fields = children(der, tbs, 12);
  const at = fields[0]?.tag === TAG.CONTEXT_0 ? 5 : 4;
  const subject = fields[at];
  if (!subject || subject.tag !== TAG.SEQUENCE) throw new CertificateError("malformed certificate: no subject");
  return Buffer.from(der.subarray(subject.start, subject.end));
}

/** Whether the certificate's signature algorithm is SHA-1 with RSA (Node 20 does not tell). */
export function signedWithSha1(cert: X509Certificate): boolean {
  const { algorithm, der } = certificateParts(cert);
  return oidOf(der, expectElement(der, algorithm.content, TAG.OID, algorithm.end)) === SHA1_WITH_RSA;
}

/** A version 1 certificate: no extensions, so no basicConstraints either. */
function isVersion1(cert: X509Certificate): boolean {
  const { tbs, der } = certificateParts(cert);
  return readElement(der, tbs.content, tbs.end).tag !== TAG.CONTEXT_0; // [0] version is absent only in v1
}

/** Why `cert` cannot be a network's CA at `now`, or null. */
export function caProblem(cert: X509Certificate, now: Date = new Date()): string | null {
  // As OpenSSL decides (X509_check_ca): basicConstraints CA:TRUE, and keyCertSign
  // if keyUsage is present; a self-signed version 1 certificate counts too.
  if (!cert.ca && !(isVersion1(cert) && cert.checkIssued(cert)))
    return "is not a CA certificate (no basicConstraints CA:TRUE, or a keyUsage without keyCertSign): OpenVPN would refuse every peer";
  if (Date.parse(cert.validTo) <= now.getTime()) return `expired on ${cert.validTo}`;
  return null;
}

/** The CN, its prefix, and whether the signature is SHA-1. */
function describeNodeCertificate(cert: X509Certificate): NodeCertificate {
  const commonName = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1] ?? "";
  return { prefix: cnToPrefix(commonName), commonName, sha1: signedWithSha1(cert) };
}

/**
 * Checks a certificate the registry returned: that it holds `key`'s public
 * half and was signed by the CA in `caPem`. A mismatch means a broken or
 * foreign registry, and storing the pair would leave a node that cannot connect.
 */
export function checkIssuedCertificate(certPem: string, key: KeyObject, caPem: string): NodeCertificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (e) {
    throw new CertificateError(`the registry returned something that is not a PEM certificate (${(e as Error).message})`);
  }
  if (!cert.checkPrivateKey(key)) throw new CertificateError("the registry returned a certificate for another key than the one in our request");
  const ca = new X509Certificate(caPem);
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey))
    throw new CertificateError("the registry returned a certificate its CA (ca.pem) did not sign");
  const bad = caProblem(ca);
  if (bad) throw new CertificateError(`the registry's CA ${bad}`);
  return describeNodeCertificate(cert);
}

/**
 * What the daemon checks of its own certificate at start: that the CA in
 * `caPem` is a CA, in date, and issued it, and that it has not expired (the
 * key is OpenVPN's business, given after `--`). Either mistake would leave a
 * node that runs but that every peer refuses. Throws CertificateError with a
 * one-line reason.
 */
export function checkNodeCertificate(certPem: string, caPem: string, now: Date = new Date()): NodeCertificate {
  let cert: X509Certificate;
  let ca: X509Certificate;
  try {
    ca = new X509Certificate(caPem);
  } catch (e) {
    throw new CertificateError(`the CA file is not a PEM certificate (${(e as Error).message})`);
  }
  try {
    cert = new X509Certificate(certPem);
  } catch (e) {
    throw new CertificateError(`the certificate file is not a PEM certificate (${(e as Error).message})`);
  }
  const bad = caProblem(ca, now);
  if (bad) throw new CertificateError(`the CA certificate ${bad}`);
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) throw new CertificateError("the certificate was not issued by the given CA");
  if (Date.parse(cert.validTo) <= now.getTime()) throw new CertificateError(`the certificate expired on ${cert.validTo}: peers refuse it`);
  return describeNodeCertificate(cert);
}

/** Days of validity under which setup (and the daemon) warn that a certificate must be renewed. */
export const EXPIRY_WARNING_DAYS = 30;

/** Whole days `cert` has left at `now` (negative once expired). */
export function daysLeft(cert: X509Certificate, now: Date = new Date()): number {
  return Math.floor((Date.parse(cert.validTo) - now.getTime()) / 86_400_000);
}

/** AlgorithmIdentifier sha256WithRSAEncryption, parameters NULL. */
const SHA256_WITH_RSA = Buffer.from("300d06092a864886f70d01010b0500", "hex");

/**
 * The PKCS#10 request of a renewal: the subject of `certPem`, byte for byte,
 * and the public half of `key`, signed with it (SHA-256), built with the DER
 * writer rather than node-forge, which the daemon does not load. Throws
 * CertificateError when `key` is not the certificate's.
 */
export function renewalRequest(certPem: string, key: KeyObject): string {
  const cert = new X509Certificate(certPem);
  if (!cert.checkPrivateKey(key)) throw new CertificateError("the key given to OpenVPN (--key) is not the certificate's");
  const spki = createPublicKey(key).export({ type: "spki", format: "der" });
  // CertificationRequestInfo: version 0, subject, subjectPKInfo, attributes [0] (none).
  const info = derElement(TAG.SEQUENCE, Buffer.from([TAG.INTEGER, 1, 0]), subjectDer(cert), spki, Buffer.from([TAG.CONTEXT_0, 0]));
  const signature = sign("sha256", info, key);
  const der = derElement(TAG.SEQUENCE, info, SHA256_WITH_RSA, derElement(TAG.BIT_STRING, Buffer.from([0]), signature));
  return `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64").replace(/.{64}/g, "$&\n").replace(/\n?$/, "\n")}-----END CERTIFICATE REQUEST-----\n`;
}
