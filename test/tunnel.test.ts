// The tunnel policy (SPEC section 6), run as pure functions: dead tunnels,
// weakest, protected 20%, refill, LAN blacklist, revoked peers, 12-interface cap,
// replacement before close, settling and draining times, malformed peers.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  CLIENT_INTERFACES, Candidate, DRAIN_HELLOS, MAX_CLIENT_TUNNELS, NO_TRAFFIC, RefreshParams, RefreshPlan, RefreshState, RefreshStep, SETTLE_HELLOS,
  Traffic, Tunnel, counterValue, planRefresh, planShutdown, rankWeakest, refreshCount, updateTraffic, wantedTunnels,
} from "../lib/tunnel";

const p = (n: number): string => n.toString(2).padStart(16, "0");
const OWN = p(5);
const addr = (n: number): string => `198.51.100.${n % 250},1194,udp`;

/** A deterministic uniform source (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function tunnel(n: number, iface: string, extra: Partial<Tunnel> = {}): Tunnel {
  return { prefix: p(n), iface, openedAt: n, state: "up", traffic: null, ...extra };
}
const cand = (n: number, used = 0, address = addr(n)): Candidate => ({ prefix: p(n), address, used });
const cands = (from: number, count: number, used = 0): Candidate[] => Array.from({ length: count }, (_, i) => cand(from + i, used));

/** By default every tunnel has settled long ago (opened at a few ms, now is a day later). */
function params(extra: Partial<RefreshParams> = {}): RefreshParams {
  return { connectionCount: 10, refreshRate: 0.2, ownPrefix: OWN, rng: seeded(1), now: 86_400_000, hello: 1, tunnelRefresh: 10, ...extra };
}
function state(tunnels: Tunnel[], routes: Record<string, number> = {}, candidates: Candidate[] = cands(100, 30), lan: string[] = []): RefreshState {
  return { tunnels, routes: new Map(Object.entries(routes)), candidates, lan };
}
const summary = (plan: RefreshPlan): string[] =>
  plan.steps.map((s) => (s.kind === "close" ? `close ${s.iface} ${s.reason} ${s.mark}` : s.kind === "forget" ? `forget ${parseInt(s.prefix, 2)}` : `${s.kind} ${s.iface} ${parseInt(s.prefix, 2)}`));

/**
 * Executes a plan as the main loop would, checking its invariants at every
 * step: at most 12 interfaces, one tunnel per interface and per peer.
 */
function execute(tunnels: Tunnel[], plan: RefreshPlan, now: number): Tunnel[] {
  const live = new Map(tunnels.map((t) => [t.iface, { ...t }]));
  for (const s of plan.steps) {
    if (s.kind === "close") {
      assert.equal(live.get(s.iface)?.prefix, s.prefix, `closes a tunnel that exists: ${s.iface}`);
      live.delete(s.iface);
    } else if (s.kind === "open") {
      assert.ok(!live.has(s.iface), `${s.iface} is free when opened`);
      assert.ok(![...live.values()].some((t) => t.prefix === s.prefix), "never two tunnels to one peer");
      live.set(s.iface, { prefix: s.prefix, iface: s.iface, openedAt: now, state: "up", traffic: null });
      assert.ok(live.size <= MAX_CLIENT_TUNNELS, "at most 12 tunnels at any moment");
    } else if (s.kind === "retire") {
      live.set(s.iface, { ...live.get(s.iface)!, state: "retiring" });
    }
  }
  return [...live.values()];
}

describe("counts", () => {
  test("wanted tunnels: half the connection count, rounded up, at most 12", () => {
    assert.deepEqual([0, 1, 2, 3, 10, 20, 21, 23, 24, 25, 100].map(wantedTunnels), [0, 1, 1, 2, 5, 10, 11, 12, 12, 12, 12]);
  });
  test("refresh count: ceil(rate * wanted), exact on float products", () => {
    assert.equal(refreshCount(0.05, 10), 1);
    assert.equal(refreshCount(0.3, 10), 3, "0.3 * 10 is 3.0000000000000004 in floats");
    assert.equal(refreshCount(0.1, 10), 1);
    assert.equal(refreshCount(0.15, 10), 2);
    assert.equal(refreshCount(0, 10), 0);
    assert.equal(refreshCount(1, 10), 10);
    assert.equal(refreshCount(0.5, 0), 0);
  });
  test("interfaces: client1..client12", () => {
    assert.deepEqual([CLIENT_INTERFACES.length, CLIENT_INTERFACES[0], CLIENT_INTERFACES[11]], [12, "client1", "client12"]);
  });
});

