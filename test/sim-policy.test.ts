// The simulator runs the daemon's planner (lib/tunnel.ts) through one
// adapter, sim/policy.ts. Here a hand-made node shows that a refresh
// replaces the weakest settled tunnel, closes dead ones (peer -1) and
// refills; then a small simulated network shows the same at work: a full
// server refuses, the tunnel dies, the peer is marked -1, caps hold.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Network } from "../sim/network";
import { refreshNode, type PolicyHost, type RefreshTally, type SimTunnel } from "../sim/policy";
import { Rng } from "../sim/rng";

const REFRESH_S = 300;
const p = (n: number): string => n.toString(2).padStart(16, "0");

/** Node 0 of a fake network: tunnels on interfaces, routes per interface, free peers; records what the refresh does. */
class FakeNode implements PolicyHost {
  readonly connectionCount: number;
  readonly refreshRate = 0.05;
  readonly tunnelRefreshS = REFRESH_S;
  readonly helloS = 15;
  slots: Array<SimTunnel | null> = Array(12).fill(null);
  routeCount = new Map<number, number>();
  used = new Map<number, 1 | 0 | -1>();
  log: string[] = [];
  private readonly rng = new Rng(7);
  constructor(wanted: number, readonly round: number) {
    this.connectionCount = 2 * wanted;
  }
  now(): number {
    return this.round * REFRESH_S * 1000;
  }
  random(): number {
    return this.rng.next();
  }
  prefix(node: number): string {
    return p(node);
  }
  address(node: number): string {
    return `10.0.0.${node},1194,udp`;
  }
  node(prefix: string): number {
    return parseInt(prefix, 2);
  }
  tunnel(_u: number, slot: number): SimTunnel | null {
    return this.slots[slot] ?? null;
  }
  routes(_u: number, slot: number): number {
    return this.routeCount.get(slot) ?? 0;
  }
  unusedPeers(_u: number, limit: number, out: { peer: Int32Array; used: Int8Array }): number {
    const free = [...this.used].filter(([, u]) => u <= 0).sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, limit);
    free.forEach(([peer, u], i) => {
      out.peer[i] = peer;
      out.used[i] = u;
    });
    return free.length;
  }
  closeTunnel(_u: number, slot: number): void {
    this.log.push(`close client${slot + 1} (${this.slots[slot]!.peer})`);
    this.slots[slot] = null;
  }
  retireTunnel(_u: number, slot: number): void {
    this.log.push(`retire client${slot + 1} (${this.slots[slot]!.peer})`);
    this.slots[slot]!.retiring = true;
  }
  openTunnel(_u: number, slot: number, peer: number): void {
    this.log.push(`open client${slot + 1} (${peer})`);
    this.slots[slot] = { peer, openedAt: this.now(), alive: true, retiring: false };
  }
  setUsed(_u: number, peer: number, used: 1 | 0 | -1): void {
    this.used.set(peer, used);
  }
  removePeer(_u: number, peer: number): void {
    this.used.delete(peer);
  }
}

/** A node at round `round` with tunnels to peers 1..tunnels (opened at round 0) on client1.., routes 100 each, and free peers 50... */
function node(wanted: number, tunnels: number, round: number): FakeNode {
  const f = new FakeNode(wanted, round);
  for (let i = 0; i < tunnels; i++) {
    f.slots[i] = { peer: i + 1, openedAt: 0, alive: true, retiring: false };
    f.routeCount.set(i, 100);
    f.used.set(i + 1, 1);
  }
  for (let i = 0; i < 20; i++) f.used.set(50 + i, 0);
  return f;
}
const tally = (): RefreshTally => ({ opened: 0, dead: 0, replaced: 0 });

