// Daemon benchmark (npm run bench:daemon, as root): resident memory and idle
// CPU of bin/vifibnet with 6 client tunnels. Targets: <= 60 MB resident and
// <= 0.5 % of one core.
//
// Seven nodes, each in its own network namespace, plus a hub namespace whose
// bridge joins them on 198.51.100.0/24 (hub 198.51.100.1, nodes .11 to .17);
// the registry and an SMTP sink run in the hub. Every node joins with
// vifibnet-setup (--email, the token taken from the caught mail). Nothing
// outside the namespaces is touched.
//
//   servers   6 nodes, --connection-count 12 (OpenVPN --max-clients 12), a
//             --tunnel-refresh of an hour: their only tunnel refresh runs at
//             startup, before they know any peer, so they open no tunnel of
//             their own and only serve.
//   measured  1 node, --connection-count 12 (wanted = 6 client tunnels).
//             Warm-up run: --hello 4, --tunnel-refresh 5, --peers-db-refresh 5,
//             --refresh-rate 0, until it has 6 client tunnels up (so its
//             peers.db holds the 6 servers and each is known to work). Then it
//             is stopped (SIGTERM) and started again with --tunnel-refresh and
//             --peers-db-refresh of an hour: its startup refresh reopens the 6
//             tunnels from peers.db, and nothing is scheduled during the
//             window: this is the idle daemon. (The daemon cannot change its
//             refresh interval while running, hence the restart.)
//
// Once the measured run has clients client1..client6 up (interface up, set by
// the OpenVPN --up hook after the TLS handshake; bounded wait) and --settle
// seconds have passed, the daemon process itself (the node process, not its
// children) is measured: VmRSS and VmHWM from /proc/PID/status (RSS sampled
// every second through the window, the maximum kept and checked against
// the target; VmHWM, the peak since startup, is checked too but does not
// fail the run), CPU = delta of utime+stime (all threads) from
// /proc/PID/stat over --window seconds, as % of one core. A bare Node process
// started alongside gives the floor that Node itself costs. Exit status 1 when
// a target is missed or the tunnels changed during the window.
// Its OpenVPN and babeld children are measured the same way and printed
// separately, for information. Namespaces and every process in them are
// removed on every exit, Ctrl-C included; every wait is bounded.
//
// Every node is given --ip, except the measured one with --no-ip: it then
// tries UPnP (which loads @achingbrain/nat-port-mapper; there is no gateway
// here, so discovery fails) and learns its address from its tunnels.
//
// Usage: node dist/bench/daemon.js [--window S (60)] [--settle S (10)] [--hello S (4)] [--no-ip]

import { ChildProcess, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Lab, waitFor } from "../harness/netns";
import { BIN, NODE, ROOT } from "../harness/paths";
import { makeCa } from "../harness/pki";
import { tokenInMailDir } from "../harness/smtp-sink";

const TARGET_RSS_MB = 60;
const TARGET_CPU_PCT = 0.5;
const TUNNELS = 6;
const SERVERS = 6;
const HUB_IP = "198.51.100.1";
const nodeIp = (i: number): string => `198.51.100.${11 + i}`;
const LONG_REFRESH = "3600";

function argNumber(flag: string, dflt: number): number {
  const at = process.argv.indexOf(flag);
  if (at < 0) return dflt;
  const n = Number(process.argv[at + 1]);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag} takes a positive number of seconds`);
  return n;
}

interface Proc {
  proc: ChildProcess;
  out: () => string;
  err: () => string;
}

function track(proc: ChildProcess): Proc {
  let out = "";
  let err = "";
  proc.stdout?.setEncoding("utf8").on("data", (c: string) => (out += c));
  proc.stderr?.setEncoding("utf8").on("data", (c: string) => (err = (err + c).slice(-20_000)));
  return { proc, out: () => out, err: () => err };
}

const running = (p: Proc): boolean => p.proc.exitCode === null && p.proc.signalCode === null;

/** Resolves with the exit code once the process has exited, SIGKILLing it after `ms`; null on timeout. */
async function exitWithin(p: Proc, ms: number): Promise<number | null> {
  if (!running(p)) return p.proc.exitCode;
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([
    once(p.proc, "exit").then(([code]) => code as number | null),
    new Promise<"timeout">((res) => (timer = setTimeout(() => res("timeout"), ms))),
  ]);
  clearTimeout(timer);
  if (r === "timeout") {
    p.proc.kill("SIGKILL");
    return null;
  }
  return r;
}

function ip(args: string[]): void {
  const r = spawnSync("ip", args, { encoding: "utf8", timeout: 15_000 });
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")}: ${(r.stderr ?? "").trim()}`);
}

