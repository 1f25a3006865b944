// The setup flow of the legacy setup.py (SPEC section 5): CA, peers DB with a
// bootstrap peer, token, key and certificate, DH parameters. Everything is
// gathered first and written last (./stage.ts), so any failure leaves the
// directory as it was. Side effects come in through SetupIo and Staging.

import { KeyObject, X509Certificate, createPrivateKey } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { PeersDb, PeersDbError, PeersDbState } from "../db";
import { RpcTransportError, XmlRpcFault } from "../rpc-client";
import { bitsToIpv6, nodeAddress, parseAddressList } from "../utils/address";
import { createCertificateRequest, generateRsaKey, privateKeyPem } from "../utils/cert";
import { CertificateError, EXPIRY_WARNING_DAYS, NodeCertificate, caNetwork, checkIssuedCertificate, daysLeft } from "../utils/x509";
import { FFDHE2048_PEM } from "../utils/dh";
import type { XmlRpcValue } from "../xmlrpc";
import type { SetupOptions } from "./args";
import { NODE_CONFIG, daemonCommand, nodeConfigText, startCommands, unwritablePath } from "./node-config";
import type { Staging } from "./stage";

export const EMAIL_PROMPT = "Please enter your email address : ";
export const TOKEN_PROMPT = "Please enter your token : ";

/** A failure the user can act on; its message is the one line shown. */
export class SetupError extends Error {
  override name = "SetupError";
}

export interface SetupIo {
  call(method: string, params?: readonly XmlRpcValue[]): Promise<XmlRpcValue>;
  /** Asks on standard input; rejects when it ends first. */
  ask(question: string): Promise<string>;
  /** Progress, on standard output. */
  info(line: string): void;
  /** Something the user should know, on standard error. */
  warn(line: string): void;
}

type CaPlan = "new" | "same" | "differs";

interface Gathered {
  caPem: string;
  caPlan: CaPlan;
  previousCa: string | undefined;
  dbState?: PeersDbState;
  bootstrap?: [string, string] | undefined;
  key?: KeyObject;
  certPem?: string;
  node?: NodeCertificate;
}

function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new SetupError(`cannot read ${path}: ${(e as Error).message}`);
  }
}

function sameCertificate(a: string, b: string): boolean {
  if (a.trim() === b.trim()) return true;
  try {
    return new X509Certificate(a).raw.equals(new X509Certificate(b).raw);
  } catch {
    return false;
  }
}

function expectString(method: string, v: XmlRpcValue): string {
  if (typeof v !== "string") throw new SetupError(`${method}: the registry answered ${Array.isArray(v) ? "an array" : typeof v}, expected a string: is it a vifibnet registry?`);
  return v;
}

