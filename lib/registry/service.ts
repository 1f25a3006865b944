// The registry methods: the six of SPEC section 4 and ours, independent of
// HTTP and XML. Everything with side effects (database, mail, clock,
// randomness) is handed in. METHODS, at the end, is the one table of them.

import { randomInt } from "node:crypto";
import { DECLARE_SIGNED, verifyDeclaration } from "../declaration";
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
/** How far a signed declaration's time may be from the registry's clock, in seconds. */
export const DECLARATION_SKEW = 3600;

/**
 * Opt-in modes for a network that has no legacy node left, or whose nodes
 * reach the registry over the overlay (README, "Ending a migration").
 */
export interface StrictModes {
  /** --strict-source: `declare` only for its caller's own address; `getPeerList` only to callers inside the network. */
  source?: boolean;
  /** --strict-signed: `declare` (unsigned) refused; only `declareSigned` changes a peer's address. */
  signed?: boolean;
}

/** Who made a call: the address of the connection it came on (null when unknown). */
export interface Caller {
  address: string | null;
}

const UNKNOWN_CALLER: Caller = { address: null };

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
  strict?: StrictModes;
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

  /**
   * The token first: a request without a valid one costs a look-up, never a
   * parse or a signature check. Nothing is consumed unless a certificate is
   * issued and checked.
   */
  requestCertificate(token: string, csr: string): string {
    const row = this.deps.db.getToken(token);
    if (!row) throw new RpcFault("LookupError", "unknown or already used token");
    const bad = checkPrefixLength(row.prefix_len, this.network.length);
    if (bad) throw new RpcFault("ValueError", bad);
    try {
      const req = checkRequest(csr);
      const { prefix, cert } = this.deps.db.issue(token, (prefix) =>
        issueCertificate(this.deps.ca, req, prefixToCn(prefix), new Date(this.now() * 1000), CERT_DAYS),
      );
      this.deps.log.log(1, `certificate issued for prefix ${prefix} (${prefixToCn(prefix)})`);
      return cert;
    } catch (e) {
      if (e instanceof CertificateError) throw new RpcFault("ValueError", `certificate request refused: ${e.message}`);
      if (e instanceof IssueError) throw new RpcFault(e.kind === "unknown-token" ? "LookupError" : "RuntimeError", e.message);
      throw e;
    }
  }

  getBootstrapPeer(): Peer {
    const [peer] = this.peers.sample(1, this.random);
    if (!peer) throw new RpcFault("LookupError", "the registry knows no peer yet");
    return peer;
  }

  /** Whether the call came from `ip` itself (the same 128 bits, whatever the spelling). */
  private fromItself(ip: string, caller: Caller): boolean {
    const bits = ipv6ToBits(ip);
    return bits !== null && caller.address !== null && ipv6ToBits(caller.address) === bits;
  }

  /** Stores a peer's address list, shares it with the other workers, answers once they have it. */
  private storePeer(prefix: Bits, addressList: string, how: string): true | Promise<true> {
    this.deps.db.upsertPeer(prefix, addressList, this.now());
    this.peers.set(prefix, addressList);
    this.deps.log.log(2, `peer ${prefix} declared ${addressList}${how}`);
    const shared = this.deps.onPeersChange?.({ peer: [prefix, addressList] });
    return shared ? shared.then(() => true) : true;
  }

  /** The legacy declare: false when refused, as legacy nodes expect. */
  declare(nodeIp: string, addressList: string, caller: Caller = UNKNOWN_CALLER): boolean | Promise<boolean> {
    const bits = this.hostBits(nodeIp);
    if (bits === null || parseAddressList(addressList) === null) return false;
    const { strict } = this.deps;
    if (strict?.signed || (strict?.source && !this.fromItself(nodeIp, caller))) {
      const why = strict.signed ? "unsigned (--strict-signed)" : `not from ${nodeIp} itself (--strict-source)`;
      this.deps.log.log(2, `declare for ${nodeIp} from ${caller.address ?? "?"} refused: ${why}`);
      return false;
    }
    const prefix = this.deps.db.ownerOf(bits);
    if (prefix === undefined) return false;
    return this.storePeer(prefix, addressList, "");
  }

  /**
   * declare, signed with the key of the certificate stored for the node's
   * prefix (lib/declaration.ts). Faults say why a declaration is refused:
   * only our nodes call it, and they log the reason.
   */
  declareSigned(nodeIp: string, addressList: string, time: string, signature: Buffer): true | Promise<true> {
    const bits = this.hostBits(nodeIp);
    if (bits === null) throw new RpcFault("ValueError", `${nodeIp} is not an address inside the network`);
    if (parseAddressList(addressList) === null) throw new RpcFault("ValueError", `malformed address list ${JSON.stringify(addressList.slice(0, 200))}`);
    const ms = /^[0-9]{1,16}$/.test(time) ? Number(time) : NaN;
    if (!(Math.abs(ms / 1000 - this.now()) <= DECLARATION_SKEW))
      throw new RpcFault("ValueError", `the declaration's time ${JSON.stringify(time.slice(0, 20))} is more than ${DECLARATION_SKEW} s away from the registry's clock`);
    const prefix = this.deps.db.ownerOf(bits);
    const cert = prefix === undefined ? null : this.deps.db.certOf(prefix);
    if (prefix === undefined || cert === null) throw new RpcFault("LookupError", `no certificate was issued for ${nodeIp}`);
    if (!verifyDeclaration({ nodeIp, addressList, time }, signature, cert))
      throw new RpcFault("PermissionError", `the signature is not made with the key of the certificate issued for ${prefixToCn(prefix)}`);
    if (!this.deps.db.recordDeclaration(prefix, ms))
      throw new RpcFault("PermissionError", "a declaration as recent was already accepted (replayed?)");
    return this.storePeer(prefix, addressList, " (signed)");
  }

  private checkPeerListCall(n: number, nodeIp: string, caller: Caller): void {
    if (!(n > 0 && n < 1000)) throw new RpcFault("AssertionError", `n must be between 1 and 999, got ${n}`);
    if (this.hostBits(nodeIp) === null) throw new RpcFault("AssertionError", `${nodeIp} is not an address inside the network`);
    if (this.deps.strict?.source && (caller.address === null || this.hostBits(caller.address) === null))
      throw new RpcFault("AssertionError", `getPeerList is answered only to callers inside the network (--strict-source); ${caller.address ?? "this caller"} is not`);
    this.purgeIfDue();
  }

  getPeerList(n: number, nodeIp: string, caller: Caller = UNKNOWN_CALLER): Peer[] {
    this.checkPeerListCall(n, nodeIp, caller);
    return this.peers.sample(n, this.random);
  }

  /** getPeerList, serialized: the registry's hot path. */
  getPeerListXml(n: number, nodeIp: string, caller: Caller = UNKNOWN_CALLER): RawXml {
    this.checkPeerListCall(n, nodeIp, caller);
    return this.peers.sampleXml(n, this.random);
  }
}

