// A client tunnel lands only on the node it was meant for (issue 9 item 3):
// every tunnel passes --verify-x509-name <peer's CN> name.
//
//        hub: registry (stopped before the daemons start)
//        /              |                 \
//   node 0  ---- "node 1" at 198.51.100.13 ---->  node 2
//           ---- node 2 at 198.51.100.13 ------>
//                   node 1: enrolled, not running
//
// Node 0's peers.db lists node 1 at node 2's address (as a forged declare or
// a stale entry would) and node 2 at its own. Node 2, a member of the network
// with a valid certificate, answers both; node 0 must accept only the second.
// The registry is down so that no refresh corrects the list. What each
// tunnel negotiated is read from OpenVPN's own logs (lib/ovpn-log.ts).
// Needs root; skipped otherwise.

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { PeersDb } from "../lib/db";
import { tunnelNegotiation } from "../lib/ovpn-log";
import { prefixToCn } from "../lib/utils/address";
import { OVERLAY_PACKAGES, installPackages, waitFor } from "../harness/netns";
import { Overlay } from "../harness/overlay";

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : "needs root: network namespaces and tap devices";
const HELLO = 2;

describe("peer verification: a tunnel cannot land on another node", { skip, timeout: 150_000 }, () => {
  let net: Overlay | undefined;
  before(() => {
    installPackages(OVERLAY_PACKAGES);
  });
  after(async () => net?.destroy());

  test("an address list pointing at another node gets no tunnel; the true one does", { timeout: 140_000 }, async (t) => {
    net = await Overlay.create({ nodes: 3, hello: HELLO, connectionCount: 4, start: false });
    const [n0, n1, n2] = net.nodes as [(typeof net.nodes)[0], (typeof net.nodes)[0], (typeof net.nodes)[0]];
    assert.equal(await net.stopRegistry(), 0);
    const db = PeersDb.open(join(n0.dir, "peers.db"));
    db.addPeer(net.prefix(n1.index), `${n2.ip},1194,udp`);
    db.addPeer(net.prefix(n2.index), `${n2.ip},1194,udp`);
    db.close();
    net.startDaemon(n0.index);
    net.startDaemon(n2.index);

    const logOf = (peer: number): string => {
      const path = join(n0.log, `vifibnet.client.${net!.prefix(peer)}.log`);
      return existsSync(path) ? readFileSync(path, "utf8") : "";
    };
    const reached = await waitFor(async () => {
      net!.checkDaemons();
      return net!.ping(0, 2);
    }, 60_000, 500);
    assert.ok(reached, `node 0 reaches node 2 over the true entry:\n${net.diagnostics()}`);
    assert.equal(tunnelNegotiation(logOf(n2.index))?.peer, prefixToCn(net.prefix(n2.index)));

    // The forged entry's OpenVPN reached node 2 and refused it, over and over, never getting a tunnel.
    const refused = await waitFor(() => /VERIFY X509NAME ERROR/.test(logOf(n1.index)), 20_000, 500);
    const forged = tunnelNegotiation(logOf(n1.index));
    t.diagnostic(`verify peer: the tunnel meant for node 1 ${forged ? `landed on ${forged.peer}` : "got no tunnel"}`);
    assert.equal(forged, null, `the tunnel meant for node 1 completed a handshake with ${forged?.peer}`);
    assert.ok(refused, `node 0's OpenVPN refused node 2's certificate for node 1:\n${logOf(n1.index).slice(-2000)}`);
    const up = await net.clientsUp(0);
    assert.equal(up.length, 1, `one client tunnel up, not two: ${up.join(" ")}`);
  });
});
