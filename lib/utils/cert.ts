// Certificates: what the registry signs, setup requests and the daemon reads.
// node-forge builds the X.509 structures; Node's crypto does all the RSA work
// (key generation, signing, verifying), which forge does slowly and without
// bounds in JavaScript. Requests are taken apart by ./der.ts, never by forge.

import {
  createPrivateKey, createPublicKey, generateKeyPair, KeyObject, randomBytes, sign, verify, X509Certificate,
} from "node:crypto";
import forge from "node-forge";
import { Bits, networkFromSerial } from "./address";
import { DerElement, DerError, TAG, bytesOf, children, contentOf, expectElement, oidOf, readElement } from "./der";
import { CertificateError, caProblem, subjectDer } from "./x509";

// Present in node-forge, missing from its type definitions.
const getTBSCertificate = (forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 }).getTBSCertificate;
const getCertificationRequestInfo = (forge.pki as unknown as {
  getCertificationRequestInfo(c: forge.pki.CertificateSigningRequest): forge.asn1.Asn1;
}).getCertificationRequestInfo;

export const MIN_RSA_BITS = 2048;
/** Larger keys cost the registry CPU time to check and buy nothing. */
export const MAX_RSA_BITS = 4096;
/** The one public exponent accepted: what every RSA key generator uses. */
export const RSA_EXPONENT = 65537n;
/** Most attributes an issued subject carries (the CN included). */
export const MAX_SUBJECT_ATTRIBUTES = 16;
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
  /** The CA certificate's public key, which checks what it issues. */
  publicKey: KeyObject;
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
  const bad = caProblem(x509);
  if (bad) throw new CertificateError(`the CA certificate ${bad}`);
  return { pem: caPem, network, subject: decodeUtf8Values(forge.pki.certificateFromPem(caPem).subject.attributes), key, publicKey: x509.publicKey };
}

export interface CheckedRequest {
  /**
   * The subject the certificate gets: the request's attributes of the
   * allowed names, checked, in order, with a single CN where the request's
   * first CN was (the registry replaces its value; appended if absent).
   */
  subject: SubjectAttribute[];
  /** The request's RSA key, checked: MIN_RSA_BITS to MAX_RSA_BITS, exponent RSA_EXPONENT. */
  publicKey: KeyObject;
}

/** Hash of each signature algorithm a request may use (PKCS#1 v1.5; the legacy setup signs with SHA-1). */
const REQUEST_SIGNATURES: Record<string, string> = {
  "1.2.840.113549.1.1.5": "sha1",
  "1.2.840.113549.1.1.14": "sha224",
  "1.2.840.113549.1.1.11": "sha256",
  "1.2.840.113549.1.1.12": "sha384",
  "1.2.840.113549.1.1.13": "sha512",
};

const PEM_REQUEST = /-----BEGIN (NEW )?CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END \1CERTIFICATE REQUEST-----/;

/** How each string type's bytes read: what OpenSSL assumes of the 8-bit ones. */
function decodeString(tag: number, bytes: Buffer, name: string): string {
  switch (tag) {
    case TAG.UTF8_STRING:
      try {
        return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      } catch {
        throw new CertificateError(`subject attribute ${name} is not valid UTF-8`);
      }
    case TAG.PRINTABLE_STRING: case TAG.IA5_STRING: case TAG.T61_STRING: case TAG.VISIBLE_STRING:
      return bytes.toString("latin1");
    case TAG.BMP_STRING:
      if (bytes.length % 2) throw new CertificateError(`subject attribute ${name} is a malformed BMPString`);
      return Buffer.from(bytes).swap16().toString("utf16le");
    default:
      throw new CertificateError(`subject attribute ${name} is not a string (ASN.1 tag 0x${tag.toString(16)})`);
  }
}

/**
 * The subject of a request, rebuilt: each attribute checked by
 * checkSubjectAttribute (allowed names, OpenSSL's bounds), a bounded count,
 * every CN but the first dropped, since the registry sets the one CN.
 */
