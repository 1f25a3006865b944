// The node as a service, in a real vifibnet network (harness/overlay.ts, 4
// nodes, --hello 2): `vifibnet status --json` agrees with `ip link`, with
// the servers' view of their clients and with babeld's own dump; babeld and
// an OpenVPN server killed with SIGKILL are back within 5 s, counted, the
// daemon still running and every pair reaching every other again; the node
// address removed from its server interface, or the interface set down, is
// back within one hello; SIGHUP reopens the log files and stops nothing.
// Needs root; skipped otherwise.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { babelRequest, parseBabelDump } from "../lib/babel-control";
import { waitFor } from "../harness/netns";
import { Overlay, running } from "../harness/overlay";
import { BIN, NODE } from "../harness/paths";
import { inHellos, scenario, sleep } from "../harness/scenario";

const HELLO = 2;
const seconds = (ms: number): string => inHellos(ms, HELLO);
const sorted = (xs: Iterable<string>): string[] => [...xs].sort();

/** Waits (bounded) until `actual()` deep-equals `expected()`; the last pair seen. */
async function agree(actual: () => Promise<string[]>, expected: () => Promise<string[]>, timeoutMs: number): Promise<[string[], string[]]> {
  let last: [string[], string[]] = [[], []];
  await waitFor(async () => {
    last = [sorted(await actual()), sorted(await expected())];
    return JSON.stringify(last[0]) === JSON.stringify(last[1]);
  }, timeoutMs, 500);
  return last;
}

function hasAddress(net: Overlay, i: number): boolean {
  const out = net.lab.exec(net.nodes[i]!.ns, ["ip", "-6", "-o", "addr", "show", "dev", "vifibnet"]).stdout;
  return out.includes(`inet6 ${net.nodes[i]!.address}/64`);
}

/** Kills `name`'s process of node 0 with SIGKILL; the time until its status shows a new one running. */
async function killAndWaitBack(net: Overlay, name: (s: { name: string }) => boolean): Promise<{ ms: number; restarts: number }> {
  const before = (await net.status(0)).children.find(name)!;
  assert.ok(before.running && before.pid !== null, `${before.name} runs`);
  const t0 = Date.now();
  process.kill(before.pid!, "SIGKILL");
  let now = before;
  const back = await waitFor(async () => {
    now = (await net.status(0)).children.find(name)!;
    return now.running && now.pid !== before.pid;
  }, 10_000, 50);
  assert.ok(back, `${before.name} is running again: ${JSON.stringify(now)}`);
  return { ms: Date.now() - t0, restarts: now.restarts };
}

