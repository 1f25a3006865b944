// Failover in a real vifibnet network (test/helpers/overlay.ts, 5 nodes,
// --hello 2): (b) an OpenVPN client tunnel process is SIGKILLed inside a node:
// the daemon replaces the tunnel and all pairs ping again; (a) a node's
// underlay link is cut: the others reconverge among themselves. The times are
// printed in hello intervals. Needs root; skipped otherwise.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { OVERLAY_PACKAGES, installPackages, waitFor } from "./helpers/netns";
import { Overlay } from "./helpers/overlay";

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : "needs root: network namespaces and tap devices";
const HELLO = 2;
const NODES = 5;

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s = ${(ms / 1000 / HELLO).toFixed(1)} hello intervals`;

/** Pairs among `among` whose ping fails now. */
async function failing(net: Overlay, among: number[]): Promise<string[]> {
  const pairs: Array<[number, number]> = [];
  for (const i of among) for (const j of among) if (i < j) pairs.push([i, j]);
  const ok = await Promise.all(pairs.map(([i, j]) => net.ping(i, j)));
  return pairs.filter((_, k) => !ok[k]).map((p) => p.join("-"));
}

/** Waits (bounded) until every pair among `among` pings in the same round; ms from `t0`. */
async function reconverge(net: Overlay, among: number[], t0: number, timeoutMs: number): Promise<number> {
  let left: string[] = [];
  const ok = await waitFor(async () => {
    net.checkDaemons();
    left = await failing(net, among);
    return left.length === 0;
  }, timeoutMs, 250);
  assert.ok(ok, `pairs still failing after ${timeoutMs} ms: ${left.join(" ")}\n${net.diagnostics()}`);
  return Date.now() - t0;
}

/** OpenVPN client processes of node i: pid and tunnel interface. */
function openvpnClients(net: Overlay, i: number): Array<{ pid: number; dev: string }> {
  const out: Array<{ pid: number; dev: string }> = [];
  for (const p of net.processes(i)) {
    if (p.comm !== "openvpn") continue;
    let argv: string[] = [];
    try {
      argv = readFileSync(`/proc/${p.pid}/cmdline`, "utf8").split("\0");
    } catch {
      continue;
    }
    const k = argv.indexOf("--dev");
    if (argv.includes("--client") && k >= 0 && /^client\d+$/.test(argv[k + 1] ?? "")) out.push({ pid: p.pid, dev: argv[k + 1]! });
  }
  return out;
}

describe("failover: a killed tunnel and a cut underlay link", { skip, timeout: 150_000 }, () => {
  let net: Overlay | undefined;
  before(() => {
    installPackages(OVERLAY_PACKAGES);
  });
  after(async () => net?.destroy());

  test("the network reconverges after each failure", { timeout: 140_000 }, async (t) => {
    net = await Overlay.create({ nodes: NODES, hello: HELLO, connectionCount: 4, tunnelRefresh: 5, peersDbRefresh: 5 });
    const took = await net.waitAllPairs(60_000);
    t.diagnostic(`failover: all pairs ping ${seconds(took)} after start`);
    const all = net.nodes.map((n) => n.index);

    // (b) SIGKILL one OpenVPN client tunnel process of node 0.
    let victims: Array<{ pid: number; dev: string }> = [];
    assert.ok(await waitFor(async () => {
      const up = new Set(await net!.clientsUp(0));
      victims = openvpnClients(net!, 0).filter((c) => up.has(c.dev));
      return victims.length > 0;
    }, 20_000, 250), "node 0 has a client tunnel up");
    const victim = victims[0]!;
    const wanted = victims.length;
    const t1 = Date.now();
    process.kill(victim.pid, "SIGKILL");
    assert.ok(await waitFor(() => !openvpnClients(net!, 0).some((c) => c.pid === victim.pid), 5_000, 50), "the killed openvpn is gone");
    const pingAgain = await reconverge(net, all, t1, 60_000);
    // The daemon replaces the tunnel: as many client tunnels up as before, by a new process.
    let replaced = 0;
    assert.ok(await waitFor(async () => {
      const up = new Set(await net!.clientsUp(0));
      const live = openvpnClients(net!, 0).filter((c) => up.has(c.dev));
      replaced = Date.now() - t1;
      return live.length >= wanted && live.every((c) => c.pid !== victim.pid);
    }, 45_000, 250), `node 0 did not get ${wanted} client tunnels back:\n${net.nodes[0]!.daemon!.err().slice(-3000)}`);
    await reconverge(net, all, Date.now(), 30_000);
    t.diagnostic(`failover (b): killed openvpn on ${victim.dev} of node 0; all pairs ping ${seconds(pingAgain)} later; ` +
      `tunnel replaced (${wanted} client tunnels up again) after ${seconds(replaced)}`);

    // (a) Cut node 4's underlay link; nodes 0..3 reconverge among themselves.
    const cut = NODES - 1;
    const others = all.filter((i) => i !== cut);
    const t2 = Date.now();
    net.cutUnderlay(cut);
    // Past the --ping-exit (4 hellos) of the tunnels to node 4, its routes
    // expired and a tunnel refresh done: the others must still (or again) all ping.
    const first = await reconverge(net, others, t2, 60_000);
    await new Promise((r) => setTimeout(r, 4 * HELLO * 1000 + 6_000));
    const settled = await reconverge(net, others, t2, 60_000);
    assert.ok(!(await net.ping(0, cut)), "node 4 is unreachable");
    t.diagnostic(`failover (a): node ${cut} cut off; all ${others.length * (others.length - 1) / 2} pairs among the others ping ${seconds(first)} later, ` +
      `and again past --ping-exit and a tunnel refresh, ${seconds(settled)} after the cut`);
  });
});