function requestSubject(der: Buffer, name: DerElement): SubjectAttribute[] {
  const out: SubjectAttribute[] = [];
  let haveCn = false;
  for (const rdn of children(der, name, MAX_SUBJECT_ATTRIBUTES + 1)) {
    if (rdn.tag !== TAG.SET) throw new DerError("a name component is not a SET");
    for (const ava of children(der, rdn, MAX_SUBJECT_ATTRIBUTES + 1)) {
      if (ava.tag !== TAG.SEQUENCE) throw new DerError("a name attribute is not a SEQUENCE");
      const [type, value, extra] = children(der, ava, 3);
      if (!type || !value || extra) throw new DerError("a name attribute is not a type and a value");
      const oid = oidOf(der, type);
      const spec = ATTRIBUTES.find((a) => a.oid === oid);
      if (!spec) throw new CertificateError(`the request's subject has an attribute the registry does not issue (${oid}); allowed: ${SUBJECT_ATTRIBUTE_NAMES.join(", ")}`);
      const text = decodeString(value.tag, contentOf(der, value), spec.short);
      if (spec.short === "CN") {
        // Its value is never used: only where it stands.
        if (!haveCn) out.push({ name: "CN", value: "" });
        haveCn = true;
      } else {
        out.push(checkSubjectAttribute(spec.short, text));
      }
      if (out.length > MAX_SUBJECT_ATTRIBUTES) throw new CertificateError(`the request's subject has more than ${MAX_SUBJECT_ATTRIBUTES} attributes`);
    }
  }
  return out;
}

/** The request's key, if it is one the registry signs: checked before any signature work. */
function requestKey(der: Buffer, spki: DerElement): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: bytesOf(der, spki), format: "der", type: "spki" });
  } catch {
    throw new CertificateError("the request's public key cannot be read");
  }
  if (key.asymmetricKeyType !== "rsa") throw new CertificateError(`the request's key is ${key.asymmetricKeyType ?? "of an unknown type"}, not RSA`);
  const { modulusLength: bits = 0, publicExponent } = key.asymmetricKeyDetails ?? {};
  if (bits < MIN_RSA_BITS) throw new CertificateError(`the request's RSA key has ${bits} bits; at least ${MIN_RSA_BITS} are required`);
  if (bits > MAX_RSA_BITS) throw new CertificateError(`the request's RSA key has ${bits} bits; at most ${MAX_RSA_BITS} are accepted`);
  if (publicExponent !== RSA_EXPONENT) throw new CertificateError(`the request's RSA public exponent must be ${RSA_EXPONENT}`);
  return key;
}

/**
 * Parses a PEM PKCS#10 request, checks its key (RSA, 2048 to 4096 bits,
 * exponent 65537) and only then its signature, with Node's crypto: a
 * hostile request costs a parse, never an unbounded computation. Every
 * problem is a CertificateError saying what is wrong.
 */
export function checkRequest(csrPem: string): CheckedRequest {
  const pem = PEM_REQUEST.exec(csrPem);
  if (!pem) throw new CertificateError("not a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)");
  const der = Buffer.from(pem[2]!.replace(/\s+/g, ""), "base64");
  try {
    const outer = expectElement(der, 0, TAG.SEQUENCE, der.length, "request");
    if (outer.end !== der.length) throw new DerError("bytes after the request");
    const [info, algorithm, signature, extra] = children(der, outer, 4);
    if (!info || !algorithm || !signature || extra) throw new DerError("a request is its information, an algorithm and a signature");
    if (info.tag !== TAG.SEQUENCE || algorithm.tag !== TAG.SEQUENCE || signature.tag !== TAG.BIT_STRING) throw new DerError("unexpected element types");
    const [version, name, spki] = children(der, info, 4);
    if (!version || version.tag !== TAG.INTEGER || !name || name.tag !== TAG.SEQUENCE || !spki || spki.tag !== TAG.SEQUENCE)
      throw new DerError("malformed request information");
    const subject = requestSubject(der, name);
    const oid = oidOf(der, readElement(der, algorithm.content, algorithm.end));
    const hash = REQUEST_SIGNATURES[oid];
    if (!hash) throw new CertificateError(`the request is signed with an algorithm the registry does not accept (${oid}); use RSA with SHA-256`);
    const publicKey = requestKey(der, spki);
    const sig = contentOf(der, signature);
    if (sig[0] !== 0) throw new DerError("malformed signature");
    let good: boolean;
    try {
      good = verify(hash, bytesOf(der, info), publicKey, sig.subarray(1));
    } catch {
      good = false;
    }
    if (!good) throw new CertificateError("the request's signature does not match its key");
    return { subject, publicKey };
  } catch (e) {
    if (e instanceof DerError) throw new CertificateError(`not a well-formed certificate request (${e.message})`);
    throw e;
  }
}

