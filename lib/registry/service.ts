// The registry methods: the six of SPEC section 4 and ours, independent of
// HTTP and XML. Everything with side effects (database, mail, clock,
// randomness) is handed in. METHODS, at the end, is the one table of them.

import { KeyObject, X509Certificate, createHash, randomInt } from "node:crypto";
import { DECLARE_SIGNED, verifyDeclaration } from "../declaration";
import { GET_REVOCATION_LIST, RevokedPrefix, SignedRevocationList, signRevocationList } from "../revocation";
import { Bits, clientSource, cnToPrefix, ipv6ToBits, parseAddressList, prefixToCn } from "../utils/address";
import { CertificateAuthority, checkRequest, issueCertificate, renewNodeCertificate } from "../utils/cert";
import { CertificateError, signedWithSha1 as isSha1 } from "../utils/x509";
import { Logger } from "../utils/log";
import type { RawXml, XmlRpcValue } from "../xmlrpc";
import { IssueError, RegistryDb, RevokedRow } from "./db";
import { Mailer } from "./mail";
import { Peer, PeerSet, RandomInt, mathRandomInt } from "./peers";
import { checkPrefixLength } from "./prefix";
import { TokenGate, TokenLimiter } from "./token-limit";

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
/** How long a token is valid by default (--token-ttl): a mail may take hours to be read. */
export const TOKEN_TTL = 86_400;
/** How long after its expiry a certificate may still be renewed by default (--renew-grace): 90 days. */
export const RENEW_GRACE = 90 * 86_400;
/** How long a certificate is sent again to a retried requestCertificate (same token, same key), in seconds. */
export const RETRY_WINDOW = 300;
/** Seconds between two looks at the revoked table by one process (the CLI changes it under a running registry). */
export const REVOCATION_RELOAD = 1;
/** A signed revocation list is signed again after this many seconds, so its `issued` stays recent. */
export const REVOCATION_LIST_AGE = 3600;

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

