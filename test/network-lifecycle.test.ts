// A network's lifecycle on real nodes (issue 11, the node's half), in a real
// vifibnet network (harness/overlay.ts, --hello 2, --peers-db-refresh 5):
//
//   renewal      node 1's certificate has 10 days left: renewed at start;
//                node 0's enters its 30-day window 40 s after start and is
//                renewed then, while the network runs: pings keep
//                answering, node 0 never without a tunnel, its server
//                restarted once, every pair back.
//   CA renewal   vifibnet-ca --renew on the registry, SIGHUP: every node
//                installs the new ca.pem within a peers refresh, restarts
//                its server, and every pair pings again.
//   revocation   node 2 revoked (vifibnet-registry revoke): nodes 0 and 1
//                have no tunnel with it within a peers refresh and refuse
//                its connections from then on. Node 3 talks to the registry
//                through a proxy that adds node 1 to the list without the
//                CA's key: node 3 refuses that list and keeps node 1.
//
//        hub: registry (and node 3's tampering proxy), bridge 198.51.100.0/24
//        /        |        |        \
//    node 0   node 1   node 2   node 3
//
// What the daemons do is read from their status sockets and the files they
// keep; needs root, skipped otherwise.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { PeersDb } from "../lib/db";
import { prefixToCn } from "../lib/utils/address";
import { loadCa, renewNodeCertificate } from "../lib/utils/cert";
import { waitFor } from "../harness/netns";
import { CONNECTED, Overlay, type Proc } from "../harness/overlay";
import { BIN, NODE } from "../harness/paths";
import { inHellos, scenario, sleep } from "../harness/scenario";

const HELLO = 2;
const DAY = 86_400_000;
const REFRESH_S = 5;

/**
 * Gives node i a certificate of the same key and subject valid from `from`
 * for 365 days, in its directory and as the registry's record of it (what
 * the registry renews must be what it holds).
 */
function reissue(net: Overlay, i: number, from: number): string {
  const dir = net.registryDir;
  const ca = loadCa(readFileSync(join(dir, "ca.crt"), "utf8"), readFileSync(join(dir, "ca.key"), "utf8"));
  const certPath = join(net.nodes[i]!.dir, "cert.crt");
  const pem = renewNodeCertificate(ca, readFileSync(certPath, "utf8"), new Date(from), 365);
  writeFileSync(certPath, pem);
  const db = new Database(join(dir, "registry.db"));
  try {
    assert.equal(db.prepare("UPDATE vpn SET cert = ? WHERE prefix = ?").run(pem, net.prefix(i)).changes, 1);
  } finally {
    db.close();
  }
  return pem;
}

const restartsOfServer = async (net: Overlay, i: number): Promise<number> =>
  (await net.status(i)).children.filter((c) => c.name.startsWith("OpenVPN server")).reduce((n, c) => n + c.restarts, 0);