describe("simulator policy adapter", () => {
  test("a refresh replaces the weakest settled tunnel: its replacement opens, it retires, the next refresh closes it", () => {
    const f = node(10, 10, 1);
    f.routeCount.set(6, 3); // client7, to peer 7: fewest routes
    const t = tally();
    refreshNode(f, 0, t);
    assert.deepEqual(f.log, ["open client11 (50)", "retire client7 (7)"]);
    assert.deepEqual(t, { opened: 1, dead: 0, replaced: 1 });
    assert.equal(f.used.get(50), 1);
    f.log = [];
    const g = Object.assign(f, { round: 2 }) as FakeNode;
    refreshNode(g, 0, tally());
    assert.equal(g.log[0], "close client7 (7)", "the retired tunnel closes first");
    assert.equal(g.used.get(7), 0, "its peer is free again");
  });

  test("a tunnel still settling is not judged: the weakest settled one goes instead", () => {
    const f = node(10, 10, 1);
    f.slots[2]!.openedAt = f.now(); // client3 opened just now, no routes yet
    f.routeCount.set(2, 0);
    f.routeCount.set(8, 40); // client9: the weakest of the settled ones
    refreshNode(f, 0, tally());
    assert.deepEqual(f.log, ["open client11 (50)", "retire client9 (9)"]);
  });

  test("a dead tunnel is closed, its peer marked -1, and refilled; no weak one is cut that round", () => {
    const f = node(10, 10, 3);
    f.slots[4]!.alive = false; // refused by a full server
    const t = tally();
    refreshNode(f, 0, t);
    assert.deepEqual(f.log, ["close client5 (5)", "open client5 (50)"], "a dead tunnel's interface is taken first");
    assert.equal(f.used.get(5), -1);
    assert.deepEqual(t, { opened: 1, dead: 1, replaced: 0 });
  });

  test("wanted is capped at 12 interfaces: at the cap the weakest closes first and its interface is reused", () => {
    const f = node(20, 12, 1); // --connection-count 40: 12 client tunnels
    f.routeCount.set(3, 1);
    refreshNode(f, 0, tally());
    assert.deepEqual(f.log, ["close client4 (4)", "open client4 (50)"]);
  });
});

describe("simulated network", () => {
  test("tunnels per node stay within the wanted count and --max-clients; refused tunnels are closed with their peer at -1", () => {
    // 30 nodes wanting 4 tunnels each, servers capped at 8: some refuse.
    const net = new Network({ nodes: 30, tunnels: 4, seed: 3, sources: 30 });
    let refused = 0, dead = 0;
    for (let r = 0; r < 30; r++) {
      const m = net.round();
      assert.ok(m.out.max <= 4 && m.in.max <= 8, `round ${m.round}: out ${m.out.max}, in ${m.in.max}`);
      assert.equal(m.inHistogram.reduce((s, c) => s + c, 0), 30);
      assert.equal(m.out.mean, m.in.mean, "every tunnel has two ends");
      if (r > 1) assert.ok(dead <= refused, "a tunnel is found dead only after it was refused");
      refused += m.refused;
      dead += m.dead;
      if (m.round >= 2) assert.equal(m.largestComponent, 30);
    }
    assert.ok(refused > 0, "full servers refused tunnels");
    assert.ok(dead > 0, "and the refused tunnels were closed as dead");
  });

  test("servers that are never full refuse nothing; the planner then only replaces the weakest", () => {
    const net = new Network({ nodes: 30, tunnels: 4, seed: 3, sources: 30, maxClients: 30 });
    for (let r = 0; r < 20; r++) {
      const m = net.round();
      assert.equal(m.refused, 0);
      assert.equal(m.dead, 0);
      if (m.round >= 2) assert.equal(m.out.min, 4);
    }
  });

  test("at the 12-interface cap (K = 20) every node keeps its 12 tunnels, round after round", () => {
    const net = new Network({ nodes: 60, tunnels: 20, seed: 2, sources: 60 });
    net.round();
    for (let r = 0; r < 12; r++) {
      const m = net.round();
      assert.equal(m.out.max, 12);
      assert.ok(m.out.min >= 11, `round ${m.round}: a node has ${m.out.min} working tunnels`);
    }
  });

  test("the first refresh has only setup's bootstrap peer; the peers DB refresh brings the rest", () => {
    const net = new Network({ nodes: 50, tunnels: 3, seed: 1, sources: 50 });
    const first = net.round();
    assert.deepEqual([first.out.min, first.out.max], [1, 1]);
    const second = net.round();
    assert.equal(second.opened, 50 * 2);
    assert.equal(second.replaced, 0, "refills count as the round's replacements");
    const third = net.round();
    assert.ok(third.replaced > 0, "from then on the weakest are replaced");
  });

  test("kill experiments: the best connected are the nodes with the most tunnels; survivors refresh and reconnect", () => {
    const net = new Network({ nodes: 200, tunnels: 3, seed: 5, sources: 200 });
    for (let r = 0; r < 15; r++) net.round();
    const random = net.kill("random", 0.3);
    const best = net.kill("best", 0.3);
    for (const k of [random, best]) {
      assert.equal(k.killed, 60);
      assert.equal(k.before.nodes, 140);
      assert.equal(k.after.nodes, 140);
      assert.ok(k.after.connectedPairs >= k.before.connectedPairs);
    }
    assert.ok(best.before.meanDistance > random.before.meanDistance, "losing the hubs stretches paths more");
    const again = net.kill("best", 0.3);
    assert.deepEqual(again, best, "an experiment leaves the network as it was");
  });
});
