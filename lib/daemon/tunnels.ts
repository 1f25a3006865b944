// The tunnel executor: it owns the client tunnels and executes the refresh
// plans of lib/tunnel.ts. Each tunnel is one explicit state machine, as
// re6stnet's TunnelKiller:
//
//   opening ──route-up──▶ up ──retire──▶ retiring ──drainAt──▶ draining
//      │                  │                 │                     │
//      └──── OpenVPN exits: dead ◀──────────┴─────────────────────┘
//   any ──close──▶ closed (its OpenVPN stopped, the peer marked in peers.db)
//
// and each interface remembers whether babel still has a drained tunnel's
// costly parameters on it, to give it the defaults back (restore) when the
// tunnel closes, or before the interface is reused. Pure of I/O: spawning,
// babel requests, peers.db, the clock and the timers are handed in.

import type { PeerUse } from "../db";
import type { Negotiation } from "../ovpn-log";
import { NO_TRAFFIC, Traffic, Tunnel, TunnelState, planShutdown, updateTraffic, type CloseReason, type RefreshStep } from "../tunnel";
import type { Bits, PeerAddress } from "../utils/address";
import type { Logger } from "../utils/log";
import type { Timer, Timers } from "../utils/timers";

/** A tunnel's OpenVPN client, once started. */
export interface ClientProcess {
  readonly pid: number | undefined;
  /** Resolves once it has exited. */
  stop(): Promise<unknown>;
  /** What it negotiated with the peer, as its log says (lib/ovpn-log.ts); null until it has. */
  negotiation(): Negotiation | null;
}

/** What a client's OpenVPN tells its tunnel. */
export interface ClientEvents {
  /** Connected (route-up): the address the server sees us at, and the remote we reached, when known. */
  up(externalIp: string | null, remote: string | null): void;
  /** Its OpenVPN exited: `how` says how ("was killed by SIGKILL"). */
  exited(how: string): void;
}

export interface TunnelDeps {
  spawn(iface: string, prefix: Bits, remotes: readonly PeerAddress[], events: ClientEvents): ClientProcess;
  /** babel routing on an interface; false when babeld did not do it (already logged). */
  babel: { retire(iface: string): Promise<boolean>; restore(iface: string): Promise<boolean> };
  peers: { setUsed(prefix: Bits, used: PeerUse): unknown; removePeer(prefix: Bits): unknown };
  timers: Timers;
  now: () => number;
  logger: Logger;
  /** The peer of a tunnel reported our external address. */
  onReport?: (prefix: Bits, externalIp: string) => void;
  /** The tunnel to a peer closed. */
  onClosed?: (prefix: Bits) => void;
}

interface Entry {
  readonly prefix: Bits;
  readonly iface: string;
  /** The peer's address list, as dialled. */
  readonly address: string;
  readonly openedAt: number;
  state: TunnelState | "closed";
  /** When it entered its state. */
  since: number;
  proc: ClientProcess | null;
  remote: string | null;
  traffic: Traffic;
  drain: Timer | null;
}

/** A tunnel as `vifibnet status` shows it. */
export interface TunnelInfo {
  prefix: Bits;
  iface: string;
  address: string;
  remote: string | null;
  state: TunnelState;
  since: number;
  openedAt: number;
  pid: number | null;
  negotiation: Negotiation | null;
}

export class Tunnels {
  private readonly entries = new Map<string, Entry>();
  /** Interfaces on which babel has a drained tunnel's costly parameters. */
  private readonly costly = new Set<string>();
  private stopped = false;
  /** Tunnels closed since start, by reason. */
  readonly closed: Record<CloseReason, number> = { dead: 0, lan: 0, retired: 0, weak: 0, excess: 0, shutdown: 0, revoked: 0 };

  constructor(private readonly deps: TunnelDeps) {}

  /** The read-only view the planner gets. */
  snapshot(): Tunnel[] {
    return this.live().map((e) => ({ prefix: e.prefix, iface: e.iface, openedAt: e.openedAt, state: e.state as TunnelState, traffic: e.traffic.rate }));
  }

  info(): TunnelInfo[] {
    return this.live().map((e) => ({
      prefix: e.prefix, iface: e.iface, address: e.address, remote: e.remote, state: e.state as TunnelState, since: e.since,
      openedAt: e.openedAt, pid: e.proc?.pid ?? null, negotiation: e.proc?.negotiation() ?? null,
    }));
  }

  /** Folds each tunnel's rx + tx byte counter (null: none) into its smoothed traffic. */
  sample(bytes: (iface: string) => number | null): void {
    const time = this.deps.now();
    for (const e of this.live()) {
      const b = bytes(e.iface);
      e.traffic = updateTraffic(e.traffic, b === null ? null : { bytes: b, time });
    }
  }