/** Runs the legacy flow; writes nothing until everything it needs is in hand. */
export async function runSetup(opts: SetupOptions, io: SetupIo, staging: Staging): Promise<void> {
  const dir = opts.dir;
  const path = (name: string): string => join(dir, name);
  const full = !opts.caOnly && !opts.dbOnly;

  // The key is made on the thread pool while we talk to the registry and the user reads mail.
  const keyPromise = full ? generateRsaKey() : undefined;
  keyPromise?.catch(() => undefined); // awaited below; do not report a rejection twice

  // ca.pem
  const caPem = expectString("getCa", await io.call("getCa"));
  let network: string;
  try {
    network = caNetwork(caPem);
  } catch (e) {
    throw new SetupError(`getCa: the registry's CA is not a usable certificate (${(e as Error).message})`);
  }
  warnIfExpiring(io, "the registry's CA", new X509Certificate(caPem), "the network's CA must be renewed on the registry (vifibnet-ca --renew)");
  const previousCa = readIfExists(path("ca.pem"));
  const caPlan: CaPlan = previousCa === undefined ? "new" : sameCertificate(previousCa, caPem) ? "same" : "differs";
  const g: Gathered = { caPem, caPlan, previousCa };
  if (caPlan === "differs")
    io.warn(`${path("ca.pem")} holds another CA than the registry's (another network, or a new CA): it will be replaced, the old one kept as ca.pem.old`);

  if (!opts.caOnly) {
    // peers.db: an existing peers table is kept as it is, as the legacy did.
    try {
      g.dbState = PeersDb.inspect(path("peers.db"));
    } catch (e) {
      if (e instanceof PeersDbError) throw new SetupError(e.message);
      throw e;
    }
    if (g.dbState === "ready") io.info(`${path("peers.db")}: table peers already exists, leaving it as it is`);
    else if (!opts.noBoot) g.bootstrap = await bootstrapPeer(io);
  }

  if (full) {
    if (orphanKey(path("cert.key"), path("cert.crt")))
      io.warn(`${path("cert.key")} has no matching cert.crt (an interrupted setup?): both will be replaced`);
    const email = opts.email ?? (opts.token === undefined && !opts.askToken ? await io.ask(EMAIL_PROMPT) : undefined);
    if (email !== undefined) {
      try {
        await io.call("requestToken", [email]);
      } catch (e) {
        if (e instanceof XmlRpcFault) throw new SetupError(`requestToken: the registry failed to send a token to ${email} (${e.detail})`);
        throw e;
      }
      io.info(`A token was sent to ${email}.`);
    }
    const token = opts.token ?? (await io.ask(TOKEN_PROMPT));
    g.key = await keyPromise!;
    const csr = createCertificateRequest(g.key, opts.subject);
    try {
      g.certPem = expectString("requestCertificate", await callRetried(io, "requestCertificate", [token, csr]));
    } catch (e) {
      if (e instanceof XmlRpcFault)
        throw new SetupError(`requestCertificate: the registry refused the token or the request (${e.detail}); a token works once: run again for a new one`);
      throw e;
    }
    try {
      g.node = checkIssuedCertificate(g.certPem, g.key, caPem);
    } catch (e) {
      if (e instanceof CertificateError) throw new SetupError(`requestCertificate: ${e.message}; nothing was written`);
      throw e;
    }
    warnIfExpiring(io, "cert.crt", new X509Certificate(g.certPem), "renew it with vifibnet-setup --renew");
    if (g.node.sha1)
      io.warn("the registry signed cert.crt with SHA-1 (a legacy registry): vifibnet nodes accept it, but legacy nodes whose OpenVPN uses OpenSSL 3 refuse it (\"ca md too weak\")");
  }

  stageAndCommit(opts, g, network, io, staging);
}

/** Tries a call made again without harm (the registry answers a retry with what it issued) up to ATTEMPTS times on transport errors. */
export async function callRetried(io: SetupIo, method: string, params: readonly XmlRpcValue[]): Promise<XmlRpcValue> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await io.call(method, params);
    } catch (e) {
      if (!(e instanceof RpcTransportError) || attempt >= ATTEMPTS) throw e;
      io.warn(`${e.message}; trying again (${attempt + 1}/${ATTEMPTS})`);
      await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS));
    }
  }
}

const ATTEMPTS = 3;
const RETRY_DELAY_MS = 2_000;

/** Warns when `cert` has less than EXPIRY_WARNING_DAYS left. */
export function warnIfExpiring(io: SetupIo, what: string, cert: X509Certificate, todo: string): void {
  const left = daysLeft(cert);
  if (left < EXPIRY_WARNING_DAYS) io.warn(`${what} ${left < 0 ? "expired" : "expires"} on ${cert.validTo}${left >= 0 ? ` (in ${left} days)` : ""}: ${todo}`);
}

