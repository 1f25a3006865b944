// The tunnel refresh (SPEC section 6), every --tunnel-refresh seconds and
// once at start: observe (routes per tunnel, LAN peers, traffic), plan
// (lib/tunnel.ts), execute (./tunnels.ts). What it reads of the host and of
// peers.db is handed in.

import { Candidate, CLIENT_INTERFACES, planRefresh, wantedTunnels } from "../tunnel";
import type { Bits } from "../utils/address";
import type { Logger } from "../utils/log";
import { countRoutes, lanPeers } from "../utils/routes";
import type { Timer, Timers } from "../utils/timers";
import type { Tunnels } from "./tunnels";

export interface TunnelRefreshConfig {
  connectionCount: number;
  refreshRate: number;
  /** Seconds. */
  hello: number;
  tunnelRefresh: number;
  network: Bits;
  ownPrefix: Bits;
  /** -i interfaces: a peer babel reaches there is on the LAN. */
  lanInterfaces: readonly string[];
}

export interface TunnelRefreshDeps {
  tunnels: Tunnels;
  /** Unused peers from peers.db, free ones first. */
  candidates(): Candidate[];
  removePeers(prefixes: readonly Bits[]): unknown;
  /** Prefixes the revocation list names (./revocations.ts): closed, never opened. */
  revoked(): Iterable<Bits>;
  /** /proc/net/ipv6_route. */
  routes(): string;
  /** rx + tx bytes of an interface, null when it is not there. */
  bytes(iface: string): number | null;
  timers: Timers;
  now: () => number;
  rng: () => number;
  logger: Logger;
}

export interface RefreshStatus {
  wanted: number;
  /** ms, null before the first. */
  last: number | null;
  next: number | null;
}

export class TunnelRefresh {
  private timer: Timer | null = null;
  private running: Promise<void> | null = null;
  /** A refresh was asked for while one ran: another follows at once. */
  private again = false;
  private stopped = false;
  private last: number | null = null;
  private next: number | null = null;
  /** Peers babel reaches over a LAN interface (-i), as of the last refresh. */
  lan: Bits[] = [];

  constructor(private readonly cfg: TunnelRefreshConfig, private readonly deps: TunnelRefreshDeps) {}

  start(): void {
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.next = this.deps.now() + ms;
    this.timer = this.deps.timers.after(ms, () => {
      this.timer = null;
      this.running = this.refresh()
        .catch((e: unknown) => this.deps.logger.warn(`tunnel refresh failed: ${(e as Error).stack ?? String(e)}`))
        .finally(() => {
          this.running = null;
          const again = this.again;
          this.again = false;
          this.schedule(again ? 0 : this.cfg.tunnelRefresh * 1000);
        });
    });
  }

  /** A refresh now rather than at its time (peers were revoked); after the one under way, if any. */
  refreshSoon(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.timer?.cancel();
    this.schedule(0);
  }

  /** One refresh: observe, plan, execute the steps in order. */
  private async refresh(): Promise<void> {
    const { cfg, deps } = this;
    const now = deps.now();
    this.last = now;
    this.next = null;
    const routesText = deps.routes();
    const tunnels = deps.tunnels;
    this.lan = lanPeers(routesText, cfg.network, cfg.lanInterfaces, cfg.ownPrefix);
    if (this.lan.length > 0) deps.removePeers(this.lan);
    tunnels.sample(deps.bytes);
    const snapshot = tunnels.snapshot();
    const plan = planRefresh(
      {
        tunnels: snapshot, routes: countRoutes(routesText, cfg.network, snapshot.map((t) => t.iface)), candidates: deps.candidates(), lan: this.lan,
        revoked: deps.revoked(),
      },
      {
        connectionCount: cfg.connectionCount, refreshRate: cfg.refreshRate, ownPrefix: cfg.ownPrefix, rng: deps.rng,
        now, hello: cfg.hello, tunnelRefresh: cfg.tunnelRefresh,
      },
    );
    deps.logger.log(3, `Tunnel refresh: ${snapshot.length} tunnel(s), ${plan.wanted} wanted, ${plan.steps.length} step(s)`);
    await tunnels.execute(plan.steps);
  }

  /** Babel routes inside the network through each client interface, now. */
  routesPerInterface(): Map<string, number> {
    return countRoutes(this.deps.routes(), this.cfg.network, CLIENT_INTERFACES);
  }

  /** Stops refreshing (waiting for a refresh under way), then closes every tunnel. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = null;
    this.next = null;
    await this.deps.tunnels.closeAll();
    await this.running;
  }

  status(): RefreshStatus {
    return { wanted: wantedTunnels(this.cfg.connectionCount), last: this.last, next: this.next };
  }
}