  /** Runs the steps in order; a close completes when its OpenVPN has exited. */
  async execute(steps: readonly RefreshStep[]): Promise<void> {
    for (const step of steps) {
      if (this.stopped) return;
      if (step.kind === "forget") this.deps.peers.removePeer(step.prefix);
      else if (step.kind === "close") await this.close(step.iface, step.prefix, step.reason, step.mark);
      else if (step.kind === "retire") this.retire(step.iface, step.drainAt);
      else await this.open(step.iface, step.prefix, step.address, step.remotes);
    }
  }

  /** The daemon stops: every tunnel closes at once, peers back to free (dead ones to -1). */
  async closeAll(): Promise<void> {
    this.stopped = true;
    const marks = planShutdown(this.snapshot());
    const closing = this.live();
    for (const e of closing) this.enter(e, "closed");
    await Promise.all(closing.map((e) => e.proc?.stop()));
    for (const e of closing) if (this.entries.get(e.iface) === e) this.entries.delete(e.iface);
    for (const m of marks) if (m.mark !== "remove") this.deps.peers.setUsed(m.prefix, m.mark);
  }

  private live(): Entry[] {
    return [...this.entries.values()].filter((e) => e.state !== "closed");
  }

  private enter(e: Entry, state: Entry["state"]): void {
    if (state !== "retiring") {
      e.drain?.cancel();
      e.drain = null;
    }
    e.state = state;
    e.since = this.deps.now();
  }

  private async open(iface: string, prefix: Bits, address: string, remotes: readonly PeerAddress[]): Promise<void> {
    const { deps } = this;
    await this.restore(iface);
    if (this.stopped) return;
    const e: Entry = {
      prefix, iface, address, openedAt: deps.now(), state: "opening", since: deps.now(), proc: null, remote: null, traffic: NO_TRAFFIC, drain: null,
    };
    const current = (): boolean => this.entries.get(iface) === e && e.state !== "closed";
    try {
      e.proc = deps.spawn(iface, prefix, remotes, {
        up: (externalIp, remote) => {
          if (!current()) return;
          e.remote = remote ?? e.remote;
          if (e.state === "opening") this.enter(e, "up");
          deps.logger.log(2, `Tunnel on ${iface} is up${externalIp ? `; the peer sees us as ${externalIp}` : ""}`);
          if (externalIp) deps.onReport?.(prefix, externalIp);
        },
        exited: (how) => {
          if (!current() || e.state === "dead") return;
          this.enter(e, "dead");
          if (!this.stopped) deps.logger.log(2, `The tunnel to ${prefix} on ${iface} ended (its OpenVPN ${how})`);
        },
      });
    } catch (err) {
      deps.logger.warn(`cannot open a tunnel to ${prefix} on ${iface}: ${(err as Error).message}`);
      deps.peers.setUsed(prefix, -1);
      return;
    }
    this.entries.set(iface, e);
    deps.peers.setUsed(prefix, 1);
    deps.logger.log(2, `Opened a tunnel to ${prefix} on ${iface} (${address})`);
  }

  private retire(iface: string, drainAt: number): void {
    const e = this.entries.get(iface);
    if (!e || (e.state !== "opening" && e.state !== "up")) return;
    this.enter(e, "retiring");
    // It carries traffic while its replacement comes up; shortly before the
    // next refresh closes it, babel moves the routes off it, so the close
    // loses no packet.
    e.drain = this.deps.timers.after(drainAt - this.deps.now(), () => {
      e.drain = null;
      void this.drain(e);
    });
  }

  private async drain(e: Entry): Promise<void> {
    if (e.state !== "retiring" || this.stopped) return;
    if (!(await this.deps.babel.retire(e.iface))) return; // it closes without: as before the control socket
    this.costly.add(e.iface);
    if (e.state === "retiring") {
      this.enter(e, "draining");
      this.deps.logger.log(3, `Moved babel's routes off the tunnel to ${e.prefix} on ${e.iface}: it closes at the next refresh`);
    } else if (e.state === "closed" && this.entries.get(e.iface) !== e) {
      await this.restore(e.iface); // closed meanwhile, and its close's restore came first
    }
  }

  private async restore(iface: string): Promise<void> {
    if (this.costly.has(iface) && (await this.deps.babel.restore(iface))) this.costly.delete(iface);
  }

  private async close(iface: string, prefix: Bits, reason: CloseReason, mark: PeerUse | "remove"): Promise<void> {
    const { deps } = this;
    const e = this.entries.get(iface);
    // Counted as it leaves the live tunnels, so a status never shows it gone but not counted.
    this.closed[reason]++;
    if (e && e.prefix === prefix) {
      this.enter(e, "closed");
      await e.proc?.stop();
      if (this.entries.get(iface) === e) this.entries.delete(iface);
      deps.onClosed?.(prefix);
    }
    await this.restore(iface);
    if (mark === "remove") deps.peers.removePeer(prefix);
    else deps.peers.setUsed(prefix, mark);
    deps.logger.log(2, `Closed the tunnel to ${prefix} on ${iface} (${reason})`);
  }
}