/** A positive 127-bit serial, hex: unique with overwhelming probability. */
function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x40;
  return b.toString("hex");
}

/** Names given as DER, used as they are: a renewal keeps a subject byte for byte, whatever forge would make of it. */
interface RawNames {
  issuer?: Buffer;
  subject?: Buffer;
}

/** Signs `cert` with an RSA key using SHA-256 through Node's crypto. */
function signSha256(cert: forge.pki.Certificate, key: KeyObject, raw: RawNames = {}): string {
  const oid = forge.pki.oids["sha256WithRSAEncryption"]!;
  const c = cert as forge.pki.Certificate & { signatureOid: string; tbsCertificate: forge.asn1.Asn1 };
  c.md = forge.md.sha256.create();
  c.signatureOid = oid;
  c.siginfo.algorithmOid = oid;
  c.tbsCertificate = getTBSCertificate(cert);
  // TBSCertificate: [0] version, serial, signature, issuer (3), validity, subject (5), ...
  const fields = c.tbsCertificate.value as forge.asn1.Asn1[];
  if (raw.issuer) fields[3] = forge.asn1.fromDer(raw.issuer.toString("binary"));
  if (raw.subject) fields[5] = forge.asn1.fromDer(raw.subject.toString("binary"));
  const tbs = Buffer.from(forge.asn1.toDer(c.tbsCertificate).getBytes(), "binary");
  c.signature = sign("sha256", tbs, key).toString("binary");
  return forge.pki.certificateToPem(cert).replace(/\r\n/g, "\n"); // as OpenSSL writes PEM
}

/** The subject with its CN set to `cn` (added at the end when it has none). */
export function withCommonName(subject: readonly SubjectAttribute[], cn: string): SubjectAttribute[] {
  let placed = false;
  const out = subject.flatMap((a) => {
    if (a.name !== "CN") return [a];
    if (placed) return [];
    placed = true;
    return [{ name: "CN", value: cn }];
  });
  return placed ? out : [...out, { name: "CN", value: cn }];
}

/** forge fields for checked attributes, each with the string type OpenSSL gives it. */
function subjectFields(subject: readonly SubjectAttribute[]): forge.pki.CertificateField[] {
  return subject.map(({ name, value }) => {
    const spec = ATTRIBUTES.find((s) => s.short === name)!;
    // forge expects UTF8String values as JavaScript strings and encodes them itself.
    return { type: spec.oid, value, valueTagClass: spec.tag } as forge.pki.CertificateField;
  });
}

/**
 * Issues a node certificate: the request's checked subject with the CN set
 * to `cn`, issuer = CA subject, SHA-256, CA:FALSE. The result is parsed again
 * and checked with Node's crypto before anyone sees it: a certificate that
 * OpenSSL cannot load must never be stored or handed out.
 */
export function issueCertificate(ca: CertificateAuthority, req: CheckedRequest, cn: string, now: Date, days = 365): string {
  return signNodeCertificate(ca, req.publicKey, { fields: subjectFields(withCommonName(req.subject, cn)) }, cn, now, days);
}

/**
 * Renews a node certificate: the same subject (byte for byte) and key, a
 * new random serial, issuer = CA subject, valid from `now` for `days`,
 * SHA-256, CA:FALSE; so a SHA-1 certificate of the legacy registry comes
 * back as SHA-256. Checked as issueCertificate's are.
 */
