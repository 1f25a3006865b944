// The registry: the parts behind its methods composed, and the peers it
// hands out. The methods' table is ./methods.ts; tokens, enrolment, renewal,
// declarations, revoked prefixes and the strict modes are each a module of
// their own here. Everything with side effects (database, mail, clock,
// randomness) is handed in.

import type { SignedRevocationList } from "../revocation";
import { Bits, hostBits, parseAddressList, prefixToCn } from "../utils/address";
import { CertificateAuthority } from "../utils/cert";
import { Logger } from "../utils/log";
import { CertificateError } from "../utils/x509";
import type { RawXml } from "../xmlrpc";
import { Caller, RpcFault, UNKNOWN_CALLER } from "./call";
import type { RegistryDb, RevokedRow } from "./db";
import { Declarations } from "./declarations";
import { Enrolment, IssuedRecord } from "./enrolment";
import { Mailer } from "./mail";
import { Peer, PeerSet, RandomInt, mathRandomInt } from "./peers";
import { RENEW_GRACE, Renewal } from "./renewal";
import { RevokedPrefixes, revokedFault } from "./revoked";
import { StrictModes, peerListRefusal } from "./strict";
import { TokenGate, TokenLimiter } from "./token-limit";
import { TOKEN_TTL, Tokens } from "./tokens";

export const PEER_MAX_AGE = 86_400; // seconds a declared peer stays listed
export const PURGE_INTERVAL = 600; // seconds between purges of expired peers

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
   * Told of every change to this registry's memory that other worker
   * processes must mirror (./cluster.ts). A declare is answered once the
   * returned promise resolves: every worker lists the peer then.
   */
  onChange?: (change: RegistryChange) => Promise<void> | void;
  strict?: StrictModes;
  /** Seconds a token is valid (TOKEN_TTL). */
  tokenTtl?: number;
  /** Seconds after its expiry a certificate may still be renewed (RENEW_GRACE). */
  renewGrace?: number;
  /** Decides whether a token may be mailed (default: a TokenLimiter of this process). */
  tokenGate?: TokenGate;
}

/** A change another worker must apply: a peers row upserted, the peers table reloaded, a certificate issued. */
export type RegistryChange = { peer: [prefix: Bits, address: string] } | { reload: true } | { issued: IssuedRecord };

export class Registry {
  private peers: PeerSet;
  private ca: CertificateAuthority;
  private readonly now: () => number;
  private readonly random: RandomInt;
  private readonly strict: StrictModes;
  private lastPurge = -Infinity;
  private readonly revoked: RevokedPrefixes;
  private readonly tokens: Tokens;
  private readonly enrolment: Enrolment;
  private readonly renewal: Renewal;
  private readonly declarations: Declarations;

  constructor(private readonly deps: RegistryDeps) {
    const { db, log } = deps;
    this.now = deps.now ?? (() => Math.floor(Date.now() / 1000));
    const now = this.now;
    this.random = deps.random ?? mathRandomInt;
    this.ca = deps.ca;
    this.strict = deps.strict ?? {};
    const ca = (): CertificateAuthority => this.ca;
    const revoked = new RevokedPrefixes(db, now, (rows) => this.unlist(rows));
    this.revoked = revoked;
    this.tokens = new Tokens({ db, mailer: deps.mailer, log, now, ttl: deps.tokenTtl ?? TOKEN_TTL, gate: deps.tokenGate ?? new TokenLimiter() });
    // Not waited for: a retry comes after the client gave up on the reply, long after the others have it.
    const onIssued = (record: IssuedRecord): void => void deps.onChange?.({ issued: record });
    this.enrolment = new Enrolment({ db, tokens: this.tokens, revoked, ca, log, now, onIssued });
    this.renewal = new Renewal({ db, revoked, ca, log, now, grace: deps.renewGrace ?? RENEW_GRACE });
    this.declarations = new Declarations({ db, revoked, network: this.network, strict: this.strict, log, now });
    this.peers = this.loadPeers();
    this.purgeIfDue();
  }

  /**
   * The peers table, minus rows whose address list is malformed (a file
   * written by the legacy registry may hold them, and handing them out would
   * put their fields on other nodes' OpenVPN command lines) and revoked ones.
   */
  private loadPeers(): PeerSet {
    const rows = this.deps.db.allPeers();
    const good = rows.filter((r) => parseAddressList(r.address) !== null);
    if (good.length < rows.length) this.deps.log.warn(`ignoring ${rows.length - good.length} stored peer(s) with a malformed address list`);
    return new PeerSet(good.filter((r) => !this.revoked.has(r.prefix)));
  }