// ---- The methods on the wire: one declaration each ----

/** The XML-RPC type of a parameter, checked before the method runs, as Python would reject a bad call. */
type Shape = "string" | "int" | "pair" | "binary";
type ValueOf<S extends Shape> = S extends "string" ? string : S extends "int" ? number : S extends "pair" ? [string, string] : Buffer;
type ValuesOf<T extends readonly Shape[]> = { -readonly [K in keyof T]: T[K] extends Shape ? ValueOf<T[K]> : never };

type Result = XmlRpcValue | RawXml | Promise<XmlRpcValue>;

interface Method {
  params: readonly Shape[];
  run(registry: Registry, params: XmlRpcValue[], caller: Caller): Result;
}

/** One method: its parameters' shapes, and what it does with them (typed by the shapes). */
function method<const T extends readonly Shape[]>(params: T, run: (registry: Registry, args: ValuesOf<T>, caller: Caller) => Result): Method {
  return { params, run: (registry, values, caller) => run(registry, values as ValuesOf<T>, caller) };
}

/**
 * Every method the registry serves, by name. A Map: a name such as
 * "toString" or "constructor" finds nothing here, as it would in Python.
 */
export const METHODS: ReadonlyMap<string, Method> = new Map([
  ["getCa", method([], (r) => r.getCa())],
  ["requestToken", method(["string"], (r, [email]) => r.requestToken(email))],
  ["requestCertificate", method(["string", "string"], (r, [token, csr]) => r.requestCertificate(token, csr))],
  ["getBootstrapPeer", method([], (r) => r.getBootstrapPeer())],
  ["declare", method(["pair"], (r, [[ip, list]], caller) => r.declare(ip, list, caller))],
  ["getPeerList", method(["int", "string"], (r, [n, ip], caller) => r.getPeerListXml(n, ip, caller))],
  [DECLARE_SIGNED, method(["string", "string", "string", "binary"], (r, [ip, list, time, sig]) => r.declareSigned(ip, list, time, sig))],
]);

const SHAPE_TEST: Record<Shape, (p: XmlRpcValue | undefined) => boolean> = {
  string: (p) => typeof p === "string",
  int: (p) => typeof p === "number" && Number.isInteger(p),
  pair: (p) => Array.isArray(p) && p.length === 2 && typeof p[0] === "string" && typeof p[1] === "string",
  binary: (p) => Buffer.isBuffer(p),
};
const SHAPE_NAME: Record<Shape, string> = {
  string: "a string", int: "an int", pair: "an array [node_ip, address_list] of two strings", binary: "base64 data",
};

function checkParams(name: string, m: Method, params: XmlRpcValue[]): void {
  if (params.length !== m.params.length)
    throw new RpcFault("TypeError", `${name}() takes ${m.params.length} argument(s) (${params.length} given)`);
  m.params.forEach((shape, i) => {
    if (!SHAPE_TEST[shape](params[i])) throw new RpcFault("TypeError", `${name}() argument ${i + 1} must be ${SHAPE_NAME[shape]}`);
  });
}

/**
 * Runs one call; throws (or rejects) RpcFault. Synchronous unless the method
 * is: a promise per request was a measurable share of the hot path.
 */
export function dispatch(registry: Registry, name: string, params: XmlRpcValue[], caller: Caller = UNKNOWN_CALLER): Result {
  const m = METHODS.get(name);
  if (!m) throw new RpcFault("Exception", `method "${name}" is not supported`);
  checkParams(name, m, params);
  return m.run(registry, params, caller);
}