/** Who made a call: the address of the connection it came on (null when unknown), and which connection. */
export interface Caller {
  address: string | null;
  /** Unique per connection within this process; absent when unknown. */
  connection?: number;
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

/** A certificate issued for a token, kept RETRY_WINDOW seconds for a retried request. */
export interface IssuedRecord {
  token: string;
  prefix: Bits;
  /** SHA-256 of the public key (SPKI DER), hex. */
  key: string;
  /** Seconds since the epoch. */
  at: number;
}

/** A change another worker must apply: a peers row upserted, the peers table reloaded, a certificate issued. */
export type RegistryChange = { peer: [prefix: Bits, address: string] } | { reload: true } | { issued: IssuedRecord };

/** The key's identity: SHA-256 of its SPKI DER. */
function keyId(key: KeyObject): string {
  return createHash("sha256").update(key.export({ type: "spki", format: "der" })).digest("hex");
}

function isoTime(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function days(seconds: number): string {
  const d = seconds / 86_400;
  return `${Number.isInteger(d) ? d : d.toFixed(1)} day${d === 1 ? "" : "s"}`;
}

const EMAIL = /^[^\s@<>()[\]",;:\\]+@[^\s@<>()[\]",;:\\]+$/;

/** Why `email` cannot be a token's address, or null. */
export function emailProblem(email: string): string | null {
  return email.length > 254 || !EMAIL.test(email) ? `not an email address: ${JSON.stringify(email.slice(0, 80))}` : null;
}

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
  private ca: CertificateAuthority;
  private readonly now: () => number;
  private readonly random: RandomInt;
  private readonly tokenTtl: number;
  private readonly renewGrace: number;
  private readonly tokenGate: TokenGate;
  private lastPurge = -Infinity;
  /** Revoked prefixes, as last read from the database, and by length for address look-ups. */
  private revoked = new Map<Bits, RevokedRow>();
  private revokedLengths: number[] = [];
  private revokedText = "";
  private lastRevocationLook = -Infinity;
  private signedList: { answer: SignedRevocationList; issued: number } | undefined;
  /** Certificates issued for tokens lately, for retried requests; `connection` when this process answered it. */
  private readonly issued = new Map<string, IssuedRecord & { connection?: number }>();

  constructor(private readonly deps: RegistryDeps) {
    this.now = deps.now ?? (() => Math.floor(Date.now() / 1000));
    this.random = deps.random ?? mathRandomInt;
    this.ca = deps.ca;
    this.tokenTtl = deps.tokenTtl ?? TOKEN_TTL;
    this.renewGrace = deps.renewGrace ?? RENEW_GRACE;
    this.tokenGate = deps.tokenGate ?? new TokenLimiter();
    this.readRevocations();
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
    this.signedList = undefined;
  }

  // ---- Revocation ----

  /**
   * Reads the revoked table again; `vifibnet-registry revoke` changes it
   * under a running registry. A newly revoked prefix leaves the peers
   * mirror and the peers table (which the CLI cleaned already, but a
   * declare may have come in between).
   */
  private readRevocations(): void {
    this.lastRevocationLook = this.now();
    const rows = this.deps.db.revokedPrefixes();
    const text = rows.map((r) => `${r.prefix} ${r.since} ${r.reason}`).join("\n");
    if (text === this.revokedText) return;
    this.revokedText = text;
    this.revoked = new Map(rows.map((r) => [r.prefix, r]));
    this.revokedLengths = [...new Set(rows.map((r) => r.prefix.length))];
    this.signedList = undefined;
    if (!this.peers) return; // at construction: loadPeers leaves them out
    const listed = rows.filter((r) => this.peers.has(r.prefix)).map((r) => r.prefix);
    for (const p of listed) this.peers.delete(p);
    this.deps.db.deletePeers(rows.map((r) => r.prefix));
    if (listed.length > 0) this.deps.log.log(1, `revoked, no longer listed: ${listed.map(prefixToCn).join(", ")}`);
  }

  private revocationsIfDue(): void {
    if (this.now() - this.lastRevocationLook >= REVOCATION_RELOAD) this.readRevocations();
  }

  /** The revoked prefix that `bits` (after the network) fall in, if any. */
  private revokedOwner(bits: Bits): RevokedRow | undefined {
    for (const length of this.revokedLengths) {
      const row = this.revoked.get(bits.slice(0, length));
      if (row) return row;
    }
    return undefined;
  }

  private revokedFault(row: RevokedRow, what: string): RpcFault {
    const why = row.reason ? ` (${row.reason})` : "";
    return new RpcFault("PermissionError", `prefix ${prefixToCn(row.prefix)} was revoked on ${isoTime(row.since)}${why}: ${what}`);
  }

  /** The signed list of revoked prefixes (lib/revocation.ts), signed again when it changed or aged. */
  getRevocationList(): SignedRevocationList {
    this.readRevocations();
    const now = this.now();
    if (!this.signedList || now - this.signedList.issued >= REVOCATION_LIST_AGE) {
      const revoked: RevokedPrefix[] = [...this.revoked.values()].map((r) => ({ prefix: r.prefix, cn: prefixToCn(r.prefix), since: r.since, reason: r.reason }));
      this.signedList = { answer: signRevocationList({ version: 1, issued: now, revoked }, this.ca.key), issued: now };
    }
    return this.signedList.answer;
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
    const tokens = this.deps.db.purgeTokens(this.tokenTtl, now);
    if (tokens > 0) this.deps.log.log(2, `purged ${tokens} token(s) older than ${this.tokenTtl} s (--token-ttl)`);
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
      this.rememberIssued(change.issued);
    } else {
      this.peers = this.loadPeers();
    }
  }

  getCa(): string {
    return this.ca.pem;
  }

