// A node behind a NAT in a real vifibnet network (harness/overlay.ts,
// behindNat): node 2 sits on a LAN behind a router namespace with nftables
// masquerade and Debian's miniupnpd, its daemon started without --ip. It maps
// 1194/udp on the gateway (external port from 1000), advertises the router's
// external address and mapped port (the others' peers.db has it, from the
// registry), and the others tunnel to it: all pairs ping; its status says
// where its address came from (UPnP). The router's
// outside address is 192.0.3.<11+i> (miniupnpd refuses documentation
// ranges), on the same "internet" bridge; nothing leaves the namespaces.
// Needs root; skipped otherwise.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { PeersDb } from "../lib/db";
import { NAT_PACKAGES, waitFor } from "../harness/netns";
import { NAT_LAN_IP } from "../harness/overlay";
import { inHellos, scenario } from "../harness/scenario";

const HELLO = 2;
const NATTED = 2;
const seconds = (ms: number): string => inHellos(ms, HELLO);

function peersDbAddresses(path: string): string[] {
  if (!existsSync(path)) return [];
  try {
    const db = PeersDb.open(path, { readonly: true });
    try {
      return db.peers().map((p) => p.address);
    } finally {
      db.close();
    }
  } catch {
    return [];
  }
}

scenario("NAT: a node behind a UPnP gateway, without --ip, maps its port, advertises the gateway's address, and the others tunnel to it",
  { nodes: 3, hello: HELLO, connectionCount: 4, tunnelRefresh: 5, peersDbRefresh: 5, behindNat: [NATTED], packages: NAT_PACKAGES, timeoutMs: 150_000 }, async (net, t) => {
    const n = net.nodes[NATTED]!;
    const router = n.nat!;
    const expected = `${router.ip},1000,udp`;

    // The mapping on the gateway: nftables DNAT and the UPnP listing.
    let rules: string[] = [];
    assert.ok(await waitFor(() => {
      rules = net.lab.exec(router.ns, ["nft", "list", "chain", "inet", "filter", "prerouting_miniupnpd"]).stdout.split("\n").filter((l) => l.includes("dnat"));
      return rules.some((l) => / 0x11 .*dport 1000 dnat ip to 192\.0\.2\.10:1194/.test(l));
    }, 30_000, 250), `no DNAT rule on the gateway: ${rules.join("\n")}\n${n.daemon!.err().slice(-3000)}\n--- miniupnpd:\n${router.upnpd.err()}`);
    const list = net.lab.exec(n.ns, ["upnpc", "-l"]).stdout;
    assert.match(list, new RegExp(`ExternalIPAddress = ${router.ip.replace(/\./g, "\\.")}`));
    assert.match(list, new RegExp(`UDP\\s+1000->${NAT_LAN_IP.replace(/\./g, "\\.")}:1194`));
    let advertised: unknown;
    assert.ok(await waitFor(async () => {
      const a = (await net.status(NATTED)).advertised;
      advertised = a;
      return a.addresses === expected && a.source === "upnp";
    }, 15_000, 100), `the daemon advertises the mapping: ${JSON.stringify(advertised)}`);

    // The registry hands the gateway's address to the others.
    let seen: string[] = [];
    assert.ok(await waitFor(() => {
      seen = [0, 1].map((i) => peersDbAddresses(join(net.nodes[i]!.dir, "peers.db")).join(" "));
      return seen.every((s) => s.split(/[ ;]/).includes(expected));
    }, 30_000, 500), `peers.db of the others lacks ${expected}: ${seen.join(" | ")}`);
    t.diagnostic(`nat: node ${NATTED} advertises ${expected}; peers.db of node 0: ${seen[0]}`);

    const took = await net.waitAllPairs(90_000);
    t.diagnostic(`nat: all pairs ping ${seconds(took)} after the mapping was seen`);
    const direct = await net.directPairs();
    t.diagnostic(`nat: direct pairs ${[...direct].sort().join(" ")}`);
    // Some other node has a client tunnel up to the NAT node, through the mapping.
    const inbound: string[] = [];
    for (const i of [0, 1])
      for (const x of (await net.status(i)).tunnels)
        if (x.prefix === net.prefix(NATTED) && x.state === "up" && x.remote === router.ip) inbound.push(`node ${i} on ${x.interface}`);
    t.diagnostic(`nat: client tunnels to node ${NATTED} through the gateway: ${inbound.join(", ") || "none"}`);
    assert.ok(inbound.length > 0, `no other node has a client tunnel to node ${NATTED} up:\n${net.diagnostics()}`);
    assert.deepEqual(await net.failingPairs(), []);
  });
