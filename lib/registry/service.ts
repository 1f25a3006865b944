// The six registry methods (SPEC section 4), independent of HTTP and XML.
// Everything with side effects (database, mail, clock, randomness) is handed in.

import { randomInt } from "node:crypto";
import { Bits, ipv6ToBits, parseAddressList, prefixToCn } from "../utils/address";
import { CertificateAuthority, checkRequest, issueCertificate } from "../utils/cert";
import { CertificateError } from "../utils/x509";
import { Logger } from "../utils/log";
import type { RawXml, XmlRpcValue } from "../xmlrpc";
import { IssueError, RegistryDb } from "./db";
import { Mailer } from "./mail";
import { Peer, PeerSet, RandomInt, mathRandomInt } from "./peers";
import { checkPrefixLength } from "./prefix";

/** A method failure, sent as a fault shaped like the Python exception it stands for. */
export class RpcFault extends Error {
  constructor(readonly pythonClass: string, message: string) {
    super(message);
  }
  get faultString(): string {
    return `<class '${this.pythonClass}'>:${this.message}`;
  }
}

export const PEER_MAX_AGE = 86_400; // seconds a declared peer stays listed
export const PURGE_INTERVAL = 600; // seconds between purges of expired peers
export const TOKEN_PREFIX_LENGTH = 16;
export const CERT_DAYS = 365;

export interface RegistryDeps {
  db: RegistryDb;
  ca: CertificateAuthority;
  mailer: Mailer;
  log: Logger;
  /** Seconds since the epoch. */
  now?: () => number;
  /** For peer picks; tokens always use the cryptographic RNG. */
  random?: RandomInt;
  /**
   * Told of every change to the peers table this registry makes, so other
   * worker processes can mirror it (./cluster.ts). A declare is answered
   * once the returned promise resolves: every worker then lists the peer.
   */
  onPeersChange?: (change: PeersChange) => Promise<void> | void;
}

/** A change to the peers table: one row upserted, or anything (reload it). */
export type PeersChange = { peer: [prefix: Bits, address: string] } | { reload: true };

const EMAIL = /^[^\s@<>()[\]",;:\\]+@[^\s@<>()[\]",;:\\]+$/;

/** 8 distinct lowercase letters, as the legacy's random.sample, from a CSPRNG. */
export function makeToken(): string {
  const letters = "abcdefghijklmnopqrstuvwxyz".split("");
  for (let i = 0; i < 8; i++) {
    const j = i + randomInt(letters.length - i);
    [letters[i], letters[j]] = [letters[j]!, letters[i]!];
  }
  return letters.slice(0, 8).join("");
}

export class Registry {
  private peers: PeerSet;
  private readonly now: () => number;
  private readonly random: RandomInt;
  private lastPurge = -Infinity;

  constructor(private readonly deps: RegistryDeps) {
    this.now = deps.now ?? (() => Math.floor(Date.now() / 1000));
    this.random = deps.random ?? mathRandomInt;
    this.peers = this.loadPeers();
    this.purgeIfDue();
  }

  /**
   * The peers table, minus rows whose address list is malformed: a file
   * written by the legacy registry may hold them, and handing them out would
   * put their fields on other nodes' OpenVPN command lines.
   */
  private loadPeers(): PeerSet {
    const rows = this.deps.db.allPeers();
    const good = rows.filter((r) => parseAddressList(r.address) !== null);
    if (good.length < rows.length) this.deps.log.warn(`ignoring ${rows.length - good.length} stored peer(s) with a malformed address list`);
    return new PeerSet(good);
  }

  private get network(): Bits {
    return this.deps.ca.network;
  }

  /** The bits of `ip` after the network, or null if `ip` is not inside it. */
  private hostBits(ip: string): Bits | null {
    const bits = ipv6ToBits(ip);
    return bits !== null && bits.startsWith(this.network) ? bits.slice(this.network.length) : null;
  }

  private purgeIfDue(): void {
    const now = this.now();
    if (now - this.lastPurge < PURGE_INTERVAL) return;
    this.lastPurge = now;
    const gone = this.deps.db.purgePeers(PEER_MAX_AGE, now);
    if (gone > 0) {
      this.deps.log.log(2, `purged ${gone} peer(s) not declared for ${PEER_MAX_AGE} s`);
      // A purge is rare; reloading keeps the mirror exactly the table.
      this.peers = this.loadPeers();
      void this.deps.onPeersChange?.({ reload: true });
    }
  }

  /** Applies a change another process made to the peers table. */
  applyPeersChange(change: PeersChange): void {
    if ("peer" in change) this.peers.set(...change.peer);
    else this.peers = this.loadPeers();
  }

  getCa(): string {
    return this.deps.ca.pem;
  }

  async requestToken(email: string): Promise<null> {
    if (email.length > 254 || !EMAIL.test(email)) throw new RpcFault("ValueError", `not an email address: ${JSON.stringify(email.slice(0, 80))}`);
    let token: string;
    do token = makeToken();
    while (!this.deps.db.addToken({ token, email, prefix_len: TOKEN_PREFIX_LENGTH, date: this.now() }));
    try {
      await this.deps.mailer.sendToken(email, token);
    } catch (e) {
      this.deps.db.deleteToken(token);
      throw new RpcFault("ConnectionError", `could not mail the token to ${email}: ${(e as Error).message}`);
    }
    this.deps.log.log(1, `token sent to ${email}`);
    return null;
  }

