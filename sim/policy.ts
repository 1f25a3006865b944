// The one place the simulator runs the daemon's tunnel policy: it builds
// planRefresh's inputs from a simulated node, as lib/daemon/tunnel-refresh.ts
// builds them from the real one, and applies the steps as the tunnel
// executor (lib/daemon/tunnels.ts) does. When planRefresh's signature changes, this
// file is what follows it.

import { CLIENT_INTERFACES, MAX_CLIENT_TUNNELS, planRefresh, wantedTunnels, type Candidate, type Tunnel, type TunnelState } from "../lib/tunnel";
import type { Bits } from "../lib/utils/address";

/** A client tunnel of a simulated node, as the daemon tracks it. */
export interface SimTunnel {
  peer: number;
  /** Milliseconds of simulated time. */
  openedAt: number;
  /** False once its OpenVPN exited (the server refused it, or the peer is gone). */
  alive: boolean;
  retiring: boolean;
}

/** What a simulated node shows the refresh and lets it do: the simulated network implements it. */
export interface PolicyHost {
  readonly connectionCount: number;
  readonly refreshRate: number;
  /** --tunnel-refresh and --hello, seconds. */
  readonly tunnelRefreshS: number;
  readonly helloS: number;
  /** Simulated time, milliseconds. */
  now(): number;
  /** The planner's random source (the daemon passes Math.random). */
  random(): number;
  prefix(node: number): Bits;
  address(node: number): string;
  node(prefix: Bits): number;
  /** The tunnel on client interface `slot` (0 for client1) of node u, or null. */
  tunnel(u: number, slot: number): SimTunnel | null;
  /** Routes babel has through that interface (countRoutes). */
  routes(u: number, slot: number): number;
  /** peers.db's unusedPeers(limit): fills `out` (peer, used), returns how many. */
  unusedPeers(u: number, limit: number, out: { peer: Int32Array; used: Int8Array }): number;
  /** Stops the tunnel's OpenVPN. */
  closeTunnel(u: number, slot: number): void;
  retireTunnel(u: number, slot: number): void;
  /** Starts a client to `peer` on interface `slot`; whether it comes up is the host's affair. */
  openTunnel(u: number, slot: number, peer: number): void;
  setUsed(u: number, peer: number, used: 1 | 0 | -1): void;
  removePeer(u: number, peer: number): void;
}

/** What one refresh did, for the round's report. */
export interface RefreshTally {
  opened: number;
  /** Tunnels found dead and closed (refused by a full server, or their peer gone). */
  dead: number;
  /** Working tunnels replaced as weakest: retired now (closed next time), or closed at the 12-interface cap. */
  replaced: number;
}

const SLOT_OF = new Map(CLIENT_INTERFACES.map((iface, slot) => [iface, slot]));
const slotOf = (iface: string): number => {
  const s = SLOT_OF.get(iface);
  if (s === undefined) throw new Error(`the planner named an unknown interface ${iface}`);
  return s;
};

const scratch = { peer: new Int32Array(MAX_CLIENT_TUNNELS), used: new Int8Array(MAX_CLIENT_TUNNELS) };

/** One tunnel refresh of node u (the daemon's tunnel refresh, then its executor, step by step). */
export function refreshNode(host: PolicyHost, u: number, tally: RefreshTally): void {
  const now = host.now();
  const tunnels: Tunnel[] = [];
  const routes = new Map<string, number>();
  for (let slot = 0; slot < MAX_CLIENT_TUNNELS; slot++) {
    const t = host.tunnel(u, slot);
    if (t === null) continue;
    const iface = CLIENT_INTERFACES[slot]!;
    // A retiring tunnel carries no routes at the next measurement (the
    // simulator does not model the drain's timing), so retiring stands for
    // draining too; "opening" is not told apart from "up": the planner does not.
    const state: TunnelState = !t.alive ? "dead" : t.retiring ? "retiring" : "up";
    tunnels.push({ prefix: host.prefix(t.peer), iface, openedAt: t.openedAt, state, traffic: null });
    routes.set(iface, host.routes(u, slot));
  }
  // The daemon passes every unused peer. planRefresh opens at most `wanted`
  // of them, the first usable ones in unusedPeers' order, and here none is
  // ever unusable (no LAN, no malformed address, a tunnelled peer is marked
  // used): the first `wanted` give the same plan, at a fraction of the cost.
  const wanted = wantedTunnels(host.connectionCount);
  const n = host.unusedPeers(u, wanted, scratch);
  const candidates: Candidate[] = [];
  for (let i = 0; i < n; i++) {
    const p = scratch.peer[i]!;
    candidates.push({ prefix: host.prefix(p), address: host.address(p), used: scratch.used[i]! });
  }
  const plan = planRefresh(
    { tunnels, routes, candidates, lan: [] },
    {
      connectionCount: host.connectionCount, refreshRate: host.refreshRate, ownPrefix: host.prefix(u), rng: () => host.random(),
      now, hello: host.helloS, tunnelRefresh: host.tunnelRefreshS,
    },
  );
  if (plan.skipped.length > 0)
    throw new Error(`node ${u}: the planner skipped a candidate (${plan.skipped[0]!.reason}): the simulation must then pass it every unused peer`);
  for (const step of plan.steps) {
    if (step.kind === "forget") throw new Error(`node ${u}: the planner forgot a peer (${step.reason}): no simulated address is malformed`);
    const slot = slotOf(step.iface);
    const peer = host.node(step.prefix);
    switch (step.kind) {
      case "close":
        host.closeTunnel(u, slot);
        if (step.mark === "remove") host.removePeer(u, peer);
        else host.setUsed(u, peer, step.mark);
        if (step.reason === "dead") tally.dead++;
        else if (step.reason === "weak") tally.replaced++;
        break;
      case "retire":
        host.retireTunnel(u, slot);
        tally.replaced++;
        break;
      case "open":
        host.openTunnel(u, slot, peer);
        host.setUsed(u, peer, 1);
        tally.opened++;
        break;
    }
  }
}
