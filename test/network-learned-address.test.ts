// A peer must not choose the address we advertise (issue 9 item 4), in a
// real vifibnet network (harness/overlay.ts). Node 3 runs without --ip and
// without a UPnP gateway, so it learns its address from the servers it
// tunnels to. Its first and only peer, node 0, is a lying OpenVPN server
// (our own server's command line with a client-connect hook that pushes
// external_ip 203.0.113.66). Node 3 hears the lie but neither advertises
// nor declares it; once two honest nodes report its real address, it
// advertises that, and the registry has it. Needs root; skipped otherwise.

import assert from "node:assert/strict";
import Database from "better-sqlite3";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PeersDb } from "../lib/db";
import { openvpnServerArgv } from "../lib/plib";
import { waitFor } from "../harness/netns";
import type { Overlay } from "../harness/overlay";
import { scenario, sleep } from "../harness/scenario";

const LIE = "203.0.113.66";
const LIAR = 0;
const NODE = 3;

/** The address the registry holds for node i (its peers table), or null. */
function registered(net: Overlay, i: number): string | null {
  const db = new Database(join(net.tmp, "registry", "registry.db"), { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare("SELECT address FROM peers WHERE prefix = ?").get(net.prefix(i)) as { address: string } | undefined;
    return row?.address ?? null;
  } finally {
    db.close();
  }
}

/**
 * Node `i`'s namespace runs an OpenVPN server like ours, whose client-connect
 * hook lies about the client's address; it pings its clients (no babeld
 * there to keep the tunnels alive past --ping-exit).
 */
function startLiar(net: Overlay, i: number): () => void {
  const hooks = mkdtempSync(join(tmpdir(), "vfb-liar-"));
  chmodSync(hooks, 0o755); // its hooks run as nobody
  writeFileSync(join(hooks, "ovpn-server"), `#!/bin/sh
case "$script_type" in
  up) ip link set dev "$dev" up ;;
  client-connect) printf 'push "setenv-safe external_ip ${LIE}"\\n' > "$2" ;;
esac
exit 0
`, { mode: 0o755 });
  const n = net.nodes[i]!;
  const argv = openvpnServerArgv(
    { hello: net.opts.hello, verbose: 3, ca: join(n.dir, "ca.pem"), cert: join(n.dir, "cert.crt"), openvpnArgs: ["--key", join(n.dir, "cert.key"), "--ping", "1"], hookDir: hooks, eventFd: 3, legacy: true },
    { dev: "vifibnet", port: 1194, proto: "udp", dh: join(n.dir, "dh2048.pem"), maxClients: 4, address: `${n.address}/64`, revokedFile: null },
  );
  net.lab.spawn(n.ns, ["openvpn", ...argv], { stdio: "ignore" });
  return () => rmSync(hooks, { recursive: true, force: true });
}

scenario("a lying peer does not choose our address; two honest ones do",
  // --tunnel-refresh 30: a lone peer would be believed after two refreshes, 60 s; the honest nodes come before.
  { nodes: 4, hello: 2, connectionCount: 6, tunnelRefresh: 30, peersDbRefresh: 5, noIp: [NODE], start: false, timeoutMs: 200_000 }, async (net, t) => {
    t.after(startLiar(net, LIAR));
    const db = PeersDb.open(join(net.nodes[NODE]!.dir, "peers.db"));
    db.addPeer(net.prefix(LIAR), `${net.nodes[LIAR]!.ip},1194,udp`);
    db.close();
    net.startDaemon(NODE);

    // The liar's report arrives (the tunnel is up) ...
    type Advertised = Awaited<ReturnType<Overlay["status"]>>["advertised"];
    let a: Advertised | undefined;
    const heard = await waitFor(async () => {
      net.checkDaemons();
      a = (await net.status(NODE).catch(() => null))?.advertised;
      return a?.reports.some((r) => r.prefix === net.prefix(LIAR) && r.ip === LIE) ?? false;
    }, 60_000, 250);
    assert.ok(heard, `node ${NODE} has a tunnel to the liar and heard it: ${JSON.stringify(a)}\n${net.diagnostics()}`);
    // ... and is neither advertised nor declared, past two peers DB refreshes.
    await sleep(11_000);
    a = (await net.status(NODE)).advertised;
    assert.deepEqual([a.addresses, a.source, a.decision], [null, "none", "waiting"], JSON.stringify(a));
    assert.equal(registered(net, NODE), null, "the registry was told nothing");

    // Two honest nodes: the registry lists them, node 3's next tunnel refresh reaches them, they report its real address.
    net.startDaemon(1);
    net.startDaemon(2);
    const real = `${net.nodes[NODE]!.ip},1194,udp`;
    const agreed = await waitFor(async () => {
      net.checkDaemons();
      a = (await net.status(NODE)).advertised;
      return a.addresses === real;
    }, 90_000, 500);
    assert.ok(agreed, `node ${NODE} advertises its real address: ${JSON.stringify(a)}`);
    assert.deepEqual([a!.source, a!.decision], ["peers", "agreed"]);
    assert.ok(a!.reports.some((r) => r.ip === LIE), "the lie is still reported, outvoted");
    assert.ok(await waitFor(() => registered(net, NODE) === real, 15_000, 250), `the registry has ${real}: ${registered(net, NODE)}`);
  });