export function renewNodeCertificate(ca: CertificateAuthority, oldPem: string, now: Date, days = 365): string {
  let old: X509Certificate;
  try {
    old = new X509Certificate(oldPem);
  } catch (e) {
    throw new CertificateError(`not a PEM certificate (${(e as Error).message})`);
  }
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(old.subject)?.[1];
  if (cn === undefined) throw new CertificateError("the certificate has no common name");
  const subject = subjectDer(old);
  const pem = signNodeCertificate(ca, old.publicKey, { raw: subject }, cn, now, days);
  if (!subjectDer(new X509Certificate(pem)).equals(subject)) throw new CertificateError("the renewed certificate does not keep the subject");
  return pem;
}

/** Makes, signs and checks a node certificate; the result is parsed again before anyone sees it. */
function signNodeCertificate(
  ca: CertificateAuthority, publicKey: KeyObject, subject: { fields: forge.pki.CertificateField[] } | { raw: Buffer }, cn: string, now: Date, days: number,
): string {
  const cert = forge.pki.createCertificate();
  cert.version = 2;
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = now;
  cert.validity.notAfter = new Date(now.getTime() + days * DAY_MS);
  cert.setSubject("fields" in subject ? subject.fields : []);
  cert.setIssuer(ca.subject);
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: "spki", format: "pem" }).toString());
  cert.setExtensions([{ name: "basicConstraints", cA: false }]);
  const pem = signSha256(cert, ca.key, "raw" in subject ? { subject: subject.raw } : {});
  let check: X509Certificate;
  try {
    check = new X509Certificate(pem);
  } catch (e) {
    throw new CertificateError(`the certificate made for this request does not load (${(e as Error).message})`);
  }
  const cns = check.subject.split("\n").filter((line) => line.startsWith("CN="));
  if (!check.verify(ca.publicKey) || cns.length !== 1 || cns[0] !== `CN=${cn}`)
    throw new CertificateError("the certificate made for this request does not check out (signature or common name)");
  return pem;
}

/** A self-signed CA whose serial carries `network`, for vifibnet-ca. */
export function createCaCertificate(key: KeyObject, serial: bigint, subject: readonly SubjectAttribute[], now: Date, days: number): string {
  const attrs = subject.map((a) => ({ shortName: a.name, value: a.value }));
  return selfSignCa(key, serial, attrs, now, days);
}

/**
 * The CA certificate again, valid from `now` for `days`: the same key,
 * subject (byte for byte) and serial (so the same network), so every
 * certificate it issued still verifies. For vifibnet-ca --renew; a CA made
 * with the legacy openssl recipe renews the same way. Throws
 * CertificateError when `keyPem` is not the certificate's key.
 */
export function renewCaCertificate(caPem: string, keyPem: string, now: Date, days: number): string {
  let old: X509Certificate, key: KeyObject;
  try {
    old = new X509Certificate(caPem);
  } catch (e) {
    throw new CertificateError(`the CA certificate is not a PEM certificate (${(e as Error).message})`);
  }
  try {
    key = createPrivateKey(keyPem);
  } catch (e) {
    throw new CertificateError(`the CA key is not a PEM private key, or it is encrypted (${(e as Error).message})`);
  }
  if (!old.checkPrivateKey(key)) throw new CertificateError("the key does not belong to the CA certificate");
  const subject = subjectDer(old);
  return selfSignCa(key, BigInt("0x" + old.serialNumber), [], now, days, subject);
}

function selfSignCa(key: KeyObject, serial: bigint, attrs: forge.pki.CertificateField[], now: Date, days: number, rawSubject?: Buffer): string {
  const cert = forge.pki.createCertificate();
  cert.version = 2;
  let hex = serial.toString(16);
  if (hex.length % 2) hex = "0" + hex;
  if (parseInt(hex.slice(0, 2), 16) >= 0x80) hex = "00" + hex; // keep the DER integer positive
  cert.serialNumber = hex;
  cert.validity.notBefore = now;
  cert.validity.notAfter = new Date(now.getTime() + days * DAY_MS);
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.publicKey = forge.pki.publicKeyFromPem(createPublicKey(key).export({ type: "spki", format: "pem" }).toString());
  cert.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  return signSha256(cert, key, rawSubject ? { subject: rawSubject, issuer: rawSubject } : {});
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
  if (/[\x00-\x1f\x7f]/.test(value)) throw new CertificateError(`subject attribute ${short} must not hold control characters`);
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

