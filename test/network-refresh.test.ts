// A routine tunnel refresh in a real vifibnet network (harness/overlay.ts,
// 4 nodes, --hello 2, --refresh-rate 0.5): a retired tunnel's babel routes
// move off it before it closes. The daemon declares its interface costly to
// babeld (control socket in the state directory) and restarts the interface:
// its own babeld then rates the neighbour there at RETIRING_RXCOST or more,
// and the peer at the server end of the tunnel hears that cost in our IHUs
// (txcost); after the close the interface gets babel's defaults back for its
// next tunnel, and all pairs still ping. Needs root; skipped otherwise.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { RETIRING_RXCOST, babelRequest } from "../lib/babel-control";
import { waitFor } from "../harness/netns";
import { OverlayNode } from "../harness/overlay";
import { scenario } from "../harness/scenario";

const HELLO = 2;
/** babel's infinite metric: the neighbour is unreachable. */
const INFINITY = 0xffff;

interface Neighbour { address: string; iface: string; rxcost: number; txcost: number }

/** The neighbours node `n`'s babeld knows (its own `dump`, through its control socket). */
async function neighbours(n: OverlayNode): Promise<Neighbour[]> {
  const [dump] = await babelRequest(join(n.dir, "vifibnet.babeld.sock"), ["dump"]);
  return dump!.flatMap((l) => {
    const m = /^add neighbour \S+ address (\S+) if (\S+) .*rxcost (\d+) txcost (\d+)/.exec(l);
    return m ? [{ address: m[1]!, iface: m[2]!, rxcost: Number(m[3]), txcost: Number(m[4]) }] : [];
  });
}

/** Polls (bounded, every 0.5 s) until `pick` finds something in node n's neighbours; the last pick. */
async function neighbourWhere(n: OverlayNode, pick: (ns: Neighbour[]) => Neighbour | undefined, timeoutMs: number): Promise<Neighbour | undefined> {
  let found: Neighbour | undefined;
  await waitFor(async () => (found = pick(await neighbours(n))) !== undefined, timeoutMs, 500);
  return found;
}

function linkLocal(n: OverlayNode, iface: string): string | null {
  const out = spawnSync("ip", ["-n", n.ns, "-6", "-o", "addr", "show", "dev", iface, "scope", "link"], { encoding: "utf8" }).stdout;
  return /inet6 (fe80::[0-9a-f:]+)\//.exec(out)?.[1] ?? null;
}

scenario("routine refresh: routes move off a retired tunnel before it closes; costly on both ends while draining, defaults again after",
  { nodes: 4, hello: HELLO, connectionCount: 4, tunnelRefresh: 12, peersDbRefresh: 5, refreshRate: 0.5, timeoutMs: 240_000 }, async (net, t) => {
    await net.waitAllPairs(90_000);

    // The first tunnel a daemon reports draining (babel's routes moved off it).
    let node: OverlayNode | undefined;
    let draining: { interface: string; prefix: string } | undefined;
    let retiredBefore = 0; // retired tunnels that node had closed while this one was draining
    const sawDrain = await waitFor(async () => {
      net.checkDaemons();
      for (const n of net.nodes) {
        const st = await net.status(n.index);
        draining = st.tunnels.find((x) => x.state === "draining");
        retiredBefore = st.refresh.closed.retired;
        if (draining) {
          node = n;
          return true;
        }
      }
      return false;
    }, 90_000, 250);
    assert.ok(sawDrain && node && draining, `no daemon moved routes off a retiring tunnel\n${net.diagnostics()}`);
    const { interface: iface, prefix } = draining;
    t.diagnostic(`refresh: node ${node.index} drains its tunnel to ${prefix} on ${iface}`);

    // Our end: babeld rates the neighbour on that interface costly.
    // Finite: 65535 is babel's unreachable, as the flushed neighbour babeld may
    // still list until it expires; a link-quality cost from 4096 up is ours.
    const costly = (x: Neighbour): boolean => x.rxcost >= RETIRING_RXCOST && x.rxcost < INFINITY;
    const ours = await neighbourWhere(node, (ns) => ns.find((x) => x.iface === iface && costly(x)), 4 * HELLO * 1000);
    assert.ok(ours, `node ${node.index} rates its peer on ${iface} costly: ${JSON.stringify((await neighbours(node)).filter((x) => x.iface === iface))}`);

    // The server end: the peer hears that cost from our IHUs.
    const peer = net.nodes.find((n) => net.prefix(n.index) === prefix);
    assert.ok(peer, `the node with prefix ${prefix}`);
    const ll = linkLocal(node, iface);
    assert.ok(ll, `${iface}'s link-local address`);
    const theirs = await neighbourWhere(peer, (ns) => ns.find((x) => x.address === ll && x.txcost >= RETIRING_RXCOST && x.txcost < INFINITY), 4 * HELLO * 1000);
    assert.ok(theirs, `node ${peer.index} rates node ${node.index} costly: ${JSON.stringify((await neighbours(peer)).filter((x) => x.address === ll))}`);
    t.diagnostic(`refresh: node ${node.index} rxcost ${ours.rxcost} on ${iface}; node ${peer.index} txcost ${theirs.txcost} to it`);

    // The close: the tunnel leaves the status, counted as retired.
    const n = node;
    assert.ok(await waitFor(async () => !(await net.status(n.index)).tunnels.some((x) => x.interface === iface && x.prefix === prefix), 30_000, 250),
      `the tunnel to ${prefix} on ${iface} closes`);
    const { closed } = (await net.status(n.index)).refresh;
    assert.ok(closed.retired > retiredBefore, `counted as a retired tunnel closed: ${JSON.stringify(closed)}, ${retiredBefore} retired before`);
    // Its interface's next tunnel, once up (one to a full server may never be), gets babel's default cost (96, wired).
    const reopened = await waitFor(async () => (await net.status(n.index)).tunnels.some((x) => x.interface === iface && x.state === "up"), 60_000, 250);
    if (reopened) {
      const fresh = await neighbourWhere(n, (ns) => ns.find((x) => x.iface === iface && x.rxcost < RETIRING_RXCOST), 20_000);
      assert.ok(fresh, `${iface}'s next tunnel has babel's default cost: ${JSON.stringify((await neighbours(n)).filter((x) => x.iface === iface))}`);
      assert.equal(fresh.rxcost, 96);
    } else {
      t.diagnostic(`refresh: no tunnel up on ${iface} again within 60 s; the restore was not observed`);
    }
    net.checkDaemons();
    await net.waitAllPairs(30_000);
  });
