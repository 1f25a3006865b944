// Tunnels over an IPv6 underlay (issue 9 item 8): servers listen dual-stack
// (udp6: one socket for IPv6 and IPv4 clients) and the client-connect hook
// takes IPv6 clients (OpenVPN sets trusted_ip6, not trusted_ip).
//
//   IPv6 only:                         mixed:
//        hub 2001:db8:ffff::1               hub 198.51.100.1, 2001:db8:ffff::1
//        /              \                /              |              \
//   node 0 ::11      node 1 ::12    node 0 ::11    node 1 .12     node 2 .13 and ::13
//   (no IPv4 anywhere on the nodes) (IPv6 only)    (IPv4 only)    (both)
//
// The registry runs in the hub on both families. Each node advertises what
// its link has (--ip per address). In the mixed network nodes 0 and 1 share
// no family: they reach each other through node 2, whose one server takes
// node 0 over IPv6 and node 1 over IPv4. Which clients a server
// authenticated is read from its OpenVPN log (lib/ovpn-log.ts). Needs root;
// skipped otherwise.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { serverNegotiations } from "../lib/ovpn-log";
import { prefixToCn } from "../lib/utils/address";
import { OVERLAY_PACKAGES, installPackages } from "../harness/netns";
import { Overlay } from "../harness/overlay";

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : "needs root: network namespaces and tap devices";
const HELLO = 2;

describe("IPv6 underlay", { skip, timeout: 300_000 }, () => {
  const nets: Overlay[] = [];
  const create = async (...args: Parameters<typeof Overlay.create>): Promise<Overlay> => {
    const net = await Overlay.create(...args);
    nets.push(net);
    return net;
  };
  before(() => {
    installPackages(OVERLAY_PACKAGES);
  });
  after(async () => {
    for (const net of nets) await net.destroy();
  });

  /** Common names of the clients node i's server authenticated. */
  const clientsOf = (o: Overlay, i: number): string[] =>
    [...serverNegotiations(readFileSync(join(o.nodes[i]!.log, "vifibnet.server.udp.log"), "utf8")).keys()].sort();

  test("two nodes with IPv6 only between them tunnel and route", { timeout: 140_000 }, async (t) => {
    const net = await create({ nodes: 2, hello: HELLO, connectionCount: 2, underlay: ["ipv6", "ipv6"] });
    for (const n of net.nodes) assert.equal(net.lab.exec(n.ns, ["ip", "-4", "addr", "show", "dev", "eth0"]).stdout.trim(), "", "no IPv4 on the underlay");
    const took = await net.waitAllPairs(60_000);
    t.diagnostic(`ipv6: both nodes ping each other ${(took / 1000).toFixed(1)} s after start`);
    const cn = (i: number): string => prefixToCn(net.prefix(i));
    const accepted = [...clientsOf(net, 0), ...clientsOf(net, 1)];
    assert.ok(accepted.includes(cn(0)) || accepted.includes(cn(1)), `a server authenticated an IPv6 client: ${accepted.join(" ")}`);
    await net.destroy(); // before the next network: the machine is shared
  });

  test("mixed: an IPv6-only and an IPv4-only node reach each other through a dual-stack one", { timeout: 150_000 }, async (t) => {
    const net = await create({ nodes: 3, hello: HELLO, connectionCount: 4, underlay: ["ipv6", "ipv4", "dual"] });
    const took = await net.waitAllPairs(90_000);
    t.diagnostic(`ipv6 mixed: all pairs ping ${(took / 1000).toFixed(1)} s after start`);
    const direct = await net.directPairs();
    t.diagnostic(`ipv6 mixed: direct pairs ${[...direct].sort().join(" ")}`);
    assert.ok(!direct.has("0-1"), "nodes 0 and 1 share no address family");
    const cn = (i: number): string => prefixToCn(net.prefix(i));
    assert.deepEqual(clientsOf(net, 2), [cn(0), cn(1)].sort(), "node 2's server took node 0 over IPv6 and node 1 over IPv4");
  });
});