  /**
   * Mails a token, within the limits of the token gate (per address, per
   * client): beyond them a fault says when to retry, and nothing is mailed.
   */
  async requestToken(email: string, caller: Caller = UNKNOWN_CALLER): Promise<null> {
    const bad = emailProblem(email);
    if (bad) throw new RpcFault("ValueError", bad);
    const now = this.now();
    const retryAt = await this.tokenGate.admit(email, clientSource(caller.address), now);
    if (retryAt !== null) {
      this.deps.log.log(2, `token request for ${email} from ${caller.address ?? "?"} refused: over the limit until ${isoTime(retryAt)}`);
      throw new RpcFault("RuntimeError", `too many token requests for ${email} or from ${caller.address ?? "this client"}: retry after ${isoTime(retryAt)} (in ${Math.max(1, retryAt - now)} s)`);
    }
    let token: string;
    do token = makeToken();
    while (!this.deps.db.addToken({ token, email, prefix_len: TOKEN_PREFIX_LENGTH, date: now }));
    try {
      await this.deps.mailer.sendToken(email, token);
    } catch (e) {
      this.deps.db.deleteToken(token);
      throw new RpcFault("ConnectionError", `could not mail the token to ${email}: ${(e as Error).message}`);
    }
    this.deps.log.log(1, `token sent to ${email}`);
    return null;
  }

  /** A token of `date` has expired (a date of 0 or before means "not dated yet": see RegistryDb.purgeTokens). */
  private expired(date: number): boolean {
    return date > 0 && date + this.tokenTtl <= this.now();
  }

  /**
   * The token first: a request without a valid one costs a look-up, never a
   * parse or a signature check. Nothing is consumed unless a certificate is
   * issued and checked. A used token is answered again with its certificate
   * when the reply may have been lost (see resend).
   */
  requestCertificate(token: string, csr: string, caller: Caller = UNKNOWN_CALLER): string {
    const row = this.deps.db.getToken(token);
    if (!row) return this.resend(token, csr, caller);
    if (this.expired(row.date)) {
      this.deps.db.deleteToken(token);
      throw new RpcFault("LookupError", `the token expired on ${isoTime(row.date + this.tokenTtl)} (tokens are valid ${days(this.tokenTtl)}): ask for a new one`);
    }
    const bad = checkPrefixLength(row.prefix_len, this.network.length);
    if (bad) throw new RpcFault("ValueError", bad);
    let issued: { prefix: Bits; cert: string };
    let key: string;
    try {
      const req = checkRequest(csr);
      key = keyId(req.publicKey);
      issued = this.deps.db.issue(token, (prefix) =>
        issueCertificate(this.ca, req, prefixToCn(prefix), new Date(this.now() * 1000), CERT_DAYS),
      );
    } catch (e) {
      throw this.requestFault(e);
    }
    const { prefix, cert } = issued;
    this.deps.log.log(1, `certificate issued for prefix ${prefix} (${prefixToCn(prefix)})`);
    const record: IssuedRecord = { token, prefix, key, at: this.now() };
    this.rememberIssued({ ...record, ...(caller.connection !== undefined ? { connection: caller.connection } : {}) });
    // Not waited for: a retry comes after the client gave up on the reply, long after the others have it.
    void this.deps.onChange?.({ issued: record });
    return cert;
  }

  private requestFault(e: unknown): unknown {
    if (e instanceof CertificateError) return new RpcFault("ValueError", `certificate request refused: ${e.message}`);
    if (e instanceof IssueError) return new RpcFault(e.kind === "unknown-token" ? "LookupError" : "RuntimeError", e.message);
    return e;
  }

  private rememberIssued(record: IssuedRecord & { connection?: number }): void {
    const now = this.now();
    // In insertion order, so the oldest come first.
    for (const [token, r] of this.issued) {
      if (now - r.at <= RETRY_WINDOW) break;
      this.issued.delete(token);
    }
    this.issued.set(record.token, record);
  }

