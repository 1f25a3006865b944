// Test PKI: a CA for a given network and CSRs of chosen quality.

import { KeyObject, generateKeyPairSync } from "node:crypto";
import forge from "node-forge";
import { parseIpv6Prefix, serialFromNetwork } from "../lib/utils/address";
import { createCaCertificate } from "../lib/utils/cert";

export interface TestCa {
  pem: string;
  keyPem: string;
  key: KeyObject;
}

export function makeCa(prefix = "2001:db8:42::/48", cn = "test CA"): TestCa {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pem = createCaCertificate(privateKey, serialFromNetwork(parseIpv6Prefix(prefix)!), [{ name: "O", value: "vifibnet tests" }, { name: "CN", value: cn }], new Date(), 30);
  return { pem, keyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(), key: privateKey };
}

export interface CsrOptions {
  bits?: number;
  subject?: Array<{ shortName: string; value: string }>;
  /** Change the subject after signing, so the signature no longer matches. */
  tamper?: boolean;
}

/** A PEM CSR signed with SHA-256, and its key. */
export function makeCsr(opts: CsrOptions = {}): { csr: string; keyPem: string } {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: opts.bits ?? 2048 });
  const keyPem = privateKey.export({ type: "pkcs1", format: "pem" }).toString();
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
