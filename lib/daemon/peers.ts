// The peers DB refresh as a service of the daemon (lib/peers-refresh.ts runs
// the rounds): it declares what the advertiser says, starts a round at once
// when that changes, hands the registry to what else asks it each round (the
// CA, the revocation list), and remembers the registry's last answers for
// `vifibnet status`.

import type { KeyObject } from "node:crypto";
import type { PeersDb } from "../db";
import { PeersRefreshResult, RpcCaller, runPeersRefresh } from "../peers-refresh";
import { RpcClient } from "../rpc-client";
import type { Bits } from "../utils/address";
import type { Logger } from "../utils/log";
import type { Timers } from "../utils/timers";

export interface RegistryStatus {
  url: string;
  /** ms of the last round that fetched the peer list, or null. */
  lastSuccess: number | null;
  lastError: { at: number; message: string } | null;
  nextRefresh: number | null;
  /** The registry's answer to our last declaration; null: not declared (no address yet) or no answer. */
  declared: boolean | null;
  /** What was declared, or would be. */
  address: string | null;
}

export interface PeersSetup {
  server: string;
  port: number;
  nodeIp: string;
  ownPrefix: Bits;
  refreshInterval: number;
}

export interface PeersDeps {
  db: PeersDb;
  /** Our address list now (null while unknown). */
  address(): string | null;
  /** Peers on the LAN, never stored. */
  lan(): Iterable<Bits>;
  /** Revoked peers, never stored either. */
  revoked(): Iterable<Bits>;
  /** Our certificate's key, to declare signed (lib/declaration.ts), or null. */
  key(): KeyObject | null;
  /** What else asks the registry at each round that reached it (the CA, the revocation list); never rejects. */
  afterRound?: (rpc: RpcCaller) => Promise<void>;
  timers: Timers;
  now: () => number;
  logger: Logger;
}

export class PeersRefresh {
  private readonly rpc: RpcClient;
  private stopLoop: (() => void) | null = null;
  /** What runs after a round (afterRound), until it is done. */
  private after: Promise<void> | null = null;
  private stopped = false;
  private readonly state: RegistryStatus;

  constructor(private readonly s: PeersSetup, private readonly deps: PeersDeps) {
    this.rpc = new RpcClient(s.server, s.port);
    this.state = { url: this.rpc.url, lastSuccess: null, lastError: null, nextRefresh: null, declared: null, address: null };
  }

  start(): void {
    if (this.stopped) return;
    const { s, deps } = this;
    this.stopLoop = runPeersRefresh(
      () => {
        this.state.address = deps.address();
        return {
          rpc: this.rpc, db: deps.db, nodeIp: s.nodeIp, ownPrefix: s.ownPrefix, address: this.state.address, key: deps.key(),
          refreshInterval: s.refreshInterval, now: deps.now, logger: deps.logger, lan: [...deps.lan(), ...deps.revoked()],
        };
      },
      deps.timers,
      (r: PeersRefreshResult) => this.round(r),
    );
  }

  private round(r: PeersRefreshResult): void {
    const now = this.deps.now();
    if (r.ok) this.state.lastSuccess = now;
    if (r.error !== null) this.state.lastError = { at: now, message: r.error };
    this.state.declared = r.declared;
    this.state.nextRefresh = r.nextAt;
    this.deps.logger.log(3, `Next peers DB refresh in ${r.delayS} s`);
    if (r.ok && !this.stopped && this.deps.afterRound && this.after === null) {
      this.after = this.deps.afterRound(this.rpc)
        .catch((e: unknown) => this.deps.logger.warn(`after the peers DB refresh: ${(e as Error).message}`))
        .finally(() => (this.after = null));
    }
  }

  /** Our address changed: declare it now rather than at the next round. */
  restart(): void {
    if (this.stopLoop === null) return; // not started yet: its first round declares it
    this.stopLoop();
    this.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopLoop?.();
    this.rpc.close(); // a call under way fails now
    await this.after; // before peers.db closes
  }

  status(): RegistryStatus {
    return { ...this.state };
  }
}