  /**
   * A used token again: its certificate once more if the token was used
   * within RETRY_WINDOW, by the same key, and the reply may have been lost.
   * A request that comes on the very connection that carried the answer
   * proves the client read it (XML-RPC clients do not pipeline): that is a
   * reuse, refused as the legacy registry refuses it.
   */
  private resend(token: string, csr: string, caller: Caller): string {
    const unknown = new RpcFault("LookupError", "unknown or already used token");
    const record = this.issued.get(token);
    if (!record || this.now() - record.at > RETRY_WINDOW) throw unknown;
    if (record.connection !== undefined && record.connection === caller.connection) throw unknown;
    let key: string;
    try {
      key = keyId(checkRequest(csr).publicKey);
    } catch (e) {
      throw this.requestFault(e);
    }
    const cert = this.deps.db.certOf(record.prefix);
    if (key !== record.key || cert === null || this.revoked.has(record.prefix)) throw unknown;
    let stored: X509Certificate;
    try {
      stored = new X509Certificate(cert);
    } catch {
      throw unknown;
    }
    if (keyId(stored.publicKey) !== key) throw unknown; // renewed or reallocated meanwhile
    this.deps.log.log(1, `certificate for prefix ${record.prefix} (${prefixToCn(record.prefix)}) sent again: a retried request with the same token and key`);
    return cert;
  }

  /**
   * A new certificate for the key of `certPem`, which must be the one stored
   * for its prefix: same subject, new serial, valid CERT_DAYS from now,
   * SHA-256; it replaces the stored one. `csr` proves the caller holds the
   * key (its signature) and must carry the same public key. Refused for a
   * revoked prefix and for a certificate expired more than --renew-grace ago.
   * The cheap checks come first: a caller without the stored certificate
   * costs a look-up, never a signature check.
   */
  renewCertificate(certPem: string, csr: string): string {
    let old: X509Certificate;
    try {
      old = new X509Certificate(certPem);
    } catch (e) {
      throw new RpcFault("ValueError", `renewal refused: not a PEM certificate (${(e as Error).message})`);
    }
    const cn = /(?:^|\n)CN=([^\n]*)/.exec(old.subject)?.[1] ?? "";
    const prefix = cnToPrefix(cn);
    if (prefix === null) throw new RpcFault("ValueError", `renewal refused: the certificate's CN ${JSON.stringify(cn.slice(0, 40))} is not a node prefix such as 5/16`);
    const storedPem = this.deps.db.certOf(prefix);
    if (storedPem === null) throw new RpcFault("LookupError", `renewal refused: no certificate was issued for ${cn}`);
    let stored: X509Certificate | null;
    try {
      stored = new X509Certificate(storedPem);
    } catch {
      stored = null;
    }
    this.readRevocations(); // rare and decisive: not the throttled view
    const revoked = this.revoked.get(prefix);
    if (revoked) throw this.revokedFault(revoked, "its certificate cannot be renewed");
    const current = stored !== null && stored.raw.equals(old.raw);
    // An earlier certificate of the same key and prefix, CA-signed: the node lost the reply to its renewal.
    const earlier = !current && stored !== null && old.verify(this.ca.publicKey) && keyId(old.publicKey) === keyId(stored.publicKey) &&
      Date.parse(old.validFrom) < Date.parse(stored.validFrom);
    if (!current && !earlier)
      throw new RpcFault("PermissionError", `renewal refused: this is not the certificate the registry holds for ${cn} (a foreign certificate, or one replaced by a new enrolment)`);
    const expiredFor = this.now() - Date.parse(old.validTo) / 1000;
    if (current && expiredFor > this.renewGrace)
      throw new RpcFault("PermissionError", `renewal refused: the certificate of ${cn} expired on ${isoTime(Date.parse(old.validTo) / 1000)}, more than ${days(this.renewGrace)} ago (--renew-grace): enrol again with a new token`);
    let key: KeyObject;
    try {
      key = checkRequest(csr).publicKey;
    } catch (e) {
      throw this.requestFault(e);
    }
    if (keyId(key) !== keyId(old.publicKey))
      throw new RpcFault("PermissionError", `renewal refused: the request is not signed with the key of the certificate of ${cn}`);
    if (earlier) {
      this.deps.log.log(1, `renewed certificate of ${cn} sent again: the node presented the one it replaced`);
      return storedPem;
    }
    let pem: string;
    try {
      pem = renewNodeCertificate(this.ca, storedPem, new Date(this.now() * 1000), CERT_DAYS);
    } catch (e) {
      if (e instanceof CertificateError) throw new RpcFault("ValueError", `renewal refused: ${e.message}`);
      throw e;
    }
    if (!this.deps.db.replaceCert(prefix, storedPem, pem))
      throw new RpcFault("RuntimeError", `the certificate of ${cn} was renewed by another request meanwhile: renew again with the new one`);
    this.deps.log.log(1, `certificate of ${cn} renewed${stored && isSha1(stored) ? " (was SHA-1)" : ""}, valid until ${new X509Certificate(pem).validTo}`);
    return pem;
  }

