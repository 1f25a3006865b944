// Tunnels with the 2012 nodes, whose OpenVPN 2.2/2.3 speaks TLS 1.0 only and
// the BF-CBC data cipher (issue 14), in both directions; two of our nodes
// between themselves keep TLS 1.3 and an AEAD cipher; --no-legacy, or a
// strict profile passed to OpenVPN, shuts the old node out. Then a legacy
// node on Debian 12's OpenVPN 2.6 (the same command lines, unrestricted):
// TLS 1.3 and AES-256-GCM both ways, as before the allowances.
//
//        hub: registry, bridge 198.51.100.0/24
//        /              |                  \
//   node 0 (ours)    node 1 (ours)     node 2: the "2012 node"
//     server  <------------------------  old client
//     <------------ new <-> new ----->
//                     client -------->  old server
//
// Node 2 is enrolled like the others but runs no daemon: the test starts its
// OpenVPN server and one client to node 0 with the 2012 command lines (SPEC
// section 6, no allowance of ours) and babeld, and node 1 has node 2 in its
// peers.db. This machine has OpenVPN 2.6 only, so the old node's is 2.6
// restricted to what 2.2 speaks: --tls-version-max 1.0, --data-ciphers and
// --cipher BF-CBC, --auth SHA1, the legacy provider, and (its server)
// DHE-only TLS suites as 2.3's. Against real 2.2.2 and 2.3.2 built from
// their tags, our side needed the same options as against this emulation.
// What the emulation does not reproduce: a 2.6 peer still sends IV_CIPHERS,
// IV_PROTO and its other peer-info, derives keys with 2.6's methods (TLS-EKM
// when both ends offer it; not here at TLS 1.0), frames packets as 2.6 and
// announces 2.6's MTU and options strings (the real 2.2 warns once that
// 'tun-mtu' is used inconsistently, 1532 against our 1500: harmless), and
// needs --tls-cert-profile insecure for TLS 1.0 under OpenSSL 3, an option 2.2
// does not have. UDP only here; TCP behaved the same with the real binaries.
// What each tunnel negotiated is read from OpenVPN's own logs
// (lib/ovpn-log.ts: the overlay runs -v 3), and from `vifibnet status`,
// which must say the same. Needs root; skipped otherwise.

import assert from "node:assert/strict";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { PeersDb } from "../lib/db";
import { Negotiation, serverNegotiations, tunnelNegotiation } from "../lib/ovpn-log";
import type { Status } from "../lib/daemon/status";
import { babeldArgv } from "../lib/plib";
import { prefixToCn } from "../lib/utils/address";
import { caNetwork } from "../lib/utils/x509";
import { OVERLAY_PACKAGES, installPackages, waitFor } from "../harness/netns";
import { Overlay, OverlayNode } from "../harness/overlay";
import { BIN } from "../harness/paths";

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : "needs root: network namespaces and tap devices";
const HELLO = 2;

/** OpenVPN 2.6 restricted to what the 2012 nodes' OpenVPN 2.2 speaks. */
const SPEAKS_2_2 = [
  "--tls-version-max", "1.0", "--data-ciphers", "BF-CBC", "--cipher", "BF-CBC", "--auth", "SHA1", "--providers", "legacy", "default",
  "--tls-cert-profile", "insecure", // OpenSSL 3 speaks TLS 1.0 at security level 0 only
];
/** An OpenVPN 2.3 server does DHE only. */
const SERVES_AS_2_3 = ["--tls-cipher", "DHE-RSA-AES256-SHA"];

/**
 * Starts a legacy node's OpenVPN server, its client to `to`, and its babeld,
 * in `old`'s namespace: the legacy command lines, with OpenVPN restricted to
 * 2.2's (a 2012 node) or not (a legacy node on Debian 12's OpenVPN 2.6).
 */
function startOldNode(net: Overlay, old: OverlayNode, to: OverlayNode, as2012: boolean): void {
  const common = [
    "--dev-type", "tap", "--persist-tun", "--persist-key", "--script-security", "2", "--user", "nobody", "--group", "nogroup",
    "--ping-exit", String(4 * HELLO), "--verb", "3", ...(as2012 ? SPEAKS_2_2 : []),
    "--ca", join(old.dir, "ca.pem"), "--cert", join(old.dir, "cert.crt"), "--key", join(old.dir, "cert.key"),
  ];
  const network = caNetwork(readFileSync(join(old.dir, "ca.pem"), "utf8"));
  const run = (name: string, file: string, argv: string[]): void => {
    const log = openSync(join(old.log, name), "a");
    // The hooks write their events on fd 3, as for our daemon.
    const p = net.lab.spawn(old.ns, [file, ...argv], { stdio: ["ignore", log, log, "pipe"] });
    closeSync(log);
    p.stdio[3]?.on("data", () => {});
  };
  run("old.server.log", "openvpn", [
    ...common, ...(as2012 ? SERVES_AS_2_3 : []), "--tls-server", "--mode", "server", "--dev", "vifibnet", "--dh", join(old.dir, "dh2048.pem"),
    "--max-clients", "4", "--port", "1194", "--proto", "udp",
    "--up", `${BIN("ovpn-server")} 3 ${old.address}/${network.length + net.prefix(old.index).length}`,
    "--client-connect", `${BIN("ovpn-server")} 3`, "--client-disconnect", `${BIN("ovpn-server")} 3`,
  ]);
  run("old.client.log", "openvpn", [
    ...common, "--nobind", "--client", "--dev", "client1", "--up", BIN("ovpn-client"), "--route-up", `${BIN("ovpn-client")} 3`,
    "--remote", to.ip, "1194", "udp",
  ]);
  run("old.babeld.log", "babeld", babeldArgv({
    network, address: old.address, interfaces: ["vifibnet", "client1"], wireless: false, hello: HELLO, verbose: 0,
    stateFile: join(old.dir, "babeld.state"), pidFile: join(old.dir, "babeld.pid"), controlSocket: null,
  }));
}