describe("peer addresses", () => {
  test("an open step carries the address list as advertised, parsed (plib dials tcp-server as tcp-client)", () => {
    const plan = planRefresh(state([], {}, [cand(100, 0, "198.51.100.7,1194,udp;198.51.100.7,443,tcp-server;2001:db8::7,1195,tcp-client")]), params({ connectionCount: 2 }));
    assert.deepEqual(plan.steps, [{
      kind: "open", prefix: p(100), iface: "client1", address: "198.51.100.7,1194,udp;198.51.100.7,443,tcp-server;2001:db8::7,1195,tcp-client",
      remotes: [{ ip: "198.51.100.7", port: 1194, proto: "udp" }, { ip: "198.51.100.7", port: 443, proto: "tcp-server" }, { ip: "2001:db8::7", port: 1195, proto: "tcp-client" }],
    }]);
  });
  test("a malformed list is never dialled: the peer is forgotten, whole", () => {
    const bad = ["", "198.51.100.7,1194", "198.51.100.7,1194,udp,x", "--up,/bin/sh,udp", "198.51.100.7,--up,udp",
      "198.51.100.7,1194,tcp", "198.51.100.7,1194,udp;host.example,1194,udp", "198.51.100.7,0,udp", "198.51.100.7,1194,udp;"];
    const plan = planRefresh(state([], {}, bad.map((a, i) => cand(200 + i, 0, a))), params({ connectionCount: 24 }));
    assert.deepEqual(summary(plan), bad.map((_, i) => `forget ${200 + i}`));
  });
});

describe("traffic", () => {
  test("exponential moving average of bytes/s", () => {
    let t: Traffic = NO_TRAFFIC;
    t = updateTraffic(t, { bytes: 1000, time: 0 });
    assert.equal(t.rate, null, "one sample gives no rate");
    t = updateTraffic(t, { bytes: 11000, time: 10_000 });
    assert.equal(t.rate, 1000);
    t = updateTraffic(t, { bytes: 41000, time: 20_000 });
    assert.equal(t.rate, 0.7 * 1000 + 0.3 * 3000);
    const kept = updateTraffic(t, null);
    assert.equal(kept, t, "no sample (interface gone): unchanged");
    assert.equal(updateTraffic(t, { bytes: 50000, time: 20_000 }), t, "no time elapsed: ignored");
    const reset = updateTraffic(t, { bytes: 10, time: 30_000 });
    assert.deepEqual(reset, { last: { bytes: 10, time: 30_000 }, rate: t.rate }, "counter went back: new baseline, rate kept");
    assert.equal(updateTraffic(t, { bytes: 41000 + 5000, time: 30_000 }, 1).rate, 500, "smooth 1: the last sample only");
  });
  test("counter files", () => {
    assert.equal(counterValue("123456\n"), 123456);
    assert.equal(counterValue(""), null);
    assert.equal(counterValue("-1"), null);
  });
});