scenario("renewal: at start with 10 days left, and while running, without losing all tunnels; pings keep answering",
  { nodes: 4, hello: HELLO, connectionCount: 4, peersDbRefresh: REFRESH_S, start: false, timeoutMs: 240_000 }, async (net, t) => {
    const tenDays = reissue(net, 1, Date.now() - 355 * DAY);
    // 30 days and 40 s left: due 40 s from now (to the second: certificates carry no milliseconds).
    const dueAt = Date.parse(new X509Certificate(reissue(net, 0, Date.now() + 40_000 - 335 * DAY)).validTo) - 30 * DAY;
    const t0 = Date.now();
    for (let i = 0; i < net.nodes.length; i++) net.startDaemon(i);
    await net.waitDaemons(30_000);

    // Node 1: renewed at start.
    let s1 = await net.status(1);
    assert.ok(await waitFor(async () => (s1 = await net.status(1)).certificate.renewal.renewedAt !== null, 30_000, 250), JSON.stringify(s1.certificate));
    assert.ok(s1.certificate.daysLeft >= 364, `node 1's certificate now lasts a year: ${JSON.stringify(s1.certificate)}`);
    assert.equal(readFileSync(join(net.nodes[1]!.dir, "cert.crt.old"), "utf8"), tenDays);
    t.diagnostic(`renewal: node 1 (10 days left) renewed ${((Date.parse(s1.certificate.renewal.renewedAt!) - t0) / 1000).toFixed(1)} s after start`);

    const took = await net.waitAllPairs(90_000);
    t.diagnostic(`renewal: all pairs ping ${inHellos(took, HELLO)} after start`);
    let s0 = await net.status(0);
    assert.equal(s0.certificate.renewal.renewedAt, null, "node 0 is not due yet");
    assert.equal(s0.certificate.renewal.due, null);
    assert.ok(Math.abs(Date.parse(s0.certificate.renewal.nextCheck!) - dueAt) < 2_000, `its next look is when it becomes due: ${s0.certificate.renewal.nextCheck}`);

    // Node 0 across its renewal: rounds of pings to every other node, and its tunnels.
    let rounds = 0, silent = 0, lostPings = 0, fewestTunnels = Infinity;
    let renewedAt: number | null = null;
    const others = [1, 2, 3];
    const deadline = dueAt + 60_000;
    while (Date.now() < deadline) {
      const [pings, st] = await Promise.all([Promise.all(others.map((j) => net.ping(0, j))), net.status(0)]);
      rounds++;
      const answered = pings.filter(Boolean).length;
      lostPings += others.length - answered;
      if (answered === 0) silent++;
      fewestTunnels = Math.min(fewestTunnels, st.tunnels.filter((x) => CONNECTED.has(x.state)).length);
      if (renewedAt === null && st.certificate.renewal.renewedAt !== null) renewedAt = Date.now();
      if (renewedAt !== null && Date.now() > renewedAt + 6 * HELLO * 1000) break;
      await sleep(250);
    }
    net.checkDaemons();
    s0 = await net.status(0);
    assert.ok(renewedAt !== null, `node 0 renewed while running: ${JSON.stringify(s0.certificate)}`);
    const late = Date.parse(s0.certificate.renewal.renewedAt!) - dueAt;
    t.diagnostic(`renewal: node 0 renewed ${(late / 1000).toFixed(1)} s after it became due; ${rounds} rounds of 3 pings across it: ` +
      `${lostPings} ping(s) lost, ${silent} round(s) with no answer; at least ${fewestTunnels} client tunnel(s) up throughout`);
    assert.ok(late >= 0 && late < 5_000, "renewed when it became due");
    assert.ok(s0.certificate.daysLeft >= 364);
    assert.equal(s0.certificate.renewal.lastError, null);
    assert.ok(existsSync(join(net.nodes[0]!.dir, "cert.crt.old")));
    assert.ok(fewestTunnels >= 1, "its client tunnels were never all gone");
    assert.equal(silent, 0, "every round, some node answered node 0");
    assert.equal(await restartsOfServer(net, 0), 1, "its one server restarted once");
    const server = s0.children.find((c) => c.name.startsWith("OpenVPN server"))!;
    assert.match(server.lastExit?.status ?? "", /^restarted/);
    const back = await net.waitAllPairs(60_000);
    t.diagnostic(`renewal: all pairs ping ${inHellos(back, HELLO)} after the watch`);
  });