// ---------------------------------------------------------------------------
// /proc

const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

/** utime + stime of a process (all its threads), in seconds; null when it is gone. */
function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

/** A /proc/PID/status field in kB (VmRSS, VmHWM...), or null. */
function statusKb(pid: number, field: string): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Proportional set size from /proc/PID/smaps_rollup in kB (shared pages split among their users), or null. */
function pssKb(pid: number): number | null {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Direct children of `pid` with their command names. */
function childrenOf(pid: number): Array<{ pid: number; comm: string }> {
  const out: Array<{ pid: number; comm: string }> = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push({ pid: Number(d), comm: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")) });
    } catch {
      // gone
    }
  }
  return out;
}

/** Client tunnel interfaces of `ns` that are up (the OpenVPN --up hook sets them up once connected). */
function clientsUp(ns: string): string[] {
  const r = spawnSync("ip", ["-n", ns, "-o", "link", "show", "up"], { encoding: "utf8", timeout: 15_000 });
  return (r.stdout ?? "").split("\n").map((l) => /^\d+:\s+(client\d+)[:@]/.exec(l)?.[1]).filter((n): n is string => n !== undefined);
}

const mb = (kb: number): string => (kb / 1024).toFixed(1);

// ---------------------------------------------------------------------------

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("needs root (network namespaces, tap devices)");
  const windowS = argNumber("--window", 60);
  const settleS = argNumber("--settle", 10);
  const hello = String(argNumber("--hello", 4));
  const noIp = process.argv.includes("--no-ip");

  const tmp = mkdtempSync(path.join(os.tmpdir(), "vifibnet-bench-daemon-"));
  const lab = new Lab(); // its handlers tear the namespaces down on exit, Ctrl-C and SIGTERM
  process.on("exit", () => rmSync(tmp, { recursive: true, force: true })); // after the Lab's: processes first
  // Whatever happens, the whole run is bounded.
  const watchdog = setTimeout(() => {
    console.error("bench/daemon: took too long; tearing down");
    lab.destroy();
    process.exit(1);
  }, (windowS + settleS + 600) * 1000);
  watchdog.unref();

  try {
    // The underlay: a hub namespace with a bridge, one veth per node.
    const hub = lab.add();
    ip(["-n", hub, "link", "add", "br0", "type", "bridge"]);
    ip(["-n", hub, "addr", "add", `${HUB_IP}/24`, "dev", "br0"]);
    ip(["-n", hub, "link", "set", "br0", "up"]);
    const nodes: string[] = [];
    for (let i = 0; i <= SERVERS; i++) {
      const ns = lab.add();
      nodes.push(ns);
      ip(["-n", hub, "link", "add", `v${i}`, "type", "veth", "peer", "name", "eth0", "netns", ns]);
      ip(["-n", hub, "link", "set", `v${i}`, "master", "br0", "up"]);
      ip(["-n", ns, "addr", "add", `${nodeIp(i)}/24`, "dev", "eth0"]);
      ip(["-n", ns, "link", "set", "eth0", "up"]);
    }
    const measuredNs = nodes[SERVERS]!;
    if (!(await waitFor(() => nodes.every((ns) => lab.exec(ns, ["ping", "-c1", "-W1", HUB_IP], 5_000).status === 0), 15_000, 500)))
      throw new Error("underlay: a node cannot ping the hub");

    // SMTP sink and registry in the hub.
    const mailDir = path.join(tmp, "mail");
    const sink = track(lab.spawn(hub, [NODE, path.join(ROOT, "dist", "harness", "smtp-sink.js"), mailDir], { stdio: ["ignore", "pipe", "pipe"] }));
    if (!(await waitFor(() => /^\d+\n/.test(sink.out()), 15_000, 100))) throw new Error(`smtp sink did not start: ${sink.err()}`);
    const smtpPort = Number(sink.out().trim());
    const regDir = path.join(tmp, "registry");
    mkdirSync(regDir);
    const ca = makeCa("2001:db8:42::/48");
    writeFileSync(path.join(regDir, "ca.crt"), ca.pem);
    writeFileSync(path.join(regDir, "ca.key"), ca.keyPem, { mode: 0o600 });
    const registry = track(lab.spawn(hub, [
      NODE, BIN("vifibnet-registry"), "0", "--db", path.join(regDir, "registry.db"), "--ca", path.join(regDir, "ca.crt"),
      "--key", path.join(regDir, "ca.key"), "--mailhost", `127.0.0.1:${smtpPort}`,
    ], { stdio: ["ignore", "ignore", "pipe"] }));
    if (!(await waitFor(() => /listening on 0\.0\.0\.0:\d+/.test(registry.err()), 15_000, 100))) throw new Error(`registry did not start: ${registry.err()}`);
    const regPort = /listening on 0\.0\.0\.0:(\d+)/.exec(registry.err())![1]!;

    // Every node joins.
    const tokenFor = (email: string): string | null => tokenInMailDir(mailDir, email);
    const dirs: string[] = [];
    for (let i = 0; i < nodes.length; i++) {
      const dir = path.join(tmp, `node-${i}`);
      dirs.push(dir);
      const email = `n${i}@example.com`;
      const setup = track(lab.spawn(nodes[i]!, [
        NODE, BIN("vifibnet-setup"), "--server", HUB_IP, "--port", regPort, "--dir", dir, "--email", email, "--no-boot",
      ], { stdio: ["pipe", "pipe", "pipe"] }));
      if (!(await waitFor(() => tokenFor(email) !== null && setup.out().includes("Please enter your token : "), 30_000, 100)))
        throw new Error(`no token for ${email}: ${setup.out()} ${setup.err()}`);
      setup.proc.stdin!.end(tokenFor(email)! + "\n");
      const code = await exitWithin(setup, 30_000);
      if (code !== 0) throw new Error(`setup of node ${i} failed (${code}): ${setup.err()}`);
      mkdirSync(path.join(dir, "log"));
    }

    const daemon = (i: number, extra: string[]): Proc => {
      const dir = dirs[i]!;
      const ipArgs = i === SERVERS && noIp ? [] : ["--ip", nodeIp(i), "1194", "udp"];
      return track(lab.spawn(nodes[i]!, [
        NODE, BIN("vifibnet"), "--server", HUB_IP, "--server-port", regPort, ...ipArgs,
        "--hello", hello, "--connection-count", "12", ...extra, "-s", dir, "-l", path.join(dir, "log"), "-v", "2",
        "--ca", path.join(dir, "ca.pem"), "--cert", path.join(dir, "cert.crt"), "--dh", path.join(dir, "dh2048.pem"),
        "--", "--key", path.join(dir, "cert.key"),
      ], { stdio: ["ignore", "ignore", "pipe"] }));
    };
    const servers: Proc[] = [];
    for (let i = 0; i < SERVERS; i++) servers.push(daemon(i, ["--tunnel-refresh", LONG_REFRESH, "--peers-db-refresh", LONG_REFRESH]));
    const checkServers = (): void => {
      servers.forEach((s, i) => {
        if (!running(s)) throw new Error(`server node ${i} exited (${s.proc.exitCode}): ${s.err()}`);
      });
    };

    // Warm-up run of the measured node: short refreshes until 6 tunnels are up.
    const t0 = Date.now();
    let measured = daemon(SERVERS, ["--tunnel-refresh", "5", "--peers-db-refresh", "5", "--refresh-rate", "0"]);
    const upWithin = async (p: Proc, ms: number): Promise<boolean> =>
      waitFor(() => {
        checkServers();
        if (!running(p)) throw new Error(`the measured daemon exited (${p.proc.exitCode}): ${p.err()}`);
        return clientsUp(measuredNs).length >= TUNNELS;
      }, ms, 500);
    if (!(await upWithin(measured, 120_000)))
      throw new Error(`warm-up: ${clientsUp(measuredNs).length} of ${TUNNELS} tunnels up after 120 s:\n${measured.err()}`);
    const warmS = (Date.now() - t0) / 1000;

    // The measured run: the same node restarted with hour-long refreshes.
    measured.proc.kill("SIGTERM");
    if ((await exitWithin(measured, 30_000)) !== 0) throw new Error(`the warm-up daemon did not stop cleanly:\n${measured.err()}`);
    if (!(await waitFor(() => lab.processes(measuredNs).length === 0 && clientsUp(measuredNs).length === 0, 15_000, 200)))
      throw new Error("the warm-up daemon left processes or interfaces behind");
    const t1 = Date.now();
    const bare = track(lab.spawn(hub, [NODE, "-e", "setInterval(() => {}, 1e9)"], { stdio: ["ignore", "ignore", "pipe"] }));
    measured = daemon(SERVERS, ["--tunnel-refresh", LONG_REFRESH, "--peers-db-refresh", LONG_REFRESH]);
    if (!(await upWithin(measured, 90_000)))
      throw new Error(`measured run: ${clientsUp(measuredNs).length} of ${TUNNELS} tunnels up after 90 s:\n${measured.err()}`);
    const upS = (Date.now() - t1) / 1000;
    await new Promise((r) => setTimeout(r, settleS * 1000));

    // For scale: a bare Node process (a timer, nothing loaded) started at the same time as the measured run.
    const pid = measured.proc.pid!;
    const kids = childrenOf(pid).filter((c) => c.comm === "openvpn" || c.comm === "babeld");
    const clientsBefore = clientsUp(measuredNs);
    console.error(`bench/daemon: ${clientsBefore.length} tunnels up ${upS.toFixed(1)} s after start (warm-up: ${warmS.toFixed(1)} s); measuring pid ${pid} for ${windowS} s`);
    const cpu0 = cpuSeconds(pid)!;
    const kidCpu0 = new Map(kids.map((k) => [k.pid, cpuSeconds(k.pid) ?? 0]));
    const tw0 = process.hrtime.bigint();
    let rssMax = 0;
    let rssMin = Infinity;
    const kidRssMax = new Map<number, number>();
    const cpuSamples: number[] = [];
    const sample = (): void => {
      cpuSamples.push(cpuSeconds(pid) ?? NaN);
      const rss = statusKb(pid, "VmRSS");
      if (rss !== null) {
        rssMax = Math.max(rssMax, rss);
        rssMin = Math.min(rssMin, rss);
      }
      for (const k of kids) kidRssMax.set(k.pid, Math.max(kidRssMax.get(k.pid) ?? 0, statusKb(k.pid, "VmRSS") ?? 0));
    };
    sample();
    const deadline = Date.now() + windowS * 1000;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, Math.min(1_000, Math.max(0, deadline - Date.now()))));
      if (!running(measured)) throw new Error(`the measured daemon exited during the window: ${measured.err()}`);
      sample();
    }
    const cpu1 = cpuSeconds(pid)!;
    const elapsed = Number(process.hrtime.bigint() - tw0) / 1e9;
    const hwm = statusKb(pid, "VmHWM")!;
    const anon = statusKb(pid, "RssAnon");
    const file = statusKb(pid, "RssFile");
    const bareRss = bare.proc.pid === undefined ? null : statusKb(bare.proc.pid, "VmRSS");
    const bareAnon = bare.proc.pid === undefined ? null : statusKb(bare.proc.pid, "RssAnon");
    const pss = pssKb(pid);
    const clientsAfter = clientsUp(measuredNs);
    const kidsAfter = childrenOf(pid).filter((c) => c.comm === "openvpn" || c.comm === "babeld");
    const cpuPct = ((cpu1 - cpu0) / elapsed) * 100;

    const kidRow = (name: string, group: Array<{ pid: number; comm: string }>): string => {
      const rss = group.reduce((s, k) => s + (kidRssMax.get(k.pid) ?? 0), 0);
      const cpu = group.reduce((s, k) => s + ((cpuSeconds(k.pid) ?? 0) - (kidCpu0.get(k.pid) ?? 0)), 0);
      return `| ${name.padEnd(34)} | ${String(group.length).padStart(5)} | ${mb(rss).padStart(8)} | ${((cpu / elapsed) * 100).toFixed(3).padStart(9)} |`;
    };
    const vpn = kids.filter((k) => k.comm === "openvpn");
    const babeld = kids.filter((k) => k.comm === "babeld");

    console.log(`vifibnet daemon with ${clientsBefore.length} client tunnels (${clientsBefore.join(" ")}), idle (refreshes every ${LONG_REFRESH} s, --hello ${hello}, ${noIp ? "no --ip: UPnP tried" : "--ip given"}),`);
    console.log(`window ${elapsed.toFixed(1)} s after ${settleS} s settling; ${os.cpus().length} CPUs, Node ${process.version}, CLK_TCK ${CLK_TCK}`);
    console.log("");
    console.log(`daemon: the node process, pid ${pid}`);
    console.log("| daemon                             | measured               | target     |        |");
    console.log("| ---------------------------------- | ---------------------- | ---------- | ------ |");
    const rssOk = rssMax / 1024 <= TARGET_RSS_MB;
    const cpuOk = cpuPct <= TARGET_CPU_PCT;
    console.log(`| ${"resident memory, VmRSS (max)".padEnd(34)} | ${(mb(rssMax) + " MB").padEnd(22)} | <= ${TARGET_RSS_MB} MB   | ${rssOk ? "MET" : "MISSED"} |`);
    console.log(`| ${"VmRSS range over the window".padEnd(34)} | ${(mb(rssMin) + "-" + mb(rssMax) + " MB").padEnd(22)} |            |        |`);
    const hwmOk = hwm / 1024 <= TARGET_RSS_MB;
    console.log(`| ${"peak resident since start, VmHWM".padEnd(34)} | ${(mb(hwm) + " MB").padEnd(22)} | <= ${TARGET_RSS_MB} MB   | ${hwmOk ? "MET" : "MISSED"} |`);
    const kbOr = (kb: number | null): string => (kb === null ? "n/a" : mb(kb) + " MB");
    console.log(`| ${"  of which anonymous, RssAnon".padEnd(34)} | ${kbOr(anon).padEnd(22)} |            |        |`);
    console.log(`| ${"  of which file-backed, RssFile".padEnd(34)} | ${kbOr(file).padEnd(22)} |            |        |`);
    console.log(`| ${"bare node -e 'setInterval', VmRSS".padEnd(34)} | ${(kbOr(bareRss) + " (anon " + kbOr(bareAnon) + ")").padEnd(22)} |            |        |`);
    console.log(`| ${"proportional, Pss (smaps_rollup)".padEnd(34)} | ${(pss === null ? "n/a" : mb(pss) + " MB").padEnd(22)} |            |        |`);
    console.log(`| ${"CPU, (utime+stime) / window".padEnd(34)} | ${(cpuPct.toFixed(3) + " % of a core").padEnd(22)} | <= ${TARGET_CPU_PCT} %   | ${cpuOk ? "MET" : "MISSED"} |`);
    console.log(`| ${"CPU time in the window".padEnd(34)} | ${((cpu1 - cpu0).toFixed(2) + " s").padEnd(22)} |            |        |`);
    console.log("");
    console.log("| children (information only)        | procs | VmRSS MB | CPU %     |");
    console.log("| ---------------------------------- | ----: | -------: | --------: |");
    console.log(kidRow("openvpn (1 server + clients)", vpn));
    console.log(kidRow("babeld", babeld));
    console.log("");
    const stable = clientsAfter.length === clientsBefore.length && kidsAfter.length === kids.length && kidsAfter.every((k) => kidCpu0.has(k.pid));
    const slices: string[] = [];
    for (let i = 10; i < cpuSamples.length; i += 10) slices.push(((cpuSamples[i]! - cpuSamples[i - 10]!) * 1000).toFixed(0));
    console.log(`daemon CPU ms per 10 s slice of the window: ${slices.join(" ")}`);
    console.log(`tunnels up at the end: ${clientsAfter.length}; same ${kids.length} children throughout: ${stable ? "yes" : "NO"}`);
    console.log(`targets: memory ${rssOk ? "MET" : "MISSED"} (startup peak ${hwmOk ? "within it too" : "ABOVE it"}), idle CPU ${cpuOk ? "MET" : "MISSED"}`);
    if (!rssOk || !cpuOk || !stable) process.exitCode = 1;

    // Stop the measured daemon as an operator would (it must exit 0), then the rest.
    measured.proc.kill("SIGTERM");
    const code = await exitWithin(measured, 30_000);
    if (code !== 0) console.error(`bench/daemon: the measured daemon exited with ${code} on SIGTERM`);
  } finally {
    clearTimeout(watchdog);
    lab.destroy();
  }
}

main().catch((e: unknown) => {
  console.error(`bench/daemon: ${(e as Error).message}`);
  process.exit(1);
});