describe("planRefresh", () => {
  test("dead tunnels are closed first and their peer marked -1; the wanted count is refilled", () => {
    const tunnels = [tunnel(1, "client1", { state: "dead" }), tunnel(2, "client2"), tunnel(3, "client3", { state: "dead" })];
    const plan = planRefresh(state(tunnels, { client2: 3 }, cands(100, 10)), params({ connectionCount: 8 }));
    assert.equal(plan.wanted, 4);
    assert.deepEqual(summary(plan).slice(0, 2), ["close client1 dead -1", "close client3 dead -1"]);
    const opens = plan.steps.filter((s) => s.kind === "open");
    assert.equal(opens.length, 3, "1 alive + 3 = 4 wanted; refills cover the refresh count");
    assert.deepEqual(opens.map((s) => s.iface), ["client1", "client3", "client4"], "a dead tunnel's interface is free at once");
    assert.ok(!plan.steps.some((s) => s.kind === "retire" || (s.kind === "close" && s.reason !== "dead")));
  });

  test("the weakest (fewest routes) is replaced: replacement opened, old tunnel retired", () => {
    const tunnels = [1, 2, 3, 4, 5].map((n) => tunnel(n, `client${n}`));
    const routes = { client1: 5, client2: 1, client3: 3, client4: 0, client5: 2 };
    const plan = planRefresh(state(tunnels, routes), params({ connectionCount: 10, refreshRate: 0.2 }));
    assert.deepEqual(summary(plan), ["open client6 100", "retire client4 4"]);
    const two = planRefresh(state(tunnels, routes), params({ connectionCount: 10, refreshRate: 0.4 }));
    assert.deepEqual(summary(two), ["open client6 100", "open client7 101", "retire client4 4", "retire client2 2"]);
  });

  test("the 20% with most traffic are protected, whatever their routes", () => {
    const tunnels = [1, 2, 3, 4, 5].map((n) => tunnel(n, `client${n}`, { traffic: n === 4 ? 50_000 : 100 }));
    const routes = { client1: 5, client2: 1, client3: 3, client4: 0, client5: 2 };
    const plan = planRefresh(state(tunnels, routes), params({ refreshRate: 0.2 }));
    assert.deepEqual(summary(plan), ["open client6 100", "retire client2 2"], "client4 has no routes but the most traffic");
    const rank = rankWeakest(tunnels, new Map(Object.entries(routes)), seeded(1));
    assert.deepEqual(rank.protected.map((t) => t.iface), ["client4"]);
    assert.deepEqual(rank.weakest.map((t) => t.iface), ["client2", "client5", "client3", "client1"]);
    // 10 tunnels: 2 protected; no traffic at all: nothing to protect.
    const ten = Array.from({ length: 10 }, (_, i) => tunnel(i + 1, `client${i + 1}`, { traffic: (i + 1) * 10 }));
    assert.deepEqual(rankWeakest(ten, new Map(), seeded(1)).protected.map((t) => t.iface), ["client10", "client9"]);
    assert.equal(rankWeakest(ten.map((t) => ({ ...t, traffic: null })), new Map(), seeded(1)).protected.length, 0);
  });

  test("a tunnel still settling is never replaced as weak, however few its routes", () => {
    // client4 and client5 were opened at 40 and 50 ms: no routes yet, but babel had no time to route over them.
    // Settled: opened max(--tunnel-refresh, 4 hellos) ago; with a 10 s refresh and 1 s hellos, 10 s.
    const tunnels = [1, 2, 3, 40, 50].map((n, i) => tunnel(n, `client${i + 1}`));
    const routes = { client1: 5, client2: 1, client3: 3, client4: 0, client5: 0 };
    const settling = planRefresh(state(tunnels, routes), params({ connectionCount: 10, refreshRate: 0.4, now: 10_030 }));
    assert.deepEqual(summary(settling), ["open client6 100", "open client7 101", "retire client2 2", "retire client3 3"]);
    const judged = planRefresh(state(tunnels, routes), params({ connectionCount: 10, refreshRate: 0.4, now: 10_050 }));
    assert.deepEqual(summary(judged), ["open client6 100", "open client7 101", "retire client4 40", "retire client5 50"]);
    // Long hellos: settling takes SETTLE_HELLOS of them, longer than the refresh.
    const slow = planRefresh(state(tunnels, routes), params({ connectionCount: 10, refreshRate: 0.4, now: 10_050, hello: 10 }));
    assert.equal(SETTLE_HELLOS, 4);
    assert.deepEqual(summary(slow), [], "nothing has settled for 40 s yet: none replaced");
    // Nothing settled: nothing replaced, the missing tunnels still refilled.
    const young = planRefresh(state(tunnels.slice(3), { client4: 0, client5: 0 }), params({ connectionCount: 10, refreshRate: 0.4, now: 10_000 }));
    assert.deepEqual(summary(young), ["open client1 100", "open client2 101", "open client3 102"]);
  });

  test("a retired tunnel drains DRAIN_HELLOS hellos before the next refresh", () => {
    const tunnels = [1, 2, 3, 4, 5].map((n) => tunnel(n, `client${n}`));
    const retire = (extra: Partial<RefreshParams>): RefreshStep | undefined =>
      planRefresh(state(tunnels, { client1: 5, client2: 5, client3: 5, client4: 0, client5: 5 }), params(extra)).steps.find((s) => s.kind === "retire");
    assert.equal(DRAIN_HELLOS, 4);
    assert.deepEqual(retire({ now: 1_000_000, tunnelRefresh: 12, hello: 2 }), { kind: "retire", prefix: p(4), iface: "client4", drainAt: 1_004_000 });
    assert.deepEqual(retire({ now: 1_000_000, tunnelRefresh: 5, hello: 2 }), { kind: "retire", prefix: p(4), iface: "client4", drainAt: 1_000_000 }, "a refresh shorter than 4 hellos: at once");
  });

  test("ties: fewest routes, then least traffic, then oldest, then at random", () => {
    const routes = new Map([["client1", 1], ["client2", 1], ["client3", 1]]);
    const tr = [tunnel(1, "client1", { traffic: 30 }), tunnel(2, "client2", { traffic: 20 }), tunnel(3, "client3", { traffic: 20, openedAt: 0 })];
    assert.deepEqual(rankWeakest(tr, routes, seeded(1), 0).weakest.map((t) => t.iface), ["client3", "client2", "client1"]);
    const same = [1, 2, 3, 4].map((n) => tunnel(n, `client${n}`, { openedAt: 0 }));
    const firsts = new Set(Array.from({ length: 40 }, (_, i) => rankWeakest(same, new Map(), seeded(i)).weakest[0]!.iface));
    assert.ok(firsts.size > 1, "equal tunnels are picked at random");
    assert.deepEqual(rankWeakest(same, new Map(), seeded(7)).weakest, rankWeakest(same, new Map(), seeded(7)).weakest, "the injected rng decides");
  });

  test("refill: free peers (0) before dead ones (-1), up to the wanted count, as far as peers go", () => {
    const tunnels = [tunnel(1, "client1"), tunnel(2, "client2")];
    const candidates = [cand(10, -1), cand(11, 0), cand(12, -1), cand(13, 0)];
    const plan = planRefresh(state(tunnels, {}, candidates), params({ connectionCount: 10 }));
    assert.deepEqual(summary(plan), ["open client3 11", "open client4 13", "open client5 10"]);
    const short = planRefresh(state(tunnels, {}, [cand(10, -1)]), params({ connectionCount: 10 }));
    assert.deepEqual(summary(short), ["open client3 10"]);
  });

  test("a weak tunnel is only replaced when a spare peer is there: nothing is cut", () => {
    const tunnels = [1, 2, 3, 4, 5].map((n) => tunnel(n, `client${n}`));
    assert.deepEqual(planRefresh(state(tunnels, { client1: 9 }, []), params()).steps, []);
    // Two short of wanted and one spare peer: it refills, no weak tunnel goes.
    const three = tunnels.slice(0, 3);
    assert.deepEqual(summary(planRefresh(state(three, {}, cands(100, 1)), params({ refreshRate: 1 }))), ["open client4 100"]);
  });

  test("never ourselves, a LAN peer, a peer with a tunnel, a duplicate, a malformed or unreachable address", () => {
    const tunnels = [tunnel(1, "client1"), tunnel(7, "client2")];
    const candidates = [
      cand(5), cand(7), cand(8), cand(9, 0, "1.2.3.4,1194,udp;--up,/tmp/x,udp"), cand(10, 1), cand(11), cand(11, -1), cand(12),
      cand(13, 0, "127.0.0.1,22,tcp-client"), // a legacy daemon's peers.db may hold it
    ];
    const plan = planRefresh(state(tunnels, {}, candidates, [p(7), p(8)]), params({ connectionCount: 10 }));
    assert.deepEqual(summary(plan), ["forget 9", "forget 13", "close client2 lan remove", "open client3 11", "open client4 12"]);
    assert.deepEqual(plan.skipped.map((s) => [parseInt(s.prefix, 2), s.reason]), [
      [5, "own"], [7, "lan"], [8, "lan"], [9, "malformed"], [13, "malformed"], [10, "in-use"], [11, "duplicate"],
    ]);
    // The dead tunnel's peer is not reopened in the same refresh even if listed.
    const dead = planRefresh(state([tunnel(3, "client1", { state: "dead" })], {}, [cand(3, -1)]), params());
    assert.deepEqual(summary(dead), ["close client1 dead -1"]);
    assert.deepEqual(dead.skipped, [{ prefix: p(3), reason: "in-use" }]);
  });

  test("a revoked peer: its tunnel closes and its row goes, even a dead or retiring one; never opened again", () => {
    const tunnels = [tunnel(1, "client1"), tunnel(7, "client2"), tunnel(8, "client3", { state: "dead" }), tunnel(9, "client4", { state: "retiring" })];
    const plan = planRefresh({ ...state(tunnels, {}, [cand(7), cand(20), cand(21)]), revoked: [p(7), p(8), p(9), p(20)] }, params({ connectionCount: 6, refreshRate: 0 }));
    assert.deepEqual(summary(plan), [
      "close client3 dead remove", "close client2 revoked remove", "close client4 revoked remove", "open client3 21",
    ]);
    assert.deepEqual(plan.skipped.map((s) => [parseInt(s.prefix, 2), s.reason]), [[7, "revoked"], [20, "revoked"]]);
    execute(tunnels, plan, 1);
  });

  test("at the 12-interface cap a weak tunnel closes just before its replacement takes its interface", () => {
    const tunnels = CLIENT_INTERFACES.map((iface, i) => tunnel(i + 1, iface));
    const routes = Object.fromEntries(CLIENT_INTERFACES.map((iface, i) => [iface, 20 - i]));
    const plan = planRefresh(state(tunnels, routes), params({ connectionCount: 40, refreshRate: 0.05 }));
    assert.equal(plan.wanted, 12);
    assert.deepEqual(summary(plan), ["close client12 weak 0", "open client12 100"]);
    // 11 wanted + 2 to replace = 13 > 12: one opens beside, one at the cost of a close.
    const eleven = tunnels.slice(0, 11);
    const two = planRefresh(state(eleven, routes), params({ connectionCount: 22, refreshRate: 0.15 }));
    assert.deepEqual(summary(two), ["open client12 100", "close client11 weak 0", "open client11 101", "retire client10 10"]);
    execute(eleven, two, 1);
  });

  test("replacement before close over successive refreshes; at most 12, one tunnel per peer", () => {
    const rng = seeded(42);
    let tunnels: Tunnel[] = [];
    const pool = cands(100, 40);
    const seen: number[] = [];
    for (let tick = 0; tick < 12; tick++) {
      const used = new Set(tunnels.map((t) => t.prefix));
      const routes = Object.fromEntries(tunnels.map((t) => [t.iface, Math.floor(rng() * 5)]));
      if (tick === 6) tunnels[0] = { ...tunnels[0]!, state: "dead" };
      const plan = planRefresh(state(tunnels, routes, pool.filter((c) => !used.has(c.prefix))), params({ connectionCount: 20, refreshRate: 0.2, rng }));
      const kinds = plan.steps.map((s) => (s.kind === "close" ? s.reason : s.kind));
      // Contract order: dead, lan, retired, excess closes; opens (weak closes only at the cap); retires.
      const order = ["dead", "lan", "retired", "excess", "open", "retire"];
      const ranks = kinds.map((k) => order.indexOf(k === "weak" ? "open" : k));
      assert.deepEqual(ranks, [...ranks].sort((a, b) => a - b), `tick ${tick}: ${kinds.join(",")}`);
      assert.ok(!kinds.includes("weak"), "10 wanted + 2 replaced fit in 12 interfaces: no tunnel cut");
      const retiredBefore = tunnels.filter((t) => t.state === "retiring").map((t) => t.iface);
      assert.deepEqual(plan.steps.filter((s): s is Extract<RefreshStep, { kind: "close" }> => s.kind === "close" && s.reason === "retired").map((s) => s.iface), retiredBefore);
      tunnels = execute(tunnels, plan, tick + 1);
      const working = tunnels.filter((t) => t.state !== "retiring").length;
      assert.equal(working, 10, `tick ${tick}: the wanted count works`);
      // ceil(0.2 * 10) = 2 replaced per refresh; at tick 6 the dead tunnel's refill is one of them.
      if (tick > 0) assert.equal(tunnels.length - working, tick === 6 ? 1 : 2, "weak tunnels retiring beside their replacements");
      seen.push(tunnels.length);
    }
    assert.ok(Math.max(...seen) <= 12);
  });

  test("new tunnels prefer untouched interfaces over ones closed in the same plan", () => {
    const tunnels = [tunnel(1, "client1", { state: "draining" }), tunnel(2, "client2"), tunnel(3, "client3")];
    const plan = planRefresh(state(tunnels, { client2: 1, client3: 1 }), params({ connectionCount: 6, refreshRate: 0.5 }));
    assert.deepEqual(summary(plan), ["close client1 retired 0", "open client4 100", "open client5 101", "retire client2 2"]);
    const capped = planRefresh(state(tunnels, {}), params({ connectionCount: 6, refreshRate: 0.01, maxTunnels: 3 }));
    assert.deepEqual(summary(capped), ["close client1 retired 0", "open client1 100"], "no other free interface: the closed one, after its close");
  });

  test("more tunnels than wanted: the weakest go, protected last", () => {
    const tunnels = [1, 2, 3, 4, 5].map((n) => tunnel(n, `client${n}`, { traffic: n * 100 }));
    const routes = { client1: 9, client2: 0, client3: 5, client4: 1, client5: 0 };
    const plan = planRefresh(state(tunnels, routes, []), params({ connectionCount: 2, refreshRate: 0 }));
    assert.deepEqual(summary(plan), ["close client2 excess 0", "close client4 excess 0", "close client3 excess 0", "close client1 excess 0"]);
  });

  test("shutdown closes every tunnel, peers back to free (dead ones -1)", () => {
    const steps = planShutdown([tunnel(1, "client1"), tunnel(2, "client2", { state: "dead" })]);
    assert.deepEqual(steps, [
      { kind: "close", prefix: p(1), iface: "client1", reason: "shutdown", mark: 0 },
      { kind: "close", prefix: p(2), iface: "client2", reason: "dead", mark: -1 },
    ]);
  });
});
