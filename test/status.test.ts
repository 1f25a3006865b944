// `vifibnet status` without a daemon around it: the control socket
// (lib/daemon/control.ts: root-only, one JSON answer per command, refused
// beside a live daemon, removed on stop), the client's exit codes, and the
// snapshot (lib/daemon/status.ts) as JSON and as the human view.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { ControlServer, controlRequest, controlSocketPath, statusCommand } from "../lib/daemon/control";
import { Status, StatusSources, buildStatus, formatStatus } from "../lib/daemon/status";
import { parseIpv6Prefix } from "../lib/utils/address";
import { createLogger } from "../lib/utils/log";
import { BIN } from "../harness/paths";

const tmp = mkdtempSync(join(tmpdir(), "vfb-status-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const quiet = createLogger(0, () => {});
let n = 0;
const stateDir = (): string => {
  const d = join(tmp, `s${n++}`);
  spawnSync("mkdir", ["-p", d]);
  return d;
};

const T0 = Date.parse("2026-12-01T10:00:00Z");
const p = (k: number): string => k.toString(2).padStart(16, "0");

function sources(): StatusSources {
  return {
    startedAt: T0, now: T0 + 3_600_000, subnet: "2001:db8:42:5::/64",
    id: {
      network: parseIpv6Prefix("2001:db8:42::/48")!, prefix: p(5), commonName: "5/16", address: "2001:db8:42:5::", sha1: false,
      caPath: "/etc/vifib/ca.pem", certPath: "/etc/vifib/cert.crt", dhPath: "/etc/vifib/dh2048.pem", peersDbPath: "/etc/vifib/peers.db", openvpn: "/usr/sbin/openvpn", babeld: "/usr/sbin/babeld",
    },
    certificate: { path: "/etc/vifib/cert.crt", notAfter: T0 + 10 * 86_400_000, sha1: false, due: "expiring", lastAttempt: T0 + 100,
      lastError: { at: T0 + 200, message: "the registry refused: no" }, renewedAt: null, nextCheck: T0 + 3_600_000 + 600_000 },
    ca: { path: "/etc/vifib/ca.pem", notAfter: T0 + 300 * 86_400_000, checked: T0 + 3_590_000, renewedAt: T0 + 1_000, mismatch: null },
    revocation: { issued: T0 - 5_000, revoked: [{ prefix: p(9), cn: "9/16", since: (T0 - 10_000) / 1000, reason: "lost laptop" }], fetched: T0 + 3_590_000, lastError: null },
    addressRestores: { count: 1, last: T0 + 60_000 },
    advertised: { addresses: "198.51.100.12,1194,udp", source: "peers", since: T0 + 30_000, reports: [{ prefix: p(6), ip: "198.51.100.12", at: T0 + 20_000 }], decision: "agreed", waitingUntil: null },
    registry: { url: "http://198.51.100.1:8000/RPC2", lastSuccess: T0 + 3_590_000, lastError: null, nextRefresh: T0 + 3_650_000, declared: true, address: "198.51.100.12,1194,udp" },
    servers: [{ iface: "vifibnet", port: 1194, proto: "udp", peers: [{ commonName: "6/16", prefix: p(6), remote: "198.51.100.13", since: T0 + 10_000,
      negotiation: { peer: "6/16", tlsVersion: "TLSv1", tlsCipher: "DHE-RSA-AES256-SHA", dataCipher: "BF-CBC", dataAuth: "SHA1" } }],
      child: { name: "OpenVPN server 1194/udp", pid: 42, running: true, restarts: 0, since: T0, lastExit: null, restartAt: null }, refused: 2 }],
    tunnels: [{ prefix: p(7), iface: "client1", address: "198.51.100.14,1194,udp", remote: "198.51.100.14", state: "up", since: T0 + 5_000, openedAt: T0 + 4_000, pid: 43,
      negotiation: { peer: "7/16", tlsVersion: "TLSv1.3", tlsCipher: "TLS_AES_256_GCM_SHA384", dataCipher: "AES-256-GCM", dataAuth: null } }],
    bytes: (i) => (i === "client1" ? 123_456 : null), routes: new Map([["client1", 3]]),
    refresh: { wanted: 2, last: T0 + 3_595_000, next: T0 + 3_605_000, closed: { dead: 1, lan: 0, retired: 2, weak: 0, excess: 0, shutdown: 0, revoked: 0 } },
    babel: { answered: true, error: null, routes: 4, neighbours: [{ address: "fe80::1", iface: "client1", reach: "ffff", rxcost: 96, txcost: 96, cost: 96 }],
      reachable: [{ prefix: p(7), address: "2001:db8:42:7::", metric: 96, iface: "client1" }] },
    children: [{ name: "babeld", pid: 41, running: true, restarts: 1, since: T0 + 100, lastExit: { at: T0 + 50, status: "was killed by SIGKILL" }, restartAt: null }],
  };
}

describe("the snapshot", () => {
  test("JSON: times in ISO 8601, bit-string prefixes, per-tunnel bytes and routes, certificate days left", () => {
    const s = buildStatus(sources());
    assert.equal(s.version, 1);
    assert.equal(s.time, "2026-12-01T11:00:00.000Z");
    assert.deepEqual(s.node, { address: "2001:db8:42:5::", subnet: "2001:db8:42:5::/64", prefix: p(5), commonName: "5/16", network: "2001:db8:42::/48", addressRestores: 1, lastAddressRestore: "2026-12-01T10:01:00.000Z" });
    assert.deepEqual([s.certificate.daysLeft, s.certificate.sha1, s.ca.daysLeft], [9, false, 299]);
    assert.deepEqual(s.certificate.renewal, {
      due: "expiring", lastAttempt: "2026-12-01T10:00:00.100Z", lastError: { at: "2026-12-01T10:00:00.200Z", message: "the registry refused: no" },
      renewedAt: null, nextCheck: "2026-12-01T11:10:00.000Z",
    });
    assert.deepEqual(s.ca, { path: "/etc/vifib/ca.pem", notAfter: "2027-09-27T10:00:00.000Z", daysLeft: 299, checked: "2026-12-01T10:59:50.000Z", renewedAt: "2026-12-01T10:00:01.000Z", mismatch: null });
    assert.deepEqual(s.tunnels[0], { interface: "client1", prefix: p(7), address: "198.51.100.14,1194,udp", remote: "198.51.100.14", state: "up", since: "2026-12-01T10:00:05.000Z", openedAt: "2026-12-01T10:00:04.000Z", pid: 43, bytes: 123456, routes: 3,
      tlsVersion: "TLSv1.3", tlsCipher: "TLS_AES_256_GCM_SHA384", dataCipher: "AES-256-GCM", legacy: false });
    assert.deepEqual(s.servers[0]!.peers, [{ prefix: p(6), commonName: "6/16", remote: "198.51.100.13", since: "2026-12-01T10:00:10.000Z",
      tlsVersion: "TLSv1", tlsCipher: "DHE-RSA-AES256-SHA", dataCipher: "BF-CBC", legacy: true }]);
    const before = buildStatus({ ...sources(), tunnels: [{ ...sources().tunnels[0]!, negotiation: null }] });
    assert.deepEqual([before.tunnels[0]!.tlsVersion, before.tunnels[0]!.tlsCipher, before.tunnels[0]!.dataCipher, before.tunnels[0]!.legacy], [null, null, null, null], "before the handshake");
    assert.deepEqual(s.revocation, {
      issued: "2026-12-01T09:59:55.000Z", fetched: "2026-12-01T10:59:50.000Z", lastError: null,
      revoked: [{ prefix: p(9), commonName: "9/16", since: "2026-12-01T09:59:50.000Z", reason: "lost laptop" }],
    });
    assert.equal(s.servers[0]!.refused, 2);
    assert.deepEqual(s.babel.neighbours[0], { address: "fe80::1", interface: "client1", reach: "ffff", rxcost: 96, txcost: 96, cost: 96 });
    assert.deepEqual(s.children[0]!.lastExit, { at: "2026-12-01T10:00:00.050Z", status: "was killed by SIGKILL" });
    assert.deepEqual(JSON.parse(JSON.stringify(s)), s, "plain JSON");
  });

  test("the human view names what an operator looks for", () => {
    const text = formatStatus(buildStatus(sources()));
    for (const want of [
      /^node 2001:db8:42:5:: \(5\/16, 2001:db8:42:5::\/64\) in 2001:db8:42::\/48, pid \d+, up 60 min; address restored 1 time/,
      /certificate until 2026-12-11 \(9 days\); due for renewal \(expiring\), next attempt in 10 min; last renewal error 60 min ago: the registry refused: no; CA until 2027-09-27 \(299 days\), renewed 60 min ago/, /advertising 198\.51\.100\.12,1194,udp \(learned from peers/,
      /registry http:\/\/198\.51\.100\.1:8000\/RPC2: last success 10 s ago, next refresh in 50 s/,
      /server vifibnet 1194\/udp: pid 42, 1 peer\(s\); refused 2 revoked connection\(s\)/, /revocation list of 2026-12-01T09:59:55Z: 1 revoked \(9\/16\), fetched 10 s ago/, /6\/16 +198\.51\.100\.13 +since .* TLSv1 BF-CBC \(legacy\)$/m, /tunnels: 1 of 2 wanted.*closed so far: 1 dead, 2 retired/,
      /client1 +7\/16 +up +198\.51\.100\.14 .* 123\.5 kB +3 route\(s\) +TLSv1\.3 AES-256-GCM$/m, /babel: 1 neighbour\(s\), 4 route\(s\), 1 node\(s\) reachable/,
      /babeld +pid 41 +1 restart\(s\) +last: was killed by SIGKILL/,
    ]) assert.match(text, want);
  });
});

describe("the control socket", () => {
  test("root-only, one JSON answer per command, unknown commands refused, removed on stop", async () => {
    const dir = stateDir();
    const path = controlSocketPath(dir);
    const server = new ControlServer(path, { status: () => ({ hello: "world" }), boom: () => { throw new Error("no way"); } }, quiet);
    await server.start();
    try {
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.deepEqual(await controlRequest(path, "status"), { hello: "world" });
      await assert.rejects(controlRequest(path, "toString"), /unknown command "toString" \(known: status, boom\)/);
      await assert.rejects(controlRequest(path, "boom"), /refused "boom": no way/);
      const second = new ControlServer(path, {}, quiet);
      await assert.rejects(second.start(), /already runs with this --state/);
    } finally {
      await server.stop();
    }
    assert.equal(existsSync(path), false);
  });

  test("a socket file left by a crash is replaced", async () => {
    const dir = stateDir();
    const path = controlSocketPath(dir);
    // What a daemon killed with SIGKILL leaves: a socket file nobody listens on.
    spawnSync("/usr/bin/python3", ["-c", `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(path)})`]);
    assert.ok(existsSync(path), "a dead socket file is there");
    const server = new ControlServer(path, { status: () => 1 }, quiet);
    await server.start();
    assert.equal(await controlRequest(path, "status"), 1);
    await server.stop();
  });
});

describe("vifibnet status", () => {
  test("no daemon: exit 3, one line naming the state directory", () => {
    const dir = stateDir();
    const r = spawnSync(process.execPath, [BIN("vifibnet"), "status", "-s", dir], { encoding: "utf8", timeout: 30_000 });
    assert.equal(r.status, 3, r.stderr);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^vifibnet status: no vifibnet daemon is running with --state ${dir}`));
  });

  test("a daemon answering: the JSON snapshot, or the human view; exit 0", async () => {
    const dir = stateDir();
    const snapshot: Status = buildStatus(sources());
    const server = new ControlServer(controlSocketPath(dir), { status: () => snapshot }, quiet);
    await server.start();
    try {
      let out = "";
      assert.equal(await statusCommand(["-s", dir, "--json"], (s) => (out += s), () => {}), 0);
      assert.deepEqual(JSON.parse(out), snapshot);
      out = "";
      assert.equal(await statusCommand(["--state", dir], (s) => (out += s), () => {}), 0);
      assert.equal(out, formatStatus(snapshot));
    } finally {
      await server.stop();
    }
  });

  test("any other failure: exit 1", async () => {
    const dir = stateDir();
    const server = createServer((s) => s.end("not json\n"));
    await new Promise<void>((r) => server.listen(controlSocketPath(dir), r));
    try {
      let err = "";
      assert.equal(await statusCommand(["-s", dir], () => {}, (s) => (err += s)), 1);
      assert.match(err, /is not JSON/);
    } finally {
      server.close();
    }
  });
});
