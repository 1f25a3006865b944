// Revocation enforced by a node (issue 11): at each peers DB refresh the
// daemon fetches the registry's signed revocation list (getRevocationList,
// lib/revocation.ts), checks it against ca.pem, and keeps it in the state
// directory, so it holds across restarts and registry outages. A revoked
// prefix is removed from peers.db and never stored again, its client tunnel
// closes at once (a tunnel refresh, lib/tunnel.ts), a server it is connected
// to is restarted (./servers.ts ServerRestarts), and the servers'
// client-connect hook refuses it from then on: it reads the revoked common
// names from STATE/vifibnet.revoked, one a line (bin/ovpn-server). A list
// older than the one kept never replaces it; a legacy registry (no such
// method) leaves the kept list as it is, without a word.

import { readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { type RpcCaller, unknownMethod } from "../peers-refresh";
import { GET_REVOCATION_LIST, RevocationList, RevokedPrefix, verifyRevocationList } from "../revocation";
import { type Bits, prefixToCn } from "../utils/address";
import { writeFileAtomic } from "../utils/files";
import type { Logger } from "../utils/log";

/** The registry's answer as it came (signature included): verified again at each start. */
export const REVOCATION_FILE = "vifibnet.revocation.json";
/** The revoked common names, for the server hook (which runs as nobody). */
export const REVOKED_CN_FILE = "vifibnet.revoked";

export type ListChange =
  | { use: true; added: RevokedPrefix[]; removed: RevokedPrefix[] }
  | { use: false; why: "older" | "same" };

/**
 * Whether a list fetched from the registry replaces the one kept, and what
 * it changes. Only a list issued later replaces it, or one of the same
 * second that revokes more (two revocations within a second): a list
 * replayed from earlier never undoes a revocation.
 */
export function compareLists(kept: RevocationList | null, fetched: RevocationList): ListChange {
  const had = new Map((kept?.revoked ?? []).map((r) => [r.prefix, r]));
  const has = new Map(fetched.revoked.map((r) => [r.prefix, r]));
  const added = fetched.revoked.filter((r) => !had.has(r.prefix));
  const removed = [...had.values()].filter((r) => !has.has(r.prefix));
  if (kept === null || fetched.issued > kept.issued) return { use: true, added, removed };
  if (fetched.issued === kept.issued && added.length === 0 && removed.length === 0) return { use: false, why: "same" };
  if (fetched.issued === kept.issued && removed.length === 0) return { use: true, added, removed };
  return { use: false, why: "older" };
}

/** Why `nobody` could not read `file` (a directory on its way that others may not search, or the file's mode), or null. */
export function othersCannotRead(file: string): string | null {
  const mode = (p: string): number | null => {
    try {
      return statSync(p).mode;
    } catch {
      return null;
    }
  };
  for (let d = dirname(resolve(file)); ; d = dirname(d)) {
    const m = mode(d);
    if (m !== null && (m & 0o001) === 0) return `others may not enter ${d} (chmod o+x ${d})`;
    if (d === dirname(d)) break;
  }
  const m = mode(file);
  return m !== null && (m & 0o004) === 0 ? `others may not read ${file}` : null;
}

export interface RevocationStatus {
  /** The kept list's time (ms), or null when there is none. */
  issued: number | null;
  revoked: RevokedPrefix[];
  /** When the registry's list was last fetched and verified. */
  fetched: number | null;
  lastError: { at: number; message: string } | null;
}

export interface RevocationDeps {
  /** ca.pem's path (it may be renewed meanwhile: read at each check). */
  caPath: string;
  ownPrefix: Bits;
  /** Deletes these peers from peers.db. */
  removePeers(prefixes: readonly Bits[]): unknown;
  /** Revoked peers' client tunnels close: a tunnel refresh now. */
  closeTunnels(): void;
  /** Restarts the servers a peer of these common names is connected to. */
  dropConnected(commonNames: readonly string[]): Promise<void>;
  now: () => number;
  logger: Logger;
}

export class Revocations {
  private list: RevocationList | null = null;
  private prefixes = new Set<Bits>();
  private readonly state: Omit<RevocationStatus, "issued" | "revoked"> = { fetched: null, lastError: null };
  private legacySaid = false;
  readonly cnFile: string;
  private readonly listFile: string;

  constructor(stateDir: string, private readonly deps: RevocationDeps) {
    this.cnFile = join(stateDir, REVOKED_CN_FILE);
    this.listFile = join(stateDir, REVOCATION_FILE);
  }

  /** Loads the kept list (checked against ca.pem again) and writes the hook's file from it: before the servers start. */
  load(): void {
    const { deps } = this;
    let raw: unknown = null;
    try {
      raw = JSON.parse(readFileSync(this.listFile, "utf8"));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") deps.logger.warn(`${this.listFile} cannot be read (${(e as Error).message}); waiting for the registry's list`);
    }
    if (raw !== null) {
      try {
        this.set(verifyRevocationList(raw, readFileSync(deps.caPath, "utf8")));
        deps.logger.log(2, `Revocation list of ${new Date(this.list!.issued * 1000).toISOString()}: ${this.prefixes.size} prefix(es) revoked`);
      } catch (e) {
        deps.logger.warn(`${this.listFile}: ${(e as Error).message}; waiting for the registry's list`);
      }
    }
    this.writeCnFile();
    const blocked = othersCannotRead(this.cnFile);
    if (blocked) deps.logger.warn(`the OpenVPN servers' client-connect hook runs as nobody and cannot read ${this.cnFile}: ${blocked}; until then revoked peers can connect to this node's servers`);
  }

  /** The prefixes revoked now. */
  revoked(): ReadonlySet<Bits> {
    return this.prefixes;
  }

  /** One fetch (a round of the peers DB refresh). Never throws. */
  async check(rpc: RpcCaller): Promise<void> {
    const { deps } = this;
    let answer: unknown;
    try {
      answer = await rpc.call(GET_REVOCATION_LIST, []);
    } catch (e) {
      if (unknownMethod(e)) {
        if (!this.legacySaid) deps.logger.log(2, `The registry has no ${GET_REVOCATION_LIST} (a legacy registry): keeping the revocation list we have`);
        this.legacySaid = true;
      } else deps.logger.log(2, `Not fetching the revocation list: ${(e as Error).message}`);
      return;
    }
    let fetched: RevocationList;
    try {
      fetched = verifyRevocationList(answer, readFileSync(deps.caPath, "utf8"));
    } catch (e) {
      const message = (e as Error).message;
      if (this.state.lastError?.message !== message) deps.logger.warn(`${message}; keeping the list we have`);
      this.state.lastError = { at: deps.now(), message };
      return;
    }
    this.state.fetched = deps.now();
    this.state.lastError = null;
    const change = compareLists(this.list, fetched);
    if (!change.use) {
      if (change.why === "older") deps.logger.log(2, `The registry's revocation list (${fetched.issued}) is older than ours (${this.list!.issued}): kept ours`);
      return;
    }
    try {
      writeFileAtomic(this.listFile, JSON.stringify(answer) + "\n", 0o644);
    } catch (e) {
      deps.logger.warn(`cannot keep the revocation list in ${this.listFile}: ${(e as Error).message}`);
    }
    this.set(fetched);
    this.writeCnFile();
    for (const r of change.removed) deps.logger.log(1, `${r.cn} is no longer revoked`);
    if (change.added.length === 0) return;
    for (const r of change.added)
      if (r.prefix === deps.ownPrefix) deps.logger.warn(`this node's own prefix ${r.cn} is revoked${r.reason ? ` (${r.reason})` : ""}: vifibnet nodes refuse it, and the registry no longer lists it`);
      else deps.logger.log(1, `${r.cn} is revoked${r.reason ? ` (${r.reason})` : ""}: no tunnel with it from now on`);
    deps.removePeers(change.added.map((r) => r.prefix));
    deps.closeTunnels();
    await deps.dropConnected(change.added.map((r) => r.cn));
  }

  private set(list: RevocationList): void {
    this.list = list;
    this.prefixes = new Set(list.revoked.map((r) => r.prefix));
  }

  private writeCnFile(): void {
    const cns = [...this.prefixes].map(prefixToCn);
    try {
      writeFileAtomic(this.cnFile, cns.map((cn) => `${cn}\n`).join(""), 0o644);
    } catch (e) {
      this.deps.logger.warn(`cannot write ${this.cnFile} for the servers' hook: ${(e as Error).message}`);
    }
  }

  status(): RevocationStatus {
    return { issued: this.list === null ? null : this.list.issued * 1000, revoked: this.list?.revoked ?? [], ...this.state };
  }
}