  getBootstrapPeer(): Peer {
    this.revocationsIfDue();
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
    const shared = this.deps.onChange?.({ peer: [prefix, addressList] });
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
    this.revocationsIfDue();
    if (this.revoked.has(prefix)) {
      this.deps.log.log(2, `declare for ${nodeIp} refused: prefix ${prefixToCn(prefix)} is revoked`);
      return false;
    }
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
    this.revocationsIfDue();
    const revoked = this.revoked.get(prefix);
    if (revoked) throw this.revokedFault(revoked, "its declarations are refused");
    if (!verifyDeclaration({ nodeIp, addressList, time }, signature, cert))
      throw new RpcFault("PermissionError", `the signature is not made with the key of the certificate issued for ${prefixToCn(prefix)}`);
    if (!this.deps.db.recordDeclaration(prefix, ms))
      throw new RpcFault("PermissionError", "a declaration as recent was already accepted (replayed?)");
    return this.storePeer(prefix, addressList, " (signed)");
  }

  private checkPeerListCall(n: number, nodeIp: string, caller: Caller): void {
    if (!(n > 0 && n < 1000)) throw new RpcFault("AssertionError", `n must be between 1 and 999, got ${n}`);
    const bits = this.hostBits(nodeIp);
    if (bits === null) throw new RpcFault("AssertionError", `${nodeIp} is not an address inside the network`);
    if (this.deps.strict?.source && (caller.address === null || this.hostBits(caller.address) === null))
      throw new RpcFault("AssertionError", `getPeerList is answered only to callers inside the network (--strict-source); ${caller.address ?? "this caller"} is not`);
    this.revocationsIfDue();
    const revoked = this.revokedOwner(bits);
    if (revoked) throw this.revokedFault(revoked, "it is not given peers");
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
  ["requestToken", method(["string"], (r, [email], caller) => r.requestToken(email, caller))],
  ["requestCertificate", method(["string", "string"], (r, [token, csr], caller) => r.requestCertificate(token, csr, caller))],
  ["getBootstrapPeer", method([], (r) => r.getBootstrapPeer())],
  ["declare", method(["pair"], (r, [[ip, list]], caller) => r.declare(ip, list, caller))],
  ["getPeerList", method(["int", "string"], (r, [n, ip], caller) => r.getPeerListXml(n, ip, caller))],
  [DECLARE_SIGNED, method(["string", "string", "string", "binary"], (r, [ip, list, time, sig]) => r.declareSigned(ip, list, time, sig))],
  ["renewCertificate", method(["string", "string"], (r, [cert, csr]) => r.renewCertificate(cert, csr))],
  [GET_REVOCATION_LIST, method([], (r) => ({ ...r.getRevocationList() }))],
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
