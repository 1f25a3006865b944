// Certificates: what the registry signs, setup requests and the daemon reads.
// node-forge builds and parses the X.509 structures; Node's crypto does the
// RSA work (key generation, signing), which forge does slowly in JavaScript.

import { createPrivateKey, createPublicKey, generateKeyPair, KeyObject, randomBytes, sign, X509Certificate } from "node:crypto";
import forge from "node-forge";
import { Bits, networkFromSerial } from "./address";
import { CertificateError } from "./x509";

// Present in node-forge, missing from its type definitions.
const getTBSCertificate = (forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 }).getTBSCertificate;
const getCertificationRequestInfo = (forge.pki as unknown as {
  getCertificationRequestInfo(c: forge.pki.CertificateSigningRequest): forge.asn1.Asn1;
}).getCertificationRequestInfo;

export const MIN_RSA_BITS = 2048;
const DAY_MS = 86_400_000;

export interface SubjectAttribute {
  /** Short name as pyOpenSSL and OpenSSL spell it: C, ST, L, O, OU, CN, emailAddress. */
  name: string;
  value: string;
}

export interface CertificateAuthority {
  pem: string;
  network: Bits;
  /** The CA's subject, as issued certificates name their issuer. */
  subject: forge.pki.CertificateField[];
  key: KeyObject;
}

/**
 * forge reads UTF8String values as raw bytes but encodes them again when
 * writing: decode them on reading, or "Société" is issued as "SociÃ©tÃ©"
 * (and an issuer so garbled no longer matches its CA).
 */
function decodeUtf8Values(attrs: readonly forge.pki.CertificateField[]): forge.pki.CertificateField[] {
  return attrs.map((a) =>
    (a as { valueTagClass?: number }).valueTagClass === forge.asn1.Type.UTF8 && typeof a.value === "string"
      ? { ...a, value: forge.util.decodeUtf8(a.value) }
      : { ...a });
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
  return { pem: caPem, network, subject: decodeUtf8Values(forge.pki.certificateFromPem(caPem).subject.attributes), key };
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
  return { subject: decodeUtf8Values(csr.subject.attributes), publicKey: key };
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
  cert.setIssuer(ca.subject);
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

// ---- Node side: the key and certificate request setup makes ----

/**
 * The subject attributes a request may carry (`-r NAME VALUE`), by the names
 * pyOpenSSL's X509Name accepts, with what OpenSSL enforces for each: the
 * string type it writes (UTF8String under its default "utf8only" mask,
 * PrintableString for C, IA5String for emailAddress) and the length bounds
 * of its string table, so a value OpenSSL would refuse is refused here too.
 */
interface AttributeSpec {
  short: string;
  oid: string;
  tag: number;
  min: number;
  max: number;
}

const UTF8 = forge.asn1.Type.UTF8;
const ATTRIBUTES: readonly AttributeSpec[] = [
  { short: "C", oid: "2.5.4.6", tag: forge.asn1.Type.PRINTABLESTRING, min: 2, max: 2 },
  { short: "ST", oid: "2.5.4.8", tag: UTF8, min: 1, max: 128 },
  { short: "L", oid: "2.5.4.7", tag: UTF8, min: 1, max: 128 },
  { short: "O", oid: "2.5.4.10", tag: UTF8, min: 1, max: 64 },
  { short: "OU", oid: "2.5.4.11", tag: UTF8, min: 1, max: 64 },
  { short: "CN", oid: "2.5.4.3", tag: UTF8, min: 1, max: 64 },
  { short: "emailAddress", oid: "1.2.840.113549.1.9.1", tag: forge.asn1.Type.IA5STRING, min: 1, max: 128 },
];
const LONG_NAMES: Record<string, string> = {
  countryName: "C", stateOrProvinceName: "ST", localityName: "L", organizationName: "O",
  organizationalUnitName: "OU", commonName: "CN",
};

/** The names `-r` accepts, for messages. */
export const SUBJECT_ATTRIBUTE_NAMES: readonly string[] = ATTRIBUTES.map((a) => a.short);

/**
 * Checks one subject attribute; returns it with its short name, or throws
 * CertificateError saying what is wrong. Long names (organizationName) are
 * accepted, as pyOpenSSL accepts them.
 */
export function checkSubjectAttribute(name: string, value: string): SubjectAttribute {
  const short = LONG_NAMES[name] ?? name;
  const spec = ATTRIBUTES.find((a) => a.short === short);
  if (!spec) throw new CertificateError(`unknown subject attribute '${name}' (use one of ${SUBJECT_ATTRIBUTE_NAMES.join(", ")})`);
  const length = [...value].length;
  if (length < spec.min || length > spec.max) {
    const bounds = spec.min === spec.max ? `exactly ${spec.min}` : `${spec.min} to ${spec.max}`;
    throw new CertificateError(`subject attribute ${short} must have ${bounds} characters, got ${length}`);
  }
  if (spec.tag === forge.asn1.Type.PRINTABLESTRING && !/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(value))
    throw new CertificateError(`subject attribute ${short} must be printable ASCII letters, such as FR`);
  if (spec.tag === forge.asn1.Type.IA5STRING && !/^[\x00-\x7f]*$/.test(value))
    throw new CertificateError(`subject attribute ${short} must be ASCII`);
  return { name: short, value };
}

/** A new RSA key of `bits` (2048 by default), made by Node's crypto off the main thread. */
export function generateRsaKey(bits = MIN_RSA_BITS): Promise<KeyObject> {
  return new Promise((resolve, reject) =>
    generateKeyPair("rsa", { modulusLength: bits, publicExponent: 0x10001 }, (err, _pub, priv) => (err ? reject(err) : resolve(priv))),
  );
}

/**
 * A PEM PKCS#10 request for `key` with `subject` (attributes in order, each
 * checked by checkSubjectAttribute), signed with SHA-256. node-forge builds
 * the structure; Node's crypto makes the signature.
 */
export function createCertificateRequest(key: KeyObject, subject: readonly SubjectAttribute[]): string {
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.publicKeyFromPem(createPublicKey(key).export({ type: "spki", format: "pem" }).toString());
  csr.setSubject(
    subject.map((a) => {
      const { name, value } = checkSubjectAttribute(a.name, a.value);
      const spec = ATTRIBUTES.find((s) => s.short === name)!;
      // forge expects UTF8String values as JavaScript strings and encodes them itself.
      return { type: spec.oid, value, valueTagClass: spec.tag } as forge.pki.CertificateField;
    }),
  );
  const oid = forge.pki.oids["sha256WithRSAEncryption"]!;
  const c = csr as typeof csr & { signatureOid: string; siginfo: { algorithmOid: string }; certificationRequestInfo: forge.asn1.Asn1 };
  c.md = forge.md.sha256.create();
  c.signatureOid = oid;
  c.siginfo.algorithmOid = oid;
  c.certificationRequestInfo = getCertificationRequestInfo(csr);
  const cri = Buffer.from(forge.asn1.toDer(c.certificationRequestInfo).getBytes(), "binary");
  c.signature = sign("sha256", cri, key).toString("binary");
  return forge.pki.certificationRequestToPem(csr);
}

/** The PEM of a private key as setup stores it (PKCS#8, unencrypted, as OpenSSL 1.0+ writes). */
export function privateKeyPem(key: KeyObject): string {
  return key.export({ type: "pkcs8", format: "pem" }).toString();
}

