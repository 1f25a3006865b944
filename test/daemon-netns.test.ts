// The daemon end to end, in network namespaces: two nodes A and B on an
// "internet" (a veth pair, 198.51.100.0/24), the registry and an SMTP sink
// in A's namespace. Both join with vifibnet-setup, run bin/vifibnet with the
// legacy flags, and must end up with an OpenVPN tunnel and babel routes so
// that A pings B's node address over the overlay; B, without --ip, learns
// its address from A (`vifibnet status`). SIGTERM then stops each daemon
// with status 0, leaving no OpenVPN, no babeld, no tap interface and no
// control socket.
// Needs root (namespaces, tap devices); installs openvpn and babeld.

import assert from "node:assert/strict";
import { ChildProcess, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { caNetwork, checkNodeCertificate } from "../lib/utils/x509";
import { nodeAddress } from "../lib/utils/address";
import { Lab, OVERLAY_PACKAGES, installPackages, waitFor } from "../harness/netns";
import { makeCa } from "../harness/pki";
import { BIN, NODE, ROOT } from "../harness/paths";
import { tokenInMailDir } from "../harness/smtp-sink";

const isRoot = process.getuid?.() === 0;

interface Proc {
  proc: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
}

function track(proc: ChildProcess): Proc {
  let out = "";
  let err = "";
  proc.stdout?.setEncoding("utf8").on("data", (c: string) => (out += c));
  proc.stderr?.setEncoding("utf8").on("data", (c: string) => (err += c));
  const exited = once(proc, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  return { proc, out: () => out, err: () => err, exited };
}

/** Waits for the process to exit, at most `ms`; SIGKILL then. Resolves with [code, signal], or null on timeout. */
async function exitWithin(p: Proc, ms: number): Promise<[number | null, NodeJS.Signals | null] | null> {
  if (p.proc.exitCode !== null || p.proc.signalCode !== null) return [p.proc.exitCode, p.proc.signalCode];
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([p.exited, new Promise<null>((res) => (timer = setTimeout(() => res(null), ms)))]);
  clearTimeout(timer);
  if (r === null) p.proc.kill("SIGKILL");
  return r;
}

test("two nodes in namespaces tunnel and route to each other, and stop cleanly", { timeout: 240_000 }, async (t) => {
  if (!isRoot) {
    t.skip("needs root: network namespaces and tap devices");
    return;
  }
  installPackages(OVERLAY_PACKAGES);

  const lab = new Lab();
  const tmp = mkdtempSync(join(tmpdir(), "vfb-daemon-"));
  const procs: Proc[] = [];
  t.after(async () => {
    for (const p of procs) if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill("SIGTERM");
    await Promise.all(procs.map((p) => exitWithin(p, 15_000)));
    lab.destroy();
    rmSync(tmp, { recursive: true, force: true });
  });

  const nsA = lab.add();
  const nsB = lab.add();
  lab.link(nsA, "198.51.100.1/24", nsB, "198.51.100.2/24");
  const ips: Record<string, string> = { [nsA]: "198.51.100.1", [nsB]: "198.51.100.2" };
  assert.equal(lab.exec(nsB, ["ping", "-c1", "-W2", "198.51.100.1"]).status, 0, "underlay ping");

  // SMTP sink and registry in A's namespace.
  const mailDir = join(tmp, "mail");
  const sink = track(lab.spawn(nsA, [NODE, join(ROOT, "dist", "harness", "smtp-sink.js"), mailDir], { stdio: ["ignore", "pipe", "pipe"] }));
  procs.push(sink);
  assert.ok(await waitFor(() => /^\d+\n/.test(sink.out()), 15_000, 100), `smtp sink did not start: ${sink.err()}`);
  const smtpPort = Number(sink.out().trim());

  const regDir = join(tmp, "registry");
  const ca = makeCa("2001:db8:42::/48");
  spawnSync("mkdir", ["-p", regDir]);
  writeFileSync(join(regDir, "ca.crt"), ca.pem);
  writeFileSync(join(regDir, "ca.key"), ca.keyPem, { mode: 0o600 });
  const registry = track(lab.spawn(nsA, [
    NODE, BIN("vifibnet-registry"), "0", "--db", join(regDir, "registry.db"), "--ca", join(regDir, "ca.crt"),
    "--key", join(regDir, "ca.key"), "--mailhost", `127.0.0.1:${smtpPort}`,
  ], { stdio: ["ignore", "ignore", "pipe"] }));
  procs.push(registry);
  assert.ok(await waitFor(() => /listening on 0\.0\.0\.0:\d+/.test(registry.err()), 15_000, 100), `registry did not start: ${registry.err()}`);
  const regPort = Number(/listening on 0\.0\.0\.0:(\d+)/.exec(registry.err())![1]);

  // Both nodes join: --email, the token read from the caught mail and piped in.
  const tokenFor = (email: string): string | null => tokenInMailDir(mailDir, email);
  const dirs: Record<string, string> = {};
  for (const [ns, who] of [[nsA, "a"], [nsB, "b"]] as const) {
    const dir = join(tmp, `node-${who}`);
    dirs[ns] = dir;
    const email = `${who}@example.com`;
    const setup = track(lab.spawn(ns, [
      NODE, BIN("vifibnet-setup"), "--server", "198.51.100.1", "--port", String(regPort), "--dir", dir, "--email", email, "--no-boot",
    ], { stdio: ["pipe", "pipe", "pipe"] }));
    procs.push(setup);
    assert.ok(await waitFor(() => tokenFor(email) !== null && setup.out().includes("Please enter your token : "), 30_000, 100),
      `no token for ${email}: ${setup.out()} ${setup.err()}`);
    setup.proc.stdin!.end(tokenFor(email)! + "\n");
    const r = await exitWithin(setup, 30_000);
    assert.deepEqual(r, [0, null], `setup of ${who} failed: ${setup.err()}`);
  }

  const address = (ns: string): string => {
    const caPem = readFileSync(join(dirs[ns]!, "ca.pem"), "utf8");
    const cert = checkNodeCertificate(readFileSync(join(dirs[ns]!, "cert.crt"), "utf8"), caPem);
    return nodeAddress(caNetwork(caPem), cert.prefix!);
  };
  const addrA = address(nsA);
  const addrB = address(nsB);

  // The daemons, with the legacy flags. A advertises --ip; B, through the
  // legacy entry point when Python is there, gives none and learns its
  // external address from its tunnel's route-up (no UPnP gateway in its namespace: the fallback).
  const python = spawnSync("python3", ["--version"]).status === 0;
  const daemons: Record<string, Proc> = {};
  for (const ns of [nsA, nsB]) {
    const dir = dirs[ns]!;
    const log = join(dir, "log");
    spawnSync("mkdir", ["-p", log]);
    const prog = ns === nsB && python ? [join(ROOT, "compat", "vifibnet.py")] : [NODE, BIN("vifibnet")];
    const d = track(lab.spawn(ns, [
      ...prog, "--server", "198.51.100.1", "--server-port", String(regPort),
      ...(ns === nsA ? ["--ip", ips[ns]!, "1194", "udp"] : []), "--hello", "2", "--tunnel-refresh", "5", "--peers-db-refresh", "5",
      "--connection-count", "2", "-s", dir, "-l", log, "-v", "3",
      "--ca", join(dir, "ca.pem"), "--cert", join(dir, "cert.crt"), "--dh", join(dir, "dh2048.pem"),
      "--", "--key", join(dir, "cert.key"),
    ], { stdio: ["ignore", "ignore", "pipe"] }));
    procs.push(d);
    daemons[ns] = d;
  }

  const diagnostics = (): string => [nsA, nsB].map((ns) => {
    const log = join(dirs[ns]!, "log");
    let files = "";
    try {
      for (const f of readdirSync(log)) files += `--- ${f}\n${readFileSync(join(log, f), "utf8").split("\n").slice(-15).join("\n")}\n`;
    } catch {
      // no logs
    }
    return `=== ${ns} daemon stderr:\n${daemons[ns]!.err()}\n${files}` +
      `routes:\n${lab.exec(ns, ["ip", "-6", "route"]).stdout}links: ${lab.links(ns).join(" ")}\n`;
  }).join("\n");

  const pinged = await waitFor(() => {
    for (const d of Object.values(daemons)) if (d.proc.exitCode !== null) return true; // fail fast below
    return lab.exec(nsA, ["ping", "-6", "-c1", "-W1", addrB], 5_000).status === 0;
  }, 90_000, 1000);
  for (const [ns, d] of Object.entries(daemons)) assert.equal(d.proc.exitCode, null, `daemon in ${ns} exited early:\n${diagnostics()}`);
  assert.ok(pinged, `A could not ping B (${addrB}) over the overlay:\n${diagnostics()}`);
  assert.equal(lab.exec(nsB, ["ping", "-6", "-c1", "-W2", addrA]).status, 0, `B could not ping A (${addrA})`);
  // B's only peer, A, reports B's address: believed after two tunnel refreshes
  // (lib/advertise.ts), as `vifibnet status` (here through the legacy entry point) shows.
  const statusB = (): { advertised: { addresses: string | null; source: string } } | null => {
    const r = spawnSync(python ? join(ROOT, "compat", "vifibnet.py") : NODE, [...(python ? [] : [BIN("vifibnet")]), "status", "-s", dirs[nsB]!, "--json"], { encoding: "utf8", timeout: 15_000 });
    return r.status === 0 ? JSON.parse(r.stdout) : null;
  };
  let advertised: unknown = null;
  assert.ok(await waitFor(() => {
    advertised = statusB()?.advertised ?? null;
    return (advertised as { addresses: string | null } | null)?.addresses === "198.51.100.2,1194,udp";
  }, 30_000), `B did not learn its external address: ${JSON.stringify(advertised)}\n${daemons[nsB]!.err()}`);
  assert.equal(statusB()!.advertised.source, "peers");
  const tunnels = [nsA, nsB].flatMap((ns) => lab.links(ns).filter((l) => /^client\d+$/.test(l)));
  assert.ok(tunnels.length >= 1, "a client tunnel interface exists");

  if (process.env["VFB_DEBUG"]) diagnostics().split("\n").forEach((l) => t.diagnostic(l));

  // SIGTERM: exit 0, nothing left behind.
  for (const d of Object.values(daemons)) d.proc.kill("SIGTERM");
  for (const [ns, d] of Object.entries(daemons)) {
    const r = await exitWithin(d, 30_000);
    assert.deepEqual(r, [0, null], `daemon in ${ns} did not exit 0 on SIGTERM:\n${d.err()}`);
  }
  if (process.env["VFB_DEBUG"]) t.diagnostic(Object.values(daemons).map((d) => d.err()).join("\n"));
  for (const ns of [nsA, nsB]) {
    const left = lab.processes(ns).filter((p) => p.comm === "openvpn" || p.comm === "babeld");
    assert.deepEqual(left, [], `processes left in ${ns}`);
    const taps = lab.links(ns).filter((l) => /^(vifibnet\d*|client\d+)$/.test(l));
    assert.deepEqual(taps, [], `tap interfaces left in ${ns}`);
    assert.ok(!readdirSync(dirs[ns]!).includes("vifibnet.babeld.pid"), "babeld removed its pid file");
    assert.ok(!readdirSync(dirs[ns]!).includes("vifibnet.sock"), "the daemon removed its control socket");
  }
});
