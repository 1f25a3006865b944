// Certificates: what the registry signs, setup requests and the daemon reads.
// node-forge builds and parses the X.509 structures; Node's crypto does the
// RSA work (key generation, signing), which forge does slowly in JavaScript.

import { createPrivateKey, createPublicKey, KeyObject, randomBytes, sign, X509Certificate } from "node:crypto";
import forge from "node-forge";
import { Bits, networkFromSerial } from "./address";

// Present in node-forge, missing from its type definitions.
const getTBSCertificate = (forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 }).getTBSCertificate;

/** A certificate or request that cannot be used, with a reason a user can act on. */
export class CertificateError extends Error {
  override name = "CertificateError";
}

export const MIN_RSA_BITS = 2048;
const DAY_MS = 86_400_000;

export interface SubjectAttribute {
  /** Short name as pyOpenSSL and OpenSSL spell it: C, ST, L, O, OU, CN, emailAddress. */
  name: string;
  value: string;
}

/** The network prefix a CA certificate carries in its serial (SPEC section 2). */
export function caNetwork(caPem: string): Bits {
  const serial = BigInt("0x" + new X509Certificate(caPem).serialNumber);
  return networkFromSerial(serial);
}

export interface CertificateAuthority {
  pem: string;
  network: Bits;
  cert: forge.pki.Certificate;
  key: KeyObject;
}

/** Loads a CA certificate and its key, checking they belong together. */
export function loadCa(caPem: string, keyPem: string): CertificateAuthority {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(caPem);
  } catch (e) {
    throw new CertificateError(`not a PEM certificate (${(e as Error).message})`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (e) {
    throw new CertificateError(`not a PEM private key, or it is encrypted (${(e as Error).message})`);
  }
  if (key.asymmetricKeyType !== "rsa") throw new CertificateError(`the CA key is ${key.asymmetricKeyType}; only RSA is supported`);
  if (!x509.checkPrivateKey(key)) throw new CertificateError("the key does not belong to the CA certificate");
  const network = networkFromSerial(BigInt("0x" + x509.serialNumber));
  if (network.length > 112) throw new CertificateError(`the CA serial gives a /${network.length} network: no room for /16 node prefixes`);
  return { pem: caPem, network, cert: forge.pki.certificateFromPem(caPem), key };
}

export interface CheckedRequest {
  subject: forge.pki.CertificateField[];
  publicKey: forge.pki.rsa.PublicKey;
}

/** Parses a PEM CSR and checks its signature and key size. */
export function checkRequest(csrPem: string): CheckedRequest {
  let csr: ReturnType<typeof forge.pki.certificationRequestFromPem>;
  try {
    csr = forge.pki.certificationRequestFromPem(csrPem);
  } catch (e) {
    const why = (e as Error).message;
    throw new CertificateError(/not RSA/.test(why) ? "the request's key is not RSA" : `not a PEM certificate request (${why})`);
  }
  if (!csr.verify()) throw new CertificateError("the request's signature does not match its key");
  const key = csr.publicKey as forge.pki.rsa.PublicKey | null;
  if (!key) throw new CertificateError("the request has no public key");
  const bits = key.n.bitLength();
  if (bits < MIN_RSA_BITS) throw new CertificateError(`the request's RSA key has ${bits} bits; at least ${MIN_RSA_BITS} are required`);
  return { subject: csr.subject.attributes, publicKey: key };
}

/** A positive 127-bit serial, hex: unique with overwhelming probability. */
function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x40;
  return b.toString("hex");
}

/** Signs `cert` with an RSA key using SHA-256 through Node's crypto. */
function signSha256(cert: forge.pki.Certificate, key: KeyObject): string {
  const oid = forge.pki.oids["sha256WithRSAEncryption"]!;
  const c = cert as forge.pki.Certificate & { signatureOid: string; tbsCertificate: forge.asn1.Asn1 };
  c.md = forge.md.sha256.create();
  c.signatureOid = oid;
  c.siginfo.algorithmOid = oid;
  c.tbsCertificate = getTBSCertificate(cert);
  const tbs = Buffer.from(forge.asn1.toDer(c.tbsCertificate).getBytes(), "binary");
  c.signature = sign("sha256", tbs, key).toString("binary");
  return forge.pki.certificateToPem(cert).replace(/\r\n/g, "\n"); // as OpenSSL writes PEM
}

/** Replaces (or adds) the CN of a subject, keeping the other attributes in order. */
export function withCommonName(subject: readonly forge.pki.CertificateField[], cn: string): forge.pki.CertificateField[] {
  const out = subject.map((a) => ({ ...a }));
  const at = out.findIndex((a) => a.shortName === "CN" || a.name === "commonName" || a.type === "2.5.4.3");
  if (at >= 0) out[at]!.value = cn;
  else out.push({ shortName: "CN", value: cn });
  return out;
}

/** Issues a node certificate: subject with CN replaced, issuer = CA subject, SHA-256. */
export function issueCertificate(ca: CertificateAuthority, req: CheckedRequest, cn: string, now: Date, days = 365): string {
  const cert = forge.pki.createCertificate();
  cert.version = 2;
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = now;
  cert.validity.notAfter = new Date(now.getTime() + days * DAY_MS);
  cert.setSubject(withCommonName(req.subject, cn));
  cert.setIssuer(ca.cert.subject.attributes);
  cert.publicKey = req.publicKey;
  cert.setExtensions([{ name: "basicConstraints", cA: false }]);
  return signSha256(cert, ca.key);
}

/** A self-signed CA whose serial carries `network`, for vifibnet-ca. */
export function createCaCertificate(key: KeyObject, serial: bigint, subject: readonly SubjectAttribute[], now: Date, days: number): string {
  const cert = forge.pki.createCertificate();
  cert.version = 2;
  let hex = serial.toString(16);
  if (hex.length % 2) hex = "0" + hex;
  if (parseInt(hex.slice(0, 2), 16) >= 0x80) hex = "00" + hex; // keep the DER integer positive
  cert.serialNumber = hex;
  cert.validity.notBefore = now;
  cert.validity.notAfter = new Date(now.getTime() + days * DAY_MS);
  const attrs = subject.map((a) => ({ shortName: a.name, value: a.value }));
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.publicKey = forge.pki.publicKeyFromPem(createPublicKey(key).export({ type: "spki", format: "pem" }).toString());
  cert.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  return signSha256(cert, key);
}
