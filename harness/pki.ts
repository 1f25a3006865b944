// Test PKI: a CA for a given network and CSRs of chosen quality.

import { KeyObject, createPublicKey, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import forge from "node-forge";
import { parseIpv6Prefix, serialFromNetwork } from "../lib/utils/address";
import { createCaCertificate } from "../lib/utils/cert";

export interface TestCa {
  pem: string;
  keyPem: string;
  key: KeyObject;
}

/** A CA valid `days` from now: a year by default, so nothing warns of its expiry (under 30 days left). */
export function makeCa(prefix = "2001:db8:42::/48", cn = "test CA", days = 365): TestCa {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pem = createCaCertificate(privateKey, serialFromNetwork(parseIpv6Prefix(prefix)!), [{ name: "O", value: "vifibnet tests" }, { name: "CN", value: cn }], new Date(), days);
  return { pem, keyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(), key: privateKey };
}

export interface CsrOptions {
  bits?: number;
  /** For this key (PEM) instead of a new one: what a node makes to renew. */
  keyPem?: string;
  subject?: Array<{ shortName: string; value: string }>;
  /** Change the subject after signing, so the signature no longer matches. */
  tamper?: boolean;
}

/** A PEM CSR signed with SHA-256, and its key. */
export function makeCsr(opts: CsrOptions = {}): { csr: string; keyPem: string } {
  const keyPem = opts.keyPem ?? generateKeyPairSync("rsa", { modulusLength: opts.bits ?? 2048 }).privateKey.export({ type: "pkcs1", format: "pem" }).toString();
  const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  csr.setSubject(opts.subject ?? [{ shortName: "C", value: "FR" }, { shortName: "O", value: "Nexedi" }, { shortName: "CN", value: "node" }]);
  csr.sign(key, forge.md.sha256.create());
  if (opts.tamper) {
    csr.setSubject([{ shortName: "CN", value: "someone else" }]);
    (csr as unknown as { certificationRequestInfo: null }).certificationRequestInfo = null; // forge caches the signed part
  }
  return { csr: forge.pki.certificationRequestToPem(csr), keyPem };
}

export interface RawAttribute {
  oid: string;
  /** ASN.1 tag of the value: 0x0c UTF8String, 0x13 PrintableString, 0x02 INTEGER... */
  tag: number;
  bytes: Buffer;
}

export interface RawCsrOptions {
  attributes?: RawAttribute[];
  /** Signs with this key (SHA-256); default a new 2048-bit one. */
  key?: KeyObject;
  /** An RSA public key of any size instead, with a random signature: what a hostile client sends. */
  rsa?: { modulus: Buffer; exponent: Buffer };
}

/** A PEM CSR built byte by byte, for what forge and OpenSSL would never write. */
export function rawCsr(opts: RawCsrOptions = {}): string {
  const { asn1 } = forge;
  const u = (type: number, constructed: boolean, value: string | forge.asn1.Asn1[]) => asn1.create(asn1.Class.UNIVERSAL, type, constructed, value);
  const der = (a: forge.asn1.Asn1): Buffer => Buffer.from(asn1.toDer(a).getBytes(), "binary");
  const fromDer = (b: Buffer): forge.asn1.Asn1 => asn1.fromDer(b.toString("binary"));
  const oid = (o: string) => u(asn1.Type.OID, false, asn1.oidToDer(o).getBytes());
  const integer = (b: Buffer) => u(asn1.Type.INTEGER, false, Buffer.concat([Buffer.from([0]), b]).toString("binary"));
  const name = u(asn1.Type.SEQUENCE, true, (opts.attributes ?? []).map((a) =>
    u(asn1.Type.SET, true, [u(asn1.Type.SEQUENCE, true, [oid(a.oid), u(a.tag, false, a.bytes.toString("binary"))])])));
  const key = opts.rsa ? null : opts.key ?? generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
  const spki = opts.rsa
    ? u(asn1.Type.SEQUENCE, true, [
      u(asn1.Type.SEQUENCE, true, [oid("1.2.840.113549.1.1.1"), u(asn1.Type.NULL, false, "")]),
      u(asn1.Type.BITSTRING, false, "\0" + asn1.toDer(u(asn1.Type.SEQUENCE, true, [integer(opts.rsa.modulus), integer(opts.rsa.exponent)])).getBytes()),
    ])
    : fromDer(createPublicKey(key!).export({ type: "spki", format: "der" }));
  const info = u(asn1.Type.SEQUENCE, true, [u(asn1.Type.INTEGER, false, "\0"), name, spki, asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [])]);
  const signature = key ? sign("sha256", der(info), key) : randomBytes(opts.rsa!.modulus.length);
  const csr = u(asn1.Type.SEQUENCE, true, [
    info,
    u(asn1.Type.SEQUENCE, true, [oid("1.2.840.113549.1.1.11"), u(asn1.Type.NULL, false, "")]),
    u(asn1.Type.BITSTRING, false, "\0" + signature.toString("binary")),
  ]);
  return `-----BEGIN CERTIFICATE REQUEST-----\n${der(csr).toString("base64").replace(/.{64}/g, "$&\n")}\n-----END CERTIFICATE REQUEST-----\n`;
}

/** Random odd bytes of `bits` bits, top bit set: a modulus or exponent nobody can factor or use. */
export function bigOdd(bits: number): Buffer {
  const b = randomBytes(bits / 8);
  b[0]! |= 0x80;
  b[b.length - 1]! |= 1;
  return b;
}

export interface LegacyCertOptions {
  /** The certificate's CN, "N/len". */
  cn: string;
  /** Other subject attributes, before the CN. */
  subject?: Array<{ shortName: string; value: string }>;
  notBefore?: Date;
  days?: number;
}

/**
 * A node certificate as the 2012 registry.py issued it (pyOpenSSL): version 1,
 * serial 0, signed with SHA-1 by the CA, for the key in `keyPem`.
 */
export function legacyCertificate(ca: TestCa, keyPem: string, opts: LegacyCertOptions): string {
  const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const caCert = forge.pki.certificateFromPem(ca.pem);
  const cert = forge.pki.createCertificate();
  cert.version = 0;
  cert.serialNumber = "00";
  const from = opts.notBefore ?? new Date();
  cert.validity.notBefore = from;
  cert.validity.notAfter = new Date(from.getTime() + (opts.days ?? 365) * 86_400_000);
  cert.setSubject([...(opts.subject ?? []), { shortName: "CN", value: opts.cn }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  cert.sign(forge.pki.privateKeyFromPem(ca.keyPem) as forge.pki.rsa.PrivateKey, forge.md.sha1.create());
  return forge.pki.certificateToPem(cert).replace(/\r\n/g, "\n");
}