scenario("the node as a service: status, supervision, self-healing address, SIGHUP",
  { nodes: 4, hello: HELLO, connectionCount: 4, tunnelRefresh: 5, peersDbRefresh: 5, timeoutMs: 300_000 }, async (net, t) => {
    await net.waitAllPairs(90_000);
    const prefixes = net.nodes.map((n) => net.prefix(n.index));

    // `vifibnet status --json`, as an operator runs it inside the node's namespace.
    const n0 = net.nodes[0]!;
    const cli = net.lab.exec(n0.ns, [NODE, BIN("vifibnet"), "status", "-s", n0.dir, "--json"]);
    assert.equal(cli.status, 0, cli.stderr);
    const s0 = JSON.parse(cli.stdout) as Awaited<ReturnType<Overlay["status"]>>;
    assert.equal(s0.pid, n0.daemon!.proc.pid, "the daemon answered");
    assert.deepEqual([s0.node.address, s0.node.prefix, s0.advertised.addresses, s0.advertised.source], [n0.address, prefixes[0], `${n0.ip},1194,udp`, "ip"]);
    assert.ok(s0.certificate.daysLeft > 300 && s0.ca.daysLeft > 0, `certificate days left: ${s0.certificate.daysLeft}, CA ${s0.ca.daysLeft}`);
    assert.ok(s0.registry.lastSuccess !== null && s0.registry.declared === true, JSON.stringify(s0.registry));
    const human = net.lab.exec(n0.ns, [NODE, BIN("vifibnet"), "status", "-s", n0.dir]);
    assert.equal(human.status, 0);
    assert.match(human.stdout, new RegExp(`^node ${n0.address} `));

    // Client tunnels: exactly the client interfaces up.
    for (const n of net.nodes) {
      const [st, links] = await agree(async () => (await net.tunnelsUp(n.index)).map((x) => x.iface), () => net.clientsUp(n.index), 20_000);
      assert.deepEqual(st, links, `node ${n.index}: status tunnels vs ip link`);
    }
    // Servers' peers: exactly the nodes with a tunnel up to it, from their underlay addresses.
    for (const server of net.nodes) {
      const [peers, clients] = await agree(
        async () => (await net.status(server.index)).servers[0]!.peers.map((p) => `${p.prefix} ${p.remote}`),
        async () => {
          const out: string[] = [];
          for (const n of net.nodes) if ((await net.tunnelsUp(n.index)).some((x) => x.peer === server.index)) out.push(`${prefixes[n.index]} ${n.ip}`);
          return out;
        }, 30_000);
      assert.deepEqual(peers, clients, `node ${server.index}: its server's peers vs the nodes tunnelling to it`);
    }
    // Babel: the neighbours babeld's dump lists, every other node reachable over routes the dump has.
    for (const n of net.nodes) {
      const dump = async (): Promise<ReturnType<typeof parseBabelDump>> => parseBabelDump((await babelRequest(join(n.dir, "vifibnet.babeld.sock"), ["dump"]))[0] ?? []);
      const [st, dumped] = await agree(async () => (await net.status(n.index)).babel.neighbours.map((x) => `${x.address} ${x.interface}`),
        async () => (await dump()).neighbours.map((x) => `${x.address} ${x.iface}`), 10_000);
      assert.deepEqual(st, dumped, `node ${n.index}: babel neighbours`);
      const s = await net.status(n.index);
      assert.deepEqual(sorted(s.babel.reachable.map((r) => r.prefix)), sorted(prefixes.filter((_, k) => k !== n.index)), `node ${n.index} reaches every other node`);
      const routes = (await dump()).routes.filter((r) => r.installed);
      for (const r of s.babel.reachable)
        assert.ok(routes.some((x) => x.prefix === `${r.address}/128` && x.iface === r.interface), `node ${n.index}: a babel route to ${r.address} via ${r.interface}`);
    }
    t.diagnostic(`service: status agrees with ip link, the servers and babeld on all ${net.nodes.length} nodes`);

    // Supervision: babeld, then the OpenVPN server, killed.
    const babeld = await killAndWaitBack(net, (c) => c.name === "babeld");
    assert.ok(babeld.ms <= 5_000, `babeld back after ${babeld.ms} ms`);
    assert.equal(babeld.restarts, 1);
    await net.waitAllPairs(60_000);
    const server = await killAndWaitBack(net, (c) => c.name.startsWith("OpenVPN server"));
    assert.ok(server.ms <= 5_000, `the OpenVPN server back after ${server.ms} ms`);
    assert.equal(server.restarts, 1);
    await net.waitAllPairs(90_000);
    assert.ok(running(n0.daemon!), "the daemon never exited");
    t.diagnostic(`service: babeld back in ${seconds(babeld.ms)}, the OpenVPN server in ${seconds(server.ms)}; all pairs reach again`);

    // The node address: deleted, then its interface set down.
    const node = 1;
    const ns = net.nodes[node]!.ns;
    assert.ok(hasAddress(net, node));
    for (const breakIt of [["ip", "-6", "addr", "del", `${net.nodes[node]!.address}/64`, "dev", "vifibnet"], ["ip", "link", "set", "vifibnet", "down"]]) {
      assert.equal(net.lab.exec(ns, breakIt).status, 0, breakIt.join(" "));
      const t0 = Date.now();
      assert.ok(!hasAddress(net, node), `gone after ${breakIt.join(" ")}`);
      assert.ok(await waitFor(() => hasAddress(net, node), 10_000, 50), "restored");
      const ms = Date.now() - t0;
      assert.ok(ms <= HELLO * 1000, `${breakIt.join(" ")}: the address is back after ${ms} ms, within one hello`);
      assert.match(net.lab.exec(ns, ["ip", "-o", "link", "show", "vifibnet"]).stdout, /[<,]UP[,>]/, "the interface is up");
      t.diagnostic(`service: after "${breakIt.join(" ")}" the address was back in ${ms} ms`);
    }
    assert.equal((await net.status(node)).node.addressRestores, 2);
    await net.waitAllPairs(60_000);

    // SIGHUP: the log files reopened (logrotate moved one away), nothing stopped.
    const log = join(n0.log, "vifibnet.babeld.log");
    renameSync(log, log + ".1");
    const pid = n0.daemon!.proc.pid!;
    process.kill(pid, "SIGHUP");
    assert.ok(await waitFor(() => existsSync(log), 5_000, 50), "vifibnet.babeld.log opened again");
    assert.ok(await waitFor(() => statSync(log).size > 0, 20_000, 250), "babeld's messages go to the new file");
    await sleep(1_000);
    assert.ok(running(n0.daemon!), "SIGHUP did not stop the daemon");
    assert.equal((await net.status(0)).pid, pid);
    assert.equal(spawnSync("kill", ["-0", String(pid)]).status, 0);
  });
