// Reading certificates with Node's own X509Certificate: what setup checks of
// the certificate it receives and the daemon of its own. Kept apart from
// ./cert.ts so the daemon does not load node-forge (about 10 MB resident).

import { KeyObject, X509Certificate } from "node:crypto";
import { Bits, cnToPrefix, networkFromSerial } from "./address";

/** A certificate or request that cannot be used, with a reason a user can act on. */
export class CertificateError extends Error {
  override name = "CertificateError";
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

/** One DER element at `at`: where its content starts and where it ends. */
function derElement(der: Buffer, at: number): { content: number; end: number } {
  let len = der[at + 1];
  let content = at + 2;
  if (len === undefined) throw new CertificateError("truncated certificate");
  if (len & 0x80) {
    const bytes = len & 0x7f;
    len = 0;
    for (let i = 0; i < bytes; i++) len = len * 256 + der[content + i]!;
    content += bytes;
  }
  return { content, end: content + len };
}

/** DER of the OID sha1WithRSAEncryption, 1.2.840.113549.1.1.5. */
const SHA1_WITH_RSA = Buffer.from("2a864886f70d010105", "hex");

/** Whether the certificate's signature algorithm is SHA-1 with RSA (Node 20 does not tell). */
export function signedWithSha1(cert: X509Certificate): boolean {
  const der = cert.raw;
  const tbs = derElement(der, derElement(der, 0).content); // Certificate { tbsCertificate, signatureAlgorithm, ... }
  const oid = derElement(der, derElement(der, tbs.end).content); // AlgorithmIdentifier { algorithm OID, ... }
  return der.subarray(oid.content, oid.end).equals(SHA1_WITH_RSA);
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
  return describeNodeCertificate(cert);
}

/**
 * What the daemon checks of its own certificate at start: that the CA in
 * `caPem` issued it (the key is OpenVPN's business, given after `--`).
 * Throws CertificateError with a one-line reason.
 */
export function checkNodeCertificate(certPem: string, caPem: string): NodeCertificate {
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
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) throw new CertificateError("the certificate was not issued by the given CA");
  return describeNodeCertificate(cert);
}
