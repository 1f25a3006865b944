// Failover in a real vifibnet network (harness/overlay.ts, 5 nodes,
// --hello 2): (b) an OpenVPN client tunnel process is SIGKILLed inside a node:
// the daemon replaces the tunnel and all pairs ping again; (a) a node's
// underlay link is cut: the others reconverge among themselves. The times are
// printed in hello intervals. Needs root; skipped otherwise.

import assert from "node:assert/strict";
import { waitFor } from "../harness/netns";
import { CONNECTED, Overlay } from "../harness/overlay";
import { inHellos, scenario, sleep } from "../harness/scenario";

const HELLO = 2;
const NODES = 5;
const seconds = (ms: number): string => inHellos(ms, HELLO);

/** Node i's connected client tunnels: interface and OpenVPN pid, from its status. */
async function connected(net: Overlay, i: number): Promise<Array<{ iface: string; pid: number }>> {
  return (await net.status(i)).tunnels.filter((x) => CONNECTED.has(x.state) && x.pid !== null).map((x) => ({ iface: x.interface, pid: x.pid! }));
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

scenario("failover: the network reconverges after a killed tunnel and a cut underlay link",
  { nodes: NODES, hello: HELLO, connectionCount: 4, tunnelRefresh: 5, peersDbRefresh: 5, timeoutMs: 150_000 }, async (net, t) => {
    const took = await net.waitAllPairs(60_000);
    t.diagnostic(`failover: all pairs ping ${seconds(took)} after start`);
    const all = net.nodes.map((n) => n.index);

    // (b) SIGKILL one OpenVPN client tunnel process of node 0.
    let victims: Array<{ iface: string; pid: number }> = [];
    assert.ok(await waitFor(async () => (victims = await connected(net, 0)).length > 0, 20_000, 250), "node 0 has a client tunnel up");
    const victim = victims[0]!;
    const wanted = victims.length;
    const t1 = Date.now();
    process.kill(victim.pid, "SIGKILL");
    assert.ok(await waitFor(() => !alive(victim.pid), 5_000, 50), "the killed openvpn is gone");
    await net.waitAllPairs(60_000, all, 250);
    const pingAgain = Date.now() - t1;
    // The daemon replaces the tunnel: as many client tunnels up as before, by new processes.
    let replaced = 0;
    assert.ok(await waitFor(async () => {
      const live = await connected(net, 0);
      replaced = Date.now() - t1;
      return live.length >= wanted && live.every((c) => c.pid !== victim.pid);
    }, 45_000, 250), `node 0 did not get ${wanted} client tunnels back:\n${net.nodes[0]!.daemon!.err().slice(-3000)}`);
    assert.ok((await net.status(0)).refresh.closed.dead >= 1, "the killed tunnel was closed as dead");
    await net.waitAllPairs(30_000, all, 250);
    t.diagnostic(`failover (b): killed openvpn on ${victim.iface} of node 0; all pairs ping ${seconds(pingAgain)} later; ` +
      `tunnel replaced (${wanted} client tunnels up again) after ${seconds(replaced)}`);

    // (a) Cut node 4's underlay link; nodes 0..3 reconverge among themselves.
    const cut = NODES - 1;
    const others = all.filter((i) => i !== cut);
    const t2 = Date.now();
    net.cutUnderlay(cut);
    // Past the --ping-exit (4 hellos) of the tunnels to node 4, its routes
    // expired and a tunnel refresh done: the others must still (or again) all ping.
    await net.waitAllPairs(60_000, others, 250);
    const first = Date.now() - t2;
    await sleep(4 * HELLO * 1000 + 6_000);
    await net.waitAllPairs(60_000, others, 250);
    const settled = Date.now() - t2;
    assert.ok(!(await net.ping(0, cut)), "node 4 is unreachable");
    t.diagnostic(`failover (a): node ${cut} cut off; all ${others.length * (others.length - 1) / 2} pairs among the others ping ${seconds(first)} later, ` +
      `and again past --ping-exit and a tunnel refresh, ${seconds(settled)} after the cut`);
  });