const read = (path: string): string => (existsSync(path) ? readFileSync(path, "utf8") : "");
const show = (n: Negotiation | null | undefined): string => (n ? `${n.tlsVersion} ${n.tlsCipher}, data ${n.dataCipher}${n.dataAuth ? `/${n.dataAuth}` : ""}` : "none");

describe("legacy OpenVPN, both ways", { skip, timeout: 400_000 }, () => {
  /** One network per test, each destroyed at its end (the machine is shared), all of them after. */
  const nets: Overlay[] = [];
  before(() => {
    installPackages(OVERLAY_PACKAGES);
  });
  after(async () => {
    for (const net of nets) await net.destroy();
  });

  test("2012 node: old client to our server, our client to the old server (TLS 1.0, BF-CBC), ours between themselves on TLS 1.3; then --no-legacy", { timeout: 230_000 }, async (t) => {
    const net = await Overlay.create({ nodes: 3, hello: HELLO, connectionCount: 4, start: false });
    nets.push(net);
    const [ours0, ours1, old] = net.nodes as [OverlayNode, OverlayNode, OverlayNode];
    const cn = (n: OverlayNode): string => prefixToCn(net.prefix(n.index));
    const clientLog = (n: OverlayNode, peer: OverlayNode): string => join(n.log, `vifibnet.client.${net.prefix(peer.index)}.log`);
    const serverLog = (n: OverlayNode): string => join(n.log, "vifibnet.server.udp.log");

    // Node 1 knows the old node (which never declares itself here).
    const db = PeersDb.open(join(ours1.dir, "peers.db"));
    db.addPeer(net.prefix(old.index), `${old.ip},1194,udp`);
    db.close();
    startOldNode(net, old, ours0, true);
    net.startDaemon(ours0.index);
    net.startDaemon(ours1.index);

    const took = await net.waitAllPairs(90_000);
    t.diagnostic(`legacy openvpn: all pairs ping ${(took / 1000).toFixed(1)} s after start, the old node among them`);
    const direct = await net.directPairs();
    assert.ok(direct.has("1-2"), `node 1's tunnel to the old node is up: ${[...direct].join(" ")}`);

    // Old client -> our server, and our client -> old server: TLS 1.0, BF-CBC.
    const atServer = serverNegotiations(read(serverLog(ours0))).get(cn(old));
    const atClient = tunnelNegotiation(read(clientLog(ours1, old)));
    t.diagnostic(`legacy openvpn: old client at node 0's server: ${show(atServer)}; node 1 to the old server: ${show(atClient)}`);
    assert.equal(atServer?.tlsVersion, "TLSv1");
    assert.equal(atServer?.dataCipher, "BF-CBC");
    assert.equal(atClient?.tlsVersion, "TLSv1");
    assert.equal(atClient?.dataCipher, "BF-CBC");
    assert.equal(atClient?.peer, cn(old), "node 1 verified it reached the old node");
    assert.match(atClient!.tlsCipher, /^DHE-/, "the old server's DHE");
    // And `vifibnet status` says so, per server peer and per client tunnel.
    const peerAt0 = (await net.status(ours0.index)).servers.flatMap((v) => v.peers).find((p) => p.commonName === cn(old));
    const tunnelOf1 = (await net.status(ours1.index)).tunnels.find((x) => x.prefix === net.prefix(old.index));
    t.diagnostic(`legacy openvpn: status of node 0's server peer ${cn(old)}: ${JSON.stringify(peerAt0)}; node 1's tunnel: ${JSON.stringify(tunnelOf1)}`);
    for (const v of [peerAt0, tunnelOf1]) {
      assert.equal(v?.tlsVersion, "TLSv1");
      assert.equal(v?.dataCipher, "BF-CBC");
      assert.equal(v?.legacy, true);
    }
    assert.match(tunnelOf1!.tlsCipher!, /^DHE-/);

    // Between our nodes, with the same allowances on both ends: TLS 1.3 and an AEAD cipher.
    const newNew = [tunnelNegotiation(read(clientLog(ours0, ours1))), tunnelNegotiation(read(clientLog(ours1, ours0)))].filter((n) => n !== null);
    t.diagnostic(`legacy openvpn: node 0 <-> node 1: ${newNew.map(show).join("; ")}`);
    assert.ok(newNew.length >= 1, "a tunnel joins nodes 0 and 1");
    for (const n of newNew) {
      assert.equal(n!.tlsVersion, "TLSv1.3");
      assert.equal(n!.dataCipher, "AES-256-GCM");
    }
    // In status, the tunnels between them past opening: one the refresh just opened may not have its data cipher yet.
    const newNewStatus = async () => (await net.status(ours0.index)).tunnels.filter((x) => x.prefix === net.prefix(ours1.index))
      .concat((await net.status(ours1.index)).tunnels.filter((x) => x.prefix === net.prefix(ours0.index)))
      .filter((x) => x.state !== "opening");
    let upNewNew: Status["tunnels"] = [];
    await waitFor(async () => (upNewNew = await newNewStatus()).length >= 1 && upNewNew.every((x) => x.dataCipher !== null), 10_000, 250);
    assert.ok(upNewNew.length >= 1, "a tunnel between nodes 0 and 1 is past opening");
    for (const x of upNewNew) assert.deepEqual([x.tlsVersion, x.dataCipher, x.legacy], ["TLSv1.3", "AES-256-GCM", false]);

    // Strict: node 0 with --no-legacy, node 1 with a strict profile passed to OpenVPN.
    assert.equal(await net.stopDaemon(ours0.index), 0);
    assert.equal(await net.stopDaemon(ours1.index), 0);
    const since0 = read(serverLog(ours0)).length;
    const since1 = read(clientLog(ours1, old)).length;
    const d0 = net.startDaemon(ours0.index, ["--no-legacy"]);
    const d1 = net.startDaemon(ours1.index, [], ["--tls-cert-profile", "preferred"]);
    const pinged = await waitFor(async () => (await net.ping(0, 1)) && (await net.ping(1, 0)), 60_000, 500);
    assert.ok(pinged, `nodes 0 and 1 ping each other when strict:\n${net.diagnostics()}`);
    // The old node's client retries every few seconds, node 1's tunnel to it too: give them 6 hellos.
    await new Promise((r) => setTimeout(r, 6 * HELLO * 1000));
    net.checkDaemons();
    assert.equal(await net.ping(2, 0), false, "the old node no longer reaches node 0");
    assert.equal(await net.ping(2, 1), false, "nor node 1");
    assert.equal(serverNegotiations(read(serverLog(ours0)).slice(since0)).get(cn(old)), undefined, "no handshake with the old node at node 0's server");
    assert.equal(tunnelNegotiation(read(clientLog(ours1, old)).slice(since1)), null, "no handshake from node 1 with the old server");
    assert.match(d0.err(), /--no-legacy: no tunnel with .*SHA-1.*OpenVPN 2\.2\/2\.3/, "node 0 says what --no-legacy costs");
    assert.match(d1.err(), /WARNING: OpenVPN argument --tls-cert-profile preferred: no tunnel with/, "node 1 warns what its OpenVPN argument costs");
    const strictNew = [tunnelNegotiation(read(clientLog(ours0, ours1))), tunnelNegotiation(read(clientLog(ours1, ours0)))].filter((n) => n !== null);
    for (const n of strictNew) assert.equal(n!.tlsVersion, "TLSv1.3");
    await net.destroy();
  });

  test("legacy node on Debian 12's OpenVPN 2.6, the legacy command lines: TLS 1.3 and AES-256-GCM, whichever end dials", { timeout: 140_000 }, async (t) => {
    const net = await Overlay.create({ nodes: 2, hello: HELLO, connectionCount: 4, start: false });
    nets.push(net);
    const [ours, old] = net.nodes as [OverlayNode, OverlayNode];
    const db = PeersDb.open(join(ours.dir, "peers.db"));
    db.addPeer(net.prefix(old.index), `${old.ip},1194,udp`);
    db.close();
    startOldNode(net, old, ours, false);
    net.startDaemon(ours.index);
    await net.waitAllPairs(60_000);
    const cn = prefixToCn(net.prefix(old.index));
    const atServer = serverNegotiations(read(join(ours.log, "vifibnet.server.udp.log"))).get(cn);
    const atClient = tunnelNegotiation(read(join(ours.log, `vifibnet.client.${net.prefix(old.index)}.log`)));
    t.diagnostic(`legacy openvpn 2.6: legacy client at our server: ${show(atServer)}; our client to the legacy server: ${show(atClient)}`);
    for (const n of [atServer, atClient]) {
      assert.equal(n?.tlsVersion, "TLSv1.3");
      assert.equal(n?.dataCipher, "AES-256-GCM");
    }
    assert.equal(atClient?.peer, cn);
  });
});