  requestCertificate(token: string, csr: string): string {
    let req;
    try {
      req = checkRequest(csr);
    } catch (e) {
      if (e instanceof CertificateError) throw new RpcFault("ValueError", `certificate request refused: ${e.message}`);
      throw e;
    }
    const row = this.deps.db.getToken(token);
    if (row) {
      const bad = checkPrefixLength(row.prefix_len, this.network.length);
      if (bad) throw new RpcFault("ValueError", bad);
    }
    try {
      const { prefix, cert } = this.deps.db.issue(token, (prefix) =>
        issueCertificate(this.deps.ca, req, prefixToCn(prefix), new Date(this.now() * 1000), CERT_DAYS),
      );
      this.deps.log.log(1, `certificate issued for prefix ${prefix} (${prefixToCn(prefix)})`);
      return cert;
    } catch (e) {
      if (e instanceof IssueError) throw new RpcFault(e.kind === "unknown-token" ? "LookupError" : "RuntimeError", e.message);
      throw e;
    }
  }

  getBootstrapPeer(): Peer {
    const [peer] = this.peers.sample(1, this.random);
    if (!peer) throw new RpcFault("LookupError", "the registry knows no peer yet");
    return peer;
  }

  declare(nodeIp: string, addressList: string): boolean | Promise<boolean> {
    const bits = this.hostBits(nodeIp);
    if (bits === null || parseAddressList(addressList) === null) return false;
    const prefix = this.deps.db.ownerOf(bits);
    if (prefix === undefined) return false;
    this.deps.db.upsertPeer(prefix, addressList, this.now());
    this.peers.set(prefix, addressList);
    this.deps.log.log(2, `peer ${prefix} declared ${addressList}`);
    const shared = this.deps.onPeersChange?.({ peer: [prefix, addressList] });
    return shared ? shared.then(() => true) : true;
  }

  private checkPeerListCall(n: number, nodeIp: string): void {
    if (!(n > 0 && n < 1000)) throw new RpcFault("AssertionError", `n must be between 1 and 999, got ${n}`);
    if (this.hostBits(nodeIp) === null) throw new RpcFault("AssertionError", `${nodeIp} is not an address inside the network`);
    this.purgeIfDue();
  }

  getPeerList(n: number, nodeIp: string): Peer[] {
    this.checkPeerListCall(n, nodeIp);
    return this.peers.sample(n, this.random);
  }

  /** getPeerList, serialized: the registry's hot path. */
  getPeerListXml(n: number, nodeIp: string): RawXml {
    this.checkPeerListCall(n, nodeIp);
    return this.peers.sampleXml(n, this.random);
  }
}

/** Checks params against a method's shape: how Python would reject a bad call. */
type Shape = "string" | "int" | "pair";

const METHODS: Record<string, Shape[]> = {
  getCa: [],
  requestToken: ["string"],
  requestCertificate: ["string", "string"],
  getBootstrapPeer: [],
  declare: ["pair"],
  getPeerList: ["int", "string"],
};

function checkParams(method: string, params: XmlRpcValue[]): void {
  const shape = METHODS[method];
  if (!shape) throw new RpcFault("Exception", `method "${method}" is not supported`);
  if (params.length !== shape.length)
    throw new RpcFault("TypeError", `${method}() takes ${shape.length} argument(s) (${params.length} given)`);
  shape.forEach((kind, i) => {
    const p = params[i];
    const ok =
      kind === "string" ? typeof p === "string"
      : kind === "int" ? typeof p === "number" && Number.isInteger(p)
      : Array.isArray(p) && p.length === 2 && typeof p[0] === "string" && typeof p[1] === "string";
    if (!ok) {
      const want = kind === "pair" ? "an array [node_ip, address_list] of two strings" : `a${kind === "int" ? "n" : ""} ${kind}`;
      throw new RpcFault("TypeError", `${method}() argument ${i + 1} must be ${want}`);
    }
  });
}

/**
 * Runs one call; throws (or rejects) RpcFault. Synchronous unless the method
 * is: a promise per request was a measurable share of the hot path.
 */
export function dispatch(registry: Registry, method: string, params: XmlRpcValue[]): XmlRpcValue | RawXml | Promise<XmlRpcValue> {
  checkParams(method, params);
  switch (method) {
    case "getCa": return registry.getCa();
    case "requestToken": return registry.requestToken(params[0] as string);
    case "requestCertificate": return registry.requestCertificate(params[0] as string, params[1] as string);
    case "getBootstrapPeer": return registry.getBootstrapPeer();
    case "declare": {
      const [ip, list] = params[0] as [string, string];
      return registry.declare(ip, list);
    }
    default: return registry.getPeerListXml(params[0] as number, params[1] as string);
  }
}