scenario("CA renewal: vifibnet-ca --renew, SIGHUP; every node installs it within a peers refresh, every pair pings",
  { nodes: 3, hello: HELLO, connectionCount: 4, peersDbRefresh: REFRESH_S, timeoutMs: 200_000 }, async (net, t) => {
    await net.waitAllPairs(90_000);
    const oldCa = readFileSync(join(net.registryDir, "ca.crt"), "utf8");
    const r = spawnSync(NODE, [BIN("vifibnet-ca"), "--renew", "--dir", net.registryDir, "--days", "3650"], { encoding: "utf8", timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    const newCa = readFileSync(join(net.registryDir, "ca.crt"), "utf8");
    assert.notEqual(newCa, oldCa);
    net.reloadRegistry();
    const t0 = Date.now();
    const caOf = (i: number): string => readFileSync(join(net.nodes[i]!.dir, "ca.pem"), "utf8");
    const installed = await waitFor(() => net.nodes.every((n) => caOf(n.index) === newCa), (REFRESH_S + 15) * 1000, 250);
    assert.ok(installed, `every node installed the renewed CA: ${net.nodes.map((n) => caOf(n.index) === newCa).join(" ")}\n${net.diagnostics()}`);
    t.diagnostic(`CA renewal: on every node ${((Date.now() - t0) / 1000).toFixed(1)} s after SIGHUP`);
    for (const n of net.nodes) {
      assert.equal(readFileSync(join(n.dir, "ca.pem.old"), "utf8"), oldCa);
      const s = await net.status(n.index);
      assert.ok(s.ca.daysLeft >= 3649, JSON.stringify(s.ca));
      assert.notEqual(s.ca.renewedAt, null);
      assert.equal(s.ca.mismatch, null);
    }
    assert.ok(await waitFor(async () => (await Promise.all(net.nodes.map((n) => restartsOfServer(net, n.index)))).every((k) => k === 1), 30_000, 250),
      "each node restarted its server once");
    const back = await net.waitAllPairs(60_000);
    t.diagnostic(`CA renewal: all pairs ping ${inHellos(back, HELLO)} after`);
    assert.ok(await waitFor(async () => (await net.directPairs()).size >= 2, 30_000, 500), "tunnels up again");
  });

/**
 * An XML-RPC proxy in the hub in front of the registry that adds `forged`
 * (prefix bits) to every revocation list it passes, keeping the CA's
 * signature of the original; prints its port.
 */
function tamperingProxy(net: Overlay, forged: string): Proc & { port: () => number } {
  const entry = JSON.stringify({ prefix: forged, cn: prefixToCn(forged), since: 1, reason: "forged" });
  const code = `
    const http = require("http");
    const [target, entry] = process.argv.slice(1);
    const s = http.createServer((req, res) => {
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks);
        const up = http.request({ host: "127.0.0.1", port: +target, path: req.url, method: "POST",
          headers: { "content-type": "text/xml", "content-length": body.length } }, (r) => {
          const out = [];
          r.on("data", (c) => out.push(c));
          r.on("end", () => {
            let text = Buffer.concat(out).toString();
            if (body.includes("getRevocationList"))
              text = text.includes('"revoked":[]') ? text.replace('"revoked":[]', '"revoked":[' + entry + ']') : text.replace('"revoked":[', '"revoked":[' + entry + ',');
            res.writeHead(r.statusCode, { "content-type": "text/xml", "content-length": Buffer.byteLength(text) });
            res.end(text);
          });
        });
        up.on("error", () => { res.writeHead(502); res.end(); });
        up.end(body);
      });
    });
    s.listen(0, "0.0.0.0", () => console.log(s.address().port));`;
  const proc = net.lab.spawn(net.hub, [NODE, "-e", code, String(net.registryPort), entry], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout!.setEncoding("utf8").on("data", (c: string) => (out += c));
  return { proc, out: () => out, err: () => "", exited: new Promise((r) => proc.once("exit", r)), port: () => Number(out.trim()) };
}

scenario("revocation: a revoked node loses its tunnels within a peers refresh and is refused; a tampered list is refused",
  { nodes: 4, hello: HELLO, connectionCount: 6, peersDbRefresh: REFRESH_S, start: false, timeoutMs: 240_000 }, async (net, t) => {
    const proxy = tamperingProxy(net, net.prefix(1));
    assert.ok(await waitFor(() => proxy.port() > 0, 10_000, 100), "the proxy listens");
    for (let i = 0; i < 3; i++) net.startDaemon(i);
    net.startDaemon(3, ["--server-port", String(proxy.port())]);
    await net.waitDaemons(30_000);
    await net.waitAllPairs(90_000);

    // Node 3 got a list naming node 1, signed by no one: refused, node 1 kept.
    let s3 = await net.status(3);
    assert.ok(await waitFor(async () => (s3 = await net.status(3)).revocation.lastError !== null, (REFRESH_S + 10) * 1000, 250), JSON.stringify(s3.revocation));
    assert.match(s3.revocation.lastError!.message, /signature is not the network CA's/);
    assert.deepEqual(s3.revocation.revoked, []);
    t.diagnostic(`revocation: node 3, fed a forged list: ${s3.revocation.lastError!.message}`);

    const revoked = net.prefix(2), cn = prefixToCn(revoked);
    const r = net.registryCommand("revoke", [cn, "--reason", "lost laptop"]);
    assert.equal(r.status, 0, r.stderr);
    const t0 = Date.now();
    const withoutNode2 = async (i: number): Promise<boolean> => {
      const s = await net.status(i);
      return s.revocation.revoked.some((x) => x.prefix === revoked) &&
        !s.tunnels.some((x) => x.prefix === revoked && CONNECTED.has(x.state)) &&
        !s.servers.some((v) => v.peers.some((p) => p.commonName === cn));
    };
    const gone = await waitFor(async () => (await withoutNode2(0)) && (await withoutNode2(1)), (REFRESH_S + 15) * 1000, 250);
    assert.ok(gone, `nodes 0 and 1 have no tunnel with node 2:\n${JSON.stringify((await net.status(0)).servers)}\n${net.diagnostics()}`);
    const ms = Date.now() - t0;
    t.diagnostic(`revocation: nodes 0 and 1 without node 2 ${(ms / 1000).toFixed(1)} s after the revoke (peers refresh every ${REFRESH_S} s)`);
    assert.ok(ms <= (REFRESH_S + 10) * 1000);
    for (const i of [0, 1]) {
      const db = PeersDb.open(join(net.nodes[i]!.dir, "peers.db"), { readonly: true });
      assert.ok(!db.peers().some((p) => p.prefix === revoked), `node ${i}'s peers.db has no row for node 2`);
      db.close();
      assert.equal(readFileSync(join(net.nodes[i]!.dir, "vifibnet.revoked"), "utf8"), `${cn}\n`);
      assert.ok(existsSync(join(net.nodes[i]!.dir, "vifibnet.revocation.json")));
    }
    for (const i of [0, 1]) assert.doesNotMatch(net.nodes[i]!.daemon!.err(), /cannot read .*vifibnet\.revoked/, "the hook can read the list");
    // Node 2 keeps trying; the servers' hook refuses it.
    const refused = await waitFor(async () => {
      const counts = await Promise.all([0, 1].map(async (i) => (await net.status(i)).servers.reduce((k, v) => k + v.refused, 0)));
      return counts.some((k) => k > 0);
    }, 40_000, 500);
    assert.ok(refused, "node 2's attempts are refused by a server's hook");
    // For several tunnel refreshes, still no tunnel between node 2 and nodes 0, 1.
    await sleep(3 * 5_000);
    net.checkDaemons();
    assert.ok((await withoutNode2(0)) && (await withoutNode2(1)), "still none");
    const s2 = await net.status(2);
    const toEnforcers = s2.tunnels.filter((x) => [net.prefix(0), net.prefix(1)].includes(x.prefix) && CONNECTED.has(x.state));
    assert.deepEqual(toEnforcers, [], "node 2 has no tunnel up to nodes 0 and 1 either");
    // Node 3, which refused the forged list, still reaches node 1; nodes 0, 1 and 3 reach each other.
    await net.waitAllPairs(60_000, [0, 1, 3]);
  });