/** True when a key file exists without the certificate that goes with it (only a hint: never fails). */
function orphanKey(keyPath: string, certPath: string): boolean {
  try {
    const keyPem = readIfExists(keyPath);
    if (keyPem === undefined) return false;
    const certPem = readIfExists(certPath);
    return certPem === undefined || !new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

async function bootstrapPeer(io: SetupIo): Promise<[string, string] | undefined> {
  let peer: XmlRpcValue;
  try {
    peer = await io.call("getBootstrapPeer");
  } catch (e) {
    if (e instanceof XmlRpcFault)
      throw new SetupError(`getBootstrapPeer: the registry gave no bootstrap peer (${e.detail}); if it knows no peer yet, run again with --no-boot`);
    throw e;
  }
  if (!Array.isArray(peer) || peer.length !== 2 || typeof peer[0] !== "string" || typeof peer[1] !== "string")
    throw new SetupError("getBootstrapPeer: the registry answered something else than [prefix, address]: is it a vifibnet registry?");
  const [prefix, address] = peer as [string, string];
  // The daemon checks addresses again; a malformed one is not worth failing the setup for.
  if (!/^[01]{1,128}$/.test(prefix) || parseAddressList(address) === null) {
    io.warn(`the registry's bootstrap peer (${JSON.stringify(prefix).slice(0, 40)}, ${JSON.stringify(address).slice(0, 80)}) is malformed: peers.db gets none`);
    return undefined;
  }
  return [prefix, address];
}

/** Writes every file under its temporary name, then renames them all in the legacy order. */
function stageAndCommit(opts: SetupOptions, g: Gathered, network: string, io: SetupIo, staging: Staging): void {
  const dir = opts.dir;
  const path = (name: string): string => join(dir, name);
  const prefixText = `${bitsToIpv6(network)}/${network.length}`;
  const absDir = resolve(dir);
  const address = g.node && g.node.prefix !== null ? nodeAddress(network, g.node.prefix) : null;
  const noConfig = unwritablePath(absDir);
  const config = opts.nodeConfig && g.node && noConfig === null && !existsSync(path(NODE_CONFIG))
    ? { server: opts.server, port: opts.port, dir: absDir, network: prefixText, address }
    : undefined;
  try {
    if (g.caPlan === "differs") staging.write("ca.pem.old", g.previousCa!, 0o644);
    if (g.caPlan !== "same") staging.write("ca.pem", g.caPem, 0o644);
    if (g.dbState === "missing" || g.dbState === "no-table") {
      const tmp = staging.reserve("peers.db", g.dbState === "missing" ? "create" : "replace");
      if (g.dbState === "no-table") PeersDb.copy(path("peers.db"), tmp);
      const db = PeersDb.open(tmp, { create: true });
      try {
        if (g.bootstrap) db.addPeer(...g.bootstrap);
      } finally {
        db.close();
      }
      staging.seal("peers.db");
    }
    if (g.key && g.certPem) {
      staging.write("cert.key", privateKeyPem(g.key), 0o600);
      staging.write("cert.crt", g.certPem.endsWith("\n") ? g.certPem : g.certPem + "\n", 0o644);
      if (!existsSync(path("dh2048.pem"))) staging.write("dh2048.pem", FFDHE2048_PEM, 0o644, "create");
      if (config) staging.write(NODE_CONFIG, nodeConfigText(config), 0o644, "create");
    }
  } catch (e) {
    staging.abort();
    const err = e as NodeJS.ErrnoException;
    if (e instanceof PeersDbError) throw new SetupError(e.message);
    throw new SetupError(`cannot write to ${dir}: ${err.code === "ENOSPC" ? "no space left on the device" : err.message}; nothing was written`);
  }

  let result;
  try {
    result = staging.commit();
  } catch (e) {
    staging.abort();
    throw new SetupError(`cannot move the new files into ${dir}: ${(e as Error).message}; run again`);
  }

  if (g.caPlan === "new") io.info(`${path("ca.pem")}: written (network ${prefixText})`);
  else if (g.caPlan === "same") io.info(`${path("ca.pem")}: unchanged (network ${prefixText})`);
  else io.info(`${path("ca.pem")}: replaced (network ${prefixText}); the previous CA is in ca.pem.old`);
  if (g.dbState === "missing" || g.dbState === "no-table") {
    const kept = result.kept.includes("peers.db");
    const what = g.bootstrap ? `with bootstrap peer ${g.bootstrap[0]} (${g.bootstrap[1]})` : opts.noBoot ? "without bootstrap peer (--no-boot)" : "without bootstrap peer";
    if (kept) io.warn(`${path("peers.db")} appeared while setup ran: kept as it is`);
    else io.info(`${path("peers.db")}: ${g.dbState === "missing" ? "created" : "table peers added"}, ${what}`);
  }
  if (g.node) {
    const where = address !== null ? `, node address ${address}` : "";
    io.info(`${path("cert.key")}, ${path("cert.crt")}: written (CN ${g.node.commonName}${where})`);
    if (result.written.includes("dh2048.pem")) io.info(`${path("dh2048.pem")}: written (RFC 7919 group ffdhe2048)`);
    else io.info(`${path("dh2048.pem")}: exists, kept`);
    io.info("Certificate setup complete.");
    if (opts.nodeConfig) {
      if (noConfig !== null) {
        io.warn(`${path(NODE_CONFIG)} not written: ${absDir} cannot be named in it (${noConfig}); give vifibnet its options on the command line`);
        return;
      }
      if (result.written.includes(NODE_CONFIG)) io.info(`${path(NODE_CONFIG)}: written (the node's options)`);
      else io.info(`${path(NODE_CONFIG)}: exists, kept`);
      for (const line of startCommands(absDir, daemonCommand())) io.info(line);
    }
  }
}
