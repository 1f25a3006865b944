// vifibnet-setup --renew: a new certificate for the node's key and prefix
// (the registry method renewCertificate), so the node keeps its address.
// The new cert.crt is checked (our key, our CA, our CN) and written
// atomically; the previous one stays as cert.crt.old. Nothing is written
// unless the whole renewal succeeded.

import { KeyObject, X509Certificate, createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { XmlRpcFault } from "../rpc-client";
import { createCertificateRequest } from "../utils/cert";
import { CertificateError, checkIssuedCertificate, checkNodeCertificate } from "../utils/x509";
import type { SetupOptions } from "./args";
import { SetupError, SetupIo, callRetried, warnIfExpiring } from "./run";
import type { Staging } from "./stage";

function readNodeFile(dir: string, name: string): string {
  const path = join(dir, name);
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === "ENOENT" ? "no such file (is it a node directory, set up with vifibnet-setup?)" : err.code === "EACCES" ? "permission denied" : err.message;
    throw new SetupError(`cannot read ${path}: ${why}`);
  }
}

export async function runRenew(opts: SetupOptions, io: SetupIo, staging: Staging): Promise<void> {
  const dir = opts.dir;
  const path = (name: string): string => join(dir, name);
  const oldPem = readNodeFile(dir, "cert.crt");
  const keyPem = readNodeFile(dir, "cert.key");
  const caPem = readNodeFile(dir, "ca.pem");
  let key: KeyObject, old: X509Certificate;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw new SetupError(`${path("cert.key")} is not a PEM private key (or it is encrypted)`);
  }
  try {
    old = new X509Certificate(oldPem);
  } catch {
    throw new SetupError(`${path("cert.crt")} is not a PEM certificate`);
  }
  if (!old.checkPrivateKey(key)) throw new SetupError(`${path("cert.key")} is not the key of ${path("cert.crt")}: renewal keeps the key, so they must match`);
  let before;
  try {
    // The date does not matter here: an expired certificate is what may need renewing.
    before = checkNodeCertificate(oldPem, caPem, new Date(Date.parse(old.validFrom)));
  } catch (e) {
    if (e instanceof CertificateError) throw new SetupError(`${path("cert.crt")}, ${path("ca.pem")}: ${e.message}`);
    throw e;
  }
  warnIfExpiring(io, path("ca.pem"), new X509Certificate(caPem), "the network's CA must be renewed on the registry (vifibnet-ca --renew)");

  // The registry keeps the subject it issued; the request only proves we hold the key.
  const csr = createCertificateRequest(key, []);
  let newPem: string;
  try {
    const answer = await callRetried(io, "renewCertificate", [oldPem, csr]);
    if (typeof answer !== "string") throw new SetupError("renewCertificate: the registry answered something else than a certificate: is it a vifibnet registry?");
    newPem = answer.endsWith("\n") ? answer : answer + "\n";
  } catch (e) {
    if (e instanceof XmlRpcFault) {
      const legacy = /is not supported|no such method|unknown method/i.test(e.faultString) ? " (a legacy registry: it cannot renew; the node must enrol again with a token)" : "";
      throw new SetupError(`renewCertificate: the registry refused: ${e.detail}${legacy}; ${path("cert.crt")} is unchanged`);
    }
    throw e;
  }
  let after;
  try {
    after = checkIssuedCertificate(newPem, key, caPem);
  } catch (e) {
    if (e instanceof CertificateError) throw new SetupError(`renewCertificate: ${e.message}; ${path("cert.crt")} is unchanged`);
    throw e;
  }
  if (after.commonName !== before.commonName)
    throw new SetupError(`renewCertificate: the registry returned a certificate for ${after.commonName}, not ${before.commonName}; ${path("cert.crt")} is unchanged`);
  if (newPem === oldPem || new X509Certificate(newPem).raw.equals(old.raw)) {
    io.info(`${path("cert.crt")}: the registry returned the same certificate; nothing changed`);
    return;
  }
  try {
    staging.write("cert.crt.old", oldPem, 0o644);
    staging.write("cert.crt", newPem, 0o644);
    staging.commit();
  } catch (e) {
    staging.abort();
    throw new SetupError(`cannot write to ${dir}: ${(e as Error).message}; ${path("cert.crt")} is unchanged`);
  }
  const cert = new X509Certificate(newPem);
  io.info(`${path("cert.crt")}: renewed (CN ${after.commonName}, same key), valid until ${cert.validTo}; the previous one is in cert.crt.old`);
  io.info("A running node takes it when its OpenVPN servers restart (systemctl restart vifibnet, or restart vifibnet by hand).");
}
