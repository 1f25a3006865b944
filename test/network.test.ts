// A real vifibnet network on one machine: each scenario builds its own small
// overlay in network namespaces (harness/overlay.ts: a hub with the
// registry and an SMTP sink, nodes joined with vifibnet-setup, daemons run
// with the legacy flags, --hello 2, short refreshes, --refresh-rate 0) and
// always destroys it. Needs root (namespaces, tap devices); skipped otherwise.

import assert from "node:assert/strict";
import { BIN, NODE } from "../harness/paths";
import { inHellos, scenario, sleep } from "../harness/scenario";

const HELLO = 2;
const seconds = (ms: number): string => inHellos(ms, HELLO);
const small = { hello: HELLO, connectionCount: 4, tunnelRefresh: 5, peersDbRefresh: 5 };

scenario("bootstrap: 6 nodes from nothing, every node reaches every other node's overlay address", { nodes: 6, ...small }, async (net, t) => {
  const took = await net.waitAllPairs(120_000);
  t.diagnostic(`bootstrap: all 15 pairs ping ${seconds(took)} after the daemons started`);
});

scenario("--strict-signed: vifibnet nodes declare signed to a registry that refuses unsigned declarations, and converge", { nodes: 3, ...small, registryArgs: ["--strict-signed"] }, async (net, t) => {
  // Setup runs with --no-boot: a node learns of others only through what they declared.
  const took = await net.waitAllPairs(120_000);
  t.diagnostic(`--strict-signed: all 3 pairs ping ${seconds(took)} after the daemons started`);
});

scenario("multi-hop: all pairs ping, some of them through another node", { nodes: 6, ...small, connectionCount: 3 }, async (net, t) => {
  // connection-count 3: 2 client tunnels each (OpenVPN --max-clients 3), so
  // at most 12 tunnels for the 15 pairs of 6 nodes. (connection-count 2, one
  // tunnel each, often leaves the graph disconnected, and refresh-rate > 0
  // churns it: neither is a stable test.)
  const took = await net.waitAllPairs(120_000);
  t.diagnostic(`multi-hop: all 15 pairs ping ${seconds(took)} after start`);
  const direct = await net.directPairs();
  const clients = await Promise.all(net.nodes.map((n) => net.clientsUp(n.index)));
  t.diagnostic(`multi-hop: client tunnels up per node: ${clients.map((c) => c.length).join(" ")}; direct pairs: ${[...direct].sort().join(" ")}`);
  assert.ok(clients.every((c) => c.length <= 2), `at most 2 client tunnels per node: ${clients.map((c) => c.join(",")).join(" | ")}`);
  assert.ok(direct.size < 15, `some pairs have no direct tunnel (${direct.size} direct)`);

  // A pair with no direct tunnel: a ping limited to one hop fails (the
  // intermediate node drops it), an ordinary ping passes.
  const indirect: string[] = [];
  for (let i = 0; i < 6; i++)
    for (let j = i + 1; j < 6; j++) {
      if (direct.has(`${i}-${j}`)) continue;
      const oneHop = await net.ping(i, j, 1);
      const anyHop = await net.ping(i, j);
      if (!oneHop && anyHop) indirect.push(`${i}-${j}`);
    }
  t.diagnostic(`multi-hop: pairs routed through another node (hop limit 1 fails, ping passes): ${indirect.join(" ")}`);
  assert.ok(indirect.length > 0, `no pair is routed through another node; direct: ${[...direct].join(" ")}\n${net.diagnostics()}`);
  assert.deepEqual(await net.failingPairs(), [], "all pairs still ping");
});

scenario("registry down: the overlay keeps working and a restarted node rejoins from peers.db", { nodes: 4, ...small, timeoutMs: 200_000 }, async (net, t) => {
  const took = await net.waitAllPairs(120_000);
  t.diagnostic(`registry down: all pairs ping ${seconds(took)} after start`);
  // Let every node refresh its peers DB at least once more with all peers declared.
  await sleep(6_000);

  await net.stopRegistry();
  // Past a peers DB refresh (which now fails) and a tunnel refresh: still working.
  await sleep(7_000);
  net.checkDaemons();
  assert.deepEqual(await net.failingPairs(), [], `pairs failing with the registry down:\n${net.diagnostics()}`);
  const registry = (await net.status(1)).registry;
  assert.ok(registry.lastError !== null && registry.lastSuccess !== null, `node 1 reports the registry's failure: ${JSON.stringify(registry)}`);

  assert.equal(await net.stopDaemon(0), 0, "node 0 exits 0 on SIGTERM");
  const t1 = Date.now();
  net.startDaemon(0);
  const took2 = await net.waitAllPairs(90_000);
  const tunnels = await net.tunnelsUp(0);
  assert.ok(tunnels.length > 0 && tunnels.every((x) => x.peer >= 0), `the restarted node tunnels to peers from its peers.db: ${JSON.stringify(tunnels)}`);
  assert.deepEqual((await net.clientsUp(0)).sort(), tunnels.map((x) => x.iface).sort(), "its status lists the client interfaces up");
  assert.equal((await net.status(0)).registry.lastSuccess, null, "node 0 never reached the registry since its restart");
  t.diagnostic(`registry down: node 0 restarted; all pairs ping again ${seconds(Date.now() - t1)} later (${(took2 / 1000).toFixed(1)} s of waiting)`);
  assert.equal(net.registry!.proc.exitCode !== null || net.registry!.proc.signalCode !== null, true, "the registry is still down");
});

scenario("clean exit: all daemons exit 0 on SIGTERM, no openvpn, babeld, tap interface or control socket left; vifibnet status then exits 3", { nodes: 3, ...small }, async (net, t) => {
  const took = await net.waitAllPairs(120_000);
  t.diagnostic(`clean exit: all pairs ping ${seconds(took)} after start`);
  const tunnels = await Promise.all(net.nodes.map((n) => net.clientsUp(n.index)));
  assert.ok(tunnels.some((c) => c.length > 0), "tunnels were up");
  const t1 = Date.now();
  const codes = await Promise.all(net.nodes.map((n) => net.stopDaemon(n.index)));
  t.diagnostic(`clean exit: ${codes.length} daemons stopped in ${((Date.now() - t1) / 1000).toFixed(1)} s`);
  assert.deepEqual(codes, net.nodes.map(() => 0), `exit codes:\n${net.nodes.map((n) => n.daemon!.err().slice(-2000)).join("\n")}`);
  for (const n of net.nodes) {
    const left: Array<{ pid: number; comm: string }> = net.processes(n.index).filter((p) => p.comm === "openvpn" || p.comm === "babeld");
    assert.deepEqual(left, [], `processes left in node ${n.index}`);
    const taps: string[] = net.links(n.index).filter((l) => /^(vifibnet\d*|client\d+)$/.test(l));
    assert.deepEqual(taps, [], `tap interfaces left in node ${n.index}`);
    await assert.rejects(net.status(n.index), /no vifibnet daemon is running/, "the control socket is gone");
    const cli = net.lab.exec(n.ns, [NODE, BIN("vifibnet"), "status", "-s", n.dir]);
    assert.deepEqual([cli.status, cli.stdout, cli.stderr.trim().split("\n").length], [3, "", 1], `vifibnet status with no daemon: ${cli.stderr}`);
  }
});