  /**
   * The revoked table changed (`vifibnet-registry revoke` under a running
   * registry): a newly revoked prefix leaves the peers mirror and the peers
   * table (which the CLI cleaned already, but a declare may have come in
   * between).
   */
  private unlist(rows: readonly RevokedRow[]): void {
    const listed = rows.filter((r) => this.peers.has(r.prefix)).map((r) => r.prefix);
    for (const p of listed) this.peers.delete(p);
    this.deps.db.deletePeers(rows.map((r) => r.prefix));
    if (listed.length > 0) this.deps.log.log(1, `revoked, no longer listed: ${listed.map(prefixToCn).join(", ")}`);
  }

  private get network(): Bits {
    return this.ca.network;
  }

  /**
   * Serves another CA from now on (vifibnet-ca --renew, then SIGHUP): it
   * must be of the same network, or every prefix would change meaning.
   */
  setCa(ca: CertificateAuthority): void {
    if (ca.network !== this.ca.network) throw new CertificateError(`it is the CA of another network (a /${ca.network.length}); restart the registry to change networks`);
    this.ca = ca;
    this.revoked.signAgain();
  }

  /** The signed list of revoked prefixes (lib/revocation.ts), signed again when it changed or aged. */
  getRevocationList(): SignedRevocationList {
    return this.revoked.signedList(this.ca.key);
  }

  private purgeIfDue(): void {
    const now = this.now();
    if (now - this.lastPurge < PURGE_INTERVAL) return;
    this.lastPurge = now;
    this.tokens.purge(now);
    const gone = this.deps.db.purgePeers(PEER_MAX_AGE, now);
    if (gone > 0) {
      this.deps.log.log(2, `purged ${gone} peer(s) not declared for ${PEER_MAX_AGE} s`);
      // A purge is rare; reloading keeps the mirror exactly the table.
      this.peers = this.loadPeers();
      void this.deps.onChange?.({ reload: true });
    }
  }

  /** Applies a change another process made. */
  applyChange(change: RegistryChange): void {
    if ("peer" in change) {
      if (!this.revoked.has(change.peer[0])) this.peers.set(...change.peer);
    } else if ("issued" in change) {
      this.enrolment.remember(change.issued);
    } else {
      this.peers = this.loadPeers();
    }
  }

  getCa(): string {
    return this.ca.pem;
  }

  requestToken(email: string, caller: Caller = UNKNOWN_CALLER): Promise<null> {
    return this.tokens.request(email, caller);
  }

  requestCertificate(token: string, csr: string, caller: Caller = UNKNOWN_CALLER): string {
    return this.enrolment.requestCertificate(token, csr, caller);
  }

  renewCertificate(certPem: string, csr: string): string {
    return this.renewal.renewCertificate(certPem, csr);
  }

  getBootstrapPeer(): Peer {
    this.revoked.refreshIfDue();
    const [peer] = this.peers.sample(1, this.random);
    if (!peer) throw new RpcFault("LookupError", "the registry knows no peer yet");
    return peer;
  }

  /** Stores a peer's address list, shares it with the other workers, answers once they have it. */
  private storePeer(prefix: Bits, addressList: string, how: string): true | Promise<true> {
    this.deps.db.upsertPeer(prefix, addressList, this.now());
    this.peers.set(prefix, addressList);
    this.deps.log.log(2, `peer ${prefix} declared ${addressList}${how}`);
    const shared = this.deps.onChange?.({ peer: [prefix, addressList] });
    return shared ? shared.then(() => true) : true;
  }

  /** The legacy declare: false when refused, as legacy nodes expect. */
  declare(nodeIp: string, addressList: string, caller: Caller = UNKNOWN_CALLER): boolean | Promise<boolean> {
    const prefix = this.declarations.legacy(nodeIp, addressList, caller);
    return prefix === null ? false : this.storePeer(prefix, addressList, "");
  }

  /** declare, signed with the key of the certificate stored for the node's prefix; refused with a fault. */
  declareSigned(nodeIp: string, addressList: string, time: string, signature: Buffer): true | Promise<true> {
    return this.storePeer(this.declarations.signed(nodeIp, addressList, time, signature), addressList, " (signed)");
  }

  private checkPeerListCall(n: number, nodeIp: string, caller: Caller): void {
    if (!(n > 0 && n < 1000)) throw new RpcFault("AssertionError", `n must be between 1 and 999, got ${n}`);
    const bits = hostBits(nodeIp, this.network);
    if (bits === null) throw new RpcFault("AssertionError", `${nodeIp} is not an address inside the network`);
    const refused = peerListRefusal(this.strict, caller, this.network);
    if (refused !== null) throw new RpcFault("AssertionError", refused);
    this.revoked.refreshIfDue();
    const revoked = this.revoked.owner(bits);
    if (revoked) throw revokedFault(revoked, "it is not given peers");
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
