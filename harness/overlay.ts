// A real vifibnet network on one machine, in a few lines:
//
//   const net = await Overlay.create({ nodes: 6, hello: 2, connectionCount: 4 });
//   await net.waitAllPairs(60_000);
//   const s = await net.status(0);      // what node 0's daemon reports (vifibnet status)
//   await net.destroy();
//
// (or, in a test, scenario() of ./scenario.ts). The topology, every box a
// network namespace with a unique name (./netns.ts):
//
//                        +------------------------------------------+
//                        | hub                                      |
//                        |   vifibnet-registry, SMTP sink           |
//                        |   bridge "internet" 198.51.100.1/24      |
//                        +---v0-----------v1----------------vK------+
//                            |            |                 |
//                       eth0 |       eth0 |            eth1 | 192.0.3.(11+K)
//                 .11 +------+---+ .12 +--+--------+  +-----+---------------+
//                     | node 0   |     | node 1    |  | router of node K    |
//                     | vifibnet |     | vifibnet  |  | nftables masquerade |
//                     | openvpn  | ... | openvpn   |  | miniupnpd           |
//                     | babeld   |     | babeld    |  +-----+---------------+
//                     +----------+     +-----------+        | eth0 192.0.2.1
//                                                           |
//                                                      eth0 | 192.0.2.10
//                                                     +-----+-----+
//                                                     | node K    |  behindNat: [K]
//                                                     | vifibnet  |  (no --ip: UPnP)
//                                                     +-----------+
//
// Node i is 198.51.100.(11+i) on the bridge ("eth0", its veth "vi" in the
// hub). The registry and an SMTP sink run in the hub; every node joins with
// bin/vifibnet-setup (--email, the token read from the caught mail) and runs
// bin/vifibnet with the legacy flags (--ip <addr> 1194 udp, -s, -l, --ca,
// --cert, --dh, -- --key). What a daemon does is read from its status
// socket, never from its log lines. All traffic stays inside the namespaces,
// every wait is bounded, and the Lab tears everything down on destroy(),
// process exit and signals.

import { ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readStatus } from "../lib/daemon/control";
import type { Status } from "../lib/daemon/status";
import { caNetwork, checkNodeCertificate } from "../lib/utils/x509";
import { nodeAddress } from "../lib/utils/address";
import { Lab, natGateway, waitFor } from "./netns";
import { makeCa } from "./pki";
import { BIN, NODE, ROOT } from "./paths";
import { tokenInMailDir } from "./smtp-sink";

export const HUB_IP = "198.51.100.1";
export const underlayIp = (i: number): string => `198.51.100.${11 + i}`;
/** Nodes the underlay holds: 198.51.100.11 to .254. */
export const MAX_NODES = 244;
/** Outside address of node i's NAT router (behindNat). */
export const routerIp = (i: number): string => `192.0.3.${11 + i}`;
export const NAT_LAN_IP = "192.0.2.10";
/** The bridge's IPv6 subnet, for nodes whose underlay has IPv6 (option underlay). */
export const HUB_IP6 = "2001:db8:ffff::1";
export const underlayIp6 = (i: number): string => `2001:db8:ffff::${(0x11 + i).toString(16)}`;

/** What node i's link to the bridge carries: IPv4 (198.51.100.0/24), IPv6 (2001:db8:ffff::/64), or both. */
export type Underlay = "ipv4" | "ipv6" | "dual";

export interface OverlayOptions {
  nodes: number;
  /** babel hello interval, s (OpenVPN --ping-exit is 4 times it). Default 2. */
  hello?: number;
  /** --connection-count: client tunnels wanted = ceil(n / 2). Default 4. */
  connectionCount?: number;
  /** --tunnel-refresh, s. Default 5. */
  tunnelRefresh?: number;
  /** --peers-db-refresh, s. Default 5. */
  peersDbRefresh?: number;
  /** --refresh-rate. Default 0: no tunnel is replaced once the wanted count is reached (no churn). */
  refreshRate?: number;
  /** -v. Default 3. */
  verbose?: number;
  /** Extra daemon arguments, before "--". */
  extraArgs?: string[];
  /** Nodes whose daemon runs without --ip (and no gateway: they learn their address from peers). */
  noIp?: number[];
  /** Extra registry arguments (--strict-signed...). */
  registryArgs?: string[];
  /** Start the daemons in create() (default true). */
  start?: boolean;
  /**
   * Nodes behind a NAT router (default none): node i sits on a LAN
   * 192.0.2.0/24 (192.0.2.10, its "eth0") of its own router namespace, which
   * masquerades (nftables) to the "internet" bridge and runs miniupnpd; the
   * node's daemon runs without --ip (UPnP). The router's outside address is
   * 192.0.3.<11+i>/24, not in 198.51.100.0/24: miniupnpd refuses to forward
   * ports on a documentation range. On-link routes join both subnets on the
   * bridge (needs nftables, miniupnpd-nftables).
   */
  behindNat?: number[];
  /**
   * Each node's underlay (default "ipv4" for all): an "ipv6" node has no
   * IPv4 address, reaches the registry at HUB_IP6 and advertises
   * `--ip <its IPv6> 1194 udp`; a "dual" node advertises both addresses.
   * Not with behindNat.
   */
  underlay?: Underlay[];
}

export interface Proc {
  proc: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<unknown>;
}

function track(proc: ChildProcess): Proc {
  let out = "";
  let err = "";
  proc.stdout?.setEncoding("utf8").on("data", (c: string) => (out += c));
  proc.stderr?.setEncoding("utf8").on("data", (c: string) => (err = (err + c).slice(-200_000)));
  const exited = once(proc, "exit").catch(() => undefined);
  return { proc, out: () => out, err: () => err, exited };
}

/** Tunnel states of a connected tunnel (lib/tunnel.ts TunnelState). */
export const CONNECTED: ReadonlySet<string> = new Set(["up", "retiring", "draining"]);

export const running = (p: Proc): boolean => p.proc.exitCode === null && p.proc.signalCode === null;

/** Exit code once the process has exited, at most `ms`; SIGKILL and null on timeout; null too when killed by a signal. */
async function exitWithin(p: Proc, ms: number): Promise<number | null> {
  if (running(p)) {
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([p.exited.then(() => "exited"), new Promise<"timeout">((res) => (timer = setTimeout(() => res("timeout"), ms)))]);
    clearTimeout(timer);
    if (r === "timeout") {
      p.proc.kill("SIGKILL");
      await Promise.race([p.exited, new Promise((res) => setTimeout(res, 2_000))]);
      return null;
    }
  }
  return p.proc.exitCode;
}

/** Runs a command, bounded, without blocking the event loop. */
function run(cmd: string[], timeoutMs: number): Promise<{ status: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd[0]!, cmd.slice(1), { stdio: ["ignore", "pipe", "ignore"] });
    let stdout = "";
    p.stdout!.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    p.on("error", () => {
      clearTimeout(timer);
      resolve({ status: null, stdout });
    });
    p.on("close", (code) => {
      clearTimeout(timer);
      resolve({ status: code, stdout });
    });
  });
}

export interface OverlayNode {
  index: number;
  ns: string;
  /** The node's overlay IPv6 address. */
  address: string;
  /** Its underlay IPv4 address (behind a NAT: its LAN address); its IPv6 one on an "ipv6" underlay. */
  ip: string;
  underlay: Underlay;
  /** The registry's address, as this node reaches it. */
  registryIp: string;
  /** What it advertises with --ip (none behind a NAT: UPnP). */
  advertised: Array<[ip: string, port: string, proto: string]>;
  /** Behind a NAT: the router's namespace and outside address; its miniupnpd. */
  nat?: { ns: string; ip: string; upnpd: Proc };
  dir: string;
  log: string;
  daemon: Proc | null;
}

export class Overlay {
  readonly lab = new Lab();
  readonly tmp = mkdtempSync(join(tmpdir(), "vfb-overlay-"));
  readonly nodes: OverlayNode[] = [];
  hub = "";
  registryPort = 0;
  registry: Proc | null = null;
  private readonly all: Proc[] = [];
  private destroyed = false;

  private constructor(readonly opts: Required<Omit<OverlayOptions, "start">>) {
    // Searchable, as a node's /etc/vifibnet is: the servers' client-connect
    // hook runs as nobody and reads STATE/vifibnet.revoked.
    chmodSync(this.tmp, 0o755);
    process.on("exit", () => rmSync(this.tmp, { recursive: true, force: true })); // after the Lab's handler
  }

  static async create(options: OverlayOptions): Promise<Overlay> {
    if (options.nodes > MAX_NODES) throw new Error(`${options.nodes} nodes: the underlay 198.51.100.0/24 holds at most ${MAX_NODES}`);
    const net = new Overlay({
      nodes: options.nodes, hello: options.hello ?? 2, connectionCount: options.connectionCount ?? 4,
      tunnelRefresh: options.tunnelRefresh ?? 5, peersDbRefresh: options.peersDbRefresh ?? 5,
      refreshRate: options.refreshRate ?? 0, verbose: options.verbose ?? 3, extraArgs: options.extraArgs ?? [],
      behindNat: options.behindNat ?? [], noIp: options.noIp ?? [], underlay: options.underlay ?? [], registryArgs: options.registryArgs ?? [],
    });
    try {
      await net.build();
      if (options.start !== false) {
        for (let i = 0; i < net.nodes.length; i++) net.startDaemon(i);
        await net.waitDaemons(30_000);
      }
    } catch (e) {
      await net.destroy();
      throw e;
    }
    return net;
  }

  private ip(args: string[]): void {
    const p = spawnSync("ip", args, { encoding: "utf8", timeout: 15_000 });
    if (p.status !== 0) throw new Error(`ip ${args.join(" ")}: ${(p.stderr ?? "").trim()}`);
  }

  private async build(): Promise<void> {
    const { lab } = this;
    this.hub = lab.add();
    this.ip(["-n", this.hub, "link", "add", "internet", "type", "bridge"]);
    this.ip(["-n", this.hub, "addr", "add", `${HUB_IP}/24`, "dev", "internet"]);
    this.ip(["-n", this.hub, "addr", "add", `${HUB_IP6}/64`, "dev", "internet", "nodad"]);
    this.ip(["-n", this.hub, "link", "set", "internet", "up"]);
    const nat = new Set(this.opts.behindNat);
    if (nat.size > 0) this.ip(["-n", this.hub, "route", "add", "192.0.3.0/24", "dev", "internet"]);
    for (let i = 0; i < this.opts.nodes; i++) {
      const ns = lab.add();
      const dir = join(this.tmp, `node-${i}`);
      if (nat.has(i)) {
        const router = lab.add();
        this.ip(["-n", this.hub, "link", "add", `v${i}`, "type", "veth", "peer", "name", "eth1", "netns", router]);
        this.ip(["-n", this.hub, "link", "set", `v${i}`, "master", "internet", "up"]);
        this.ip(["-n", router, "addr", "add", `${routerIp(i)}/24`, "dev", "eth1"]);
        this.ip(["-n", router, "link", "set", "eth1", "up"]);
        this.ip(["-n", router, "route", "add", "198.51.100.0/24", "dev", "eth1"]);
        lab.link(router, "192.0.2.1/24", ns, `${NAT_LAN_IP}/24`, "eth0");
        this.ip(["-n", ns, "route", "add", "default", "via", "192.0.2.1"]);
        const upnpd = this.natRouter(router, i);
        this.nodes.push({
          index: i, ns, address: "", ip: NAT_LAN_IP, underlay: "ipv4", registryIp: HUB_IP, advertised: [], dir, log: join(dir, "log"), daemon: null,
          nat: { ns: router, ip: routerIp(i), upnpd },
        });
        continue;
      }
      const underlay = this.opts.underlay[i] ?? "ipv4";
      this.ip(["-n", this.hub, "link", "add", `v${i}`, "type", "veth", "peer", "name", "eth0", "netns", ns]);
      this.ip(["-n", this.hub, "link", "set", `v${i}`, "master", "internet", "up"]);
      if (underlay !== "ipv6") this.ip(["-n", ns, "addr", "add", `${underlayIp(i)}/24`, "dev", "eth0"]);
      if (underlay !== "ipv4") this.ip(["-n", ns, "addr", "add", `${underlayIp6(i)}/64`, "dev", "eth0", "nodad"]);
      this.ip(["-n", ns, "link", "set", "eth0", "up"]);
      if (nat.size > 0) this.ip(["-n", ns, "route", "add", "192.0.3.0/24", "dev", "eth0"]);
      const ip = underlay === "ipv6" ? underlayIp6(i) : underlayIp(i);
      const advertised: OverlayNode["advertised"] = [
        ...(underlay !== "ipv6" ? [[underlayIp(i), "1194", "udp"] as [string, string, string]] : []),
        ...(underlay !== "ipv4" ? [[underlayIp6(i), "1194", "udp"] as [string, string, string]] : []),
      ];
      this.nodes.push({ index: i, ns, address: "", ip, underlay, registryIp: underlay === "ipv6" ? HUB_IP6 : HUB_IP, advertised, dir, log: join(dir, "log"), daemon: null });
    }
    for (const n of this.nodes)
      if (n.nat && !(await waitFor(() => n.nat!.upnpd.err().includes("HTTP listening"), 10_000, 100)))
        throw new Error(`miniupnpd of node ${n.index}'s router did not start:\n${n.nat.upnpd.err()}`);
    const underlayOk = await waitFor(async () =>
      (await Promise.all(this.nodes.map((n) => run(["ip", "netns", "exec", n.ns, "ping", "-c1", "-W1", n.registryIp], 5_000)))).every((r) => r.status === 0), 15_000, 300);
    if (!underlayOk) throw new Error("underlay: a node cannot ping the hub");

    // SMTP sink and registry in the hub.
    const mailDir = join(this.tmp, "mail");
    const sink = this.keep(track(lab.spawn(this.hub, [NODE, join(ROOT, "dist", "harness", "smtp-sink.js"), mailDir], { stdio: ["ignore", "pipe", "pipe"] })));
    if (!(await waitFor(() => /^\d+\n/.test(sink.out()), 15_000, 100))) throw new Error(`smtp sink did not start: ${sink.err()}`);
    const smtpPort = Number(sink.out().trim());
    const regDir = this.registryDir;
    mkdirSync(regDir);
    const ca = makeCa("2001:db8:42::/48");
    writeFileSync(join(regDir, "ca.crt"), ca.pem);
    writeFileSync(join(regDir, "ca.key"), ca.keyPem, { mode: 0o600 });
    const registry = this.keep(track(lab.spawn(this.hub, [
      NODE, BIN("vifibnet-registry"), "0", "--db", join(regDir, "registry.db"), "--ca", join(regDir, "ca.crt"),
      "--key", join(regDir, "ca.key"), "--mailhost", `127.0.0.1:${smtpPort}`, ...this.opts.registryArgs,
    ], { stdio: ["ignore", "ignore", "pipe"] })));
    this.registry = registry;
    if (!(await waitFor(() => /listening on 0\.0\.0\.0:\d+/.test(registry.err()), 15_000, 100))) throw new Error(`registry did not start: ${registry.err()}`);
    this.registryPort = Number(/listening on 0\.0\.0\.0:(\d+)/.exec(registry.err())![1]);

    const tokenFor = (email: string): string | null => tokenInMailDir(mailDir, email);
    // Every node joins; in parallel, each one bounded.
    await Promise.all(this.nodes.map(async (n) => {
      const email = `n${n.index}@example.com`;
      const setup = this.keep(track(lab.spawn(n.ns, [
        NODE, BIN("vifibnet-setup"), "--server", n.registryIp, "--port", String(this.registryPort), "--dir", n.dir, "--email", email, "--no-boot",
      ], { stdio: ["pipe", "pipe", "pipe"] })));
      if (!(await waitFor(() => tokenFor(email) !== null && setup.out().includes("Please enter your token : "), 30_000, 100)))
        throw new Error(`no token for ${email}: ${setup.out()} ${setup.err()}`);
      setup.proc.stdin!.end(tokenFor(email)! + "\n");
      const code = await exitWithin(setup, 60_000);
      if (code !== 0) throw new Error(`setup of node ${n.index} failed (${code}): ${setup.err()}`);
      mkdirSync(n.log, { recursive: true });
      const caPem = readFileSync(join(n.dir, "ca.pem"), "utf8");
      const cert = checkNodeCertificate(readFileSync(join(n.dir, "cert.crt"), "utf8"), caPem);
      n.address = nodeAddress(caNetwork(caPem), cert.prefix!);
    }));
  }

  /** A NAT gateway with miniupnpd in `router` (natGateway). */
  private natRouter(router: string, i: number): Proc {
    const dir = join(this.tmp, `router-${i}`);
    mkdirSync(dir);
    return this.keep(track(natGateway(this.lab, router, dir, String(10 + i).padStart(2, "0"))));
  }

  private keep(p: Proc): Proc {
    this.all.push(p);
    return p;
  }

  /**
   * Starts node i's daemon with the legacy flags, `extraArgs` after the
   * overlay's, and `openvpnArgs` after `-- --key ...` (no-op if it is running).
   */
  startDaemon(i: number, extraArgs: readonly string[] = [], openvpnArgs: readonly string[] = []): Proc {
    const n = this.nodes[i]!;
    if (n.daemon && running(n.daemon)) return n.daemon;
    const o = this.opts;
    n.daemon = this.keep(track(this.lab.spawn(n.ns, [
      NODE, BIN("vifibnet"), "--server", n.registryIp, "--server-port", String(this.registryPort),
      ...(o.noIp.includes(i) ? [] : n.advertised.flatMap((a) => ["--ip", ...a])),
      "--hello", String(o.hello), "--tunnel-refresh", String(o.tunnelRefresh), "--peers-db-refresh", String(o.peersDbRefresh),
      "--connection-count", String(o.connectionCount), "--refresh-rate", String(o.refreshRate), ...o.extraArgs, ...extraArgs,
      "-s", n.dir, "-l", n.log, "-v", String(o.verbose),
      "--ca", join(n.dir, "ca.pem"), "--cert", join(n.dir, "cert.crt"), "--dh", join(n.dir, "dh2048.pem"),
      "--", "--key", join(n.dir, "cert.key"), ...openvpnArgs,
    ], { stdio: ["ignore", "ignore", "pipe"] })));
    return n.daemon;
  }

  /** Waits (bounded) until every started daemon answers on its control socket; throws if one exits or never does. */
  async waitDaemons(timeoutMs: number): Promise<void> {
    const started = this.nodes.filter((n) => n.daemon !== null);
    const answering = new Set<number>();
    const ok = await waitFor(async () => {
      this.checkDaemons();
      await Promise.all(started.map(async (n) => (await this.status(n.index).then(() => true, () => false)) && answering.add(n.index)));
      return answering.size === started.length;
    }, timeoutMs, 100);
    if (!ok) throw new Error(`daemons not answering on their control socket after ${timeoutMs} ms: ${started.filter((n) => !answering.has(n.index)).map((n) => n.index).join(" ")}\n${this.diagnostics()}`);
  }

  /** SIGTERM to node i's daemon; its exit code (null: killed after 30 s, or by a signal). */
  async stopDaemon(i: number): Promise<number | null> {
    const d = this.nodes[i]!.daemon;
    if (!d) return null;
    if (running(d)) d.proc.kill("SIGTERM");
    return exitWithin(d, 30_000);
  }

  /** The registry's files: ca.crt, ca.key, registry.db. */
  get registryDir(): string {
    return join(this.tmp, "registry");
  }

  /** `vifibnet-registry COMMAND --db <its database> ARGS` (revoke, token, list...), bounded; it needs no namespace. */
  registryCommand(command: string, args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(NODE, [BIN("vifibnet-registry"), command, "--db", join(this.registryDir, "registry.db"), ...args], { encoding: "utf8", timeout: 30_000 });
    return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  }

  /** SIGHUP to the registry: it reads its CA again. */
  reloadRegistry(): void {
    if (this.registry && running(this.registry)) this.registry.proc.kill("SIGHUP");
  }

  /** SIGTERM to the registry; its exit code. */
  async stopRegistry(): Promise<number | null> {
    if (!this.registry) return null;
    if (running(this.registry)) this.registry.proc.kill("SIGTERM");
    return exitWithin(this.registry, 15_000);
  }

  /** Sets node i's underlay link (its veth, both ends) down. */
  cutUnderlay(i: number): void {
    this.ip(["-n", this.nodes[i]!.ns, "link", "set", "eth0", "down"]);
    this.ip(["-n", this.hub, "link", "set", `v${i}`, "down"]);
  }

  restoreUnderlay(i: number): void {
    this.ip(["-n", this.hub, "link", "set", `v${i}`, "up"]);
    this.ip(["-n", this.nodes[i]!.ns, "link", "set", "eth0", "up"]);
  }

  /** One ping6 from node i to node j's overlay address. */
  async ping(i: number, j: number, hopLimit?: number): Promise<boolean> {
    const ttl = hopLimit === undefined ? [] : ["-t", String(hopLimit)];
    const r = await run(["ip", "netns", "exec", this.nodes[i]!.ns, "ping", "-6", "-n", "-c1", "-W1", ...ttl, this.nodes[j]!.address], 5_000);
    return r.status === 0;
  }

  /**
   * Unordered pairs {i, j} (i < j) among `among` (default: every node) of
   * which the ping fails now, checked with at most `limit` pings at once.
   */
  async failingPairs(among: readonly number[] = this.nodes.map((n) => n.index), limit = 48): Promise<Array<[number, number]>> {
    const pairs: Array<[number, number]> = [];
    for (const i of among) for (const j of among) if (i < j) pairs.push([i, j]);
    const ok: boolean[] = [];
    let next = 0;
    await Promise.all(Array.from({ length: Math.min(limit, pairs.length) }, async () => {
      while (next < pairs.length) {
        const k = next++;
        ok[k] = await this.ping(pairs[k]![0], pairs[k]![1]);
      }
    }));
    return pairs.filter((_, k) => !ok[k]);
  }

  /**
   * Waits (bounded) until every node of `among` (default: all) pings every
   * other one's overlay address in the same round; returns the time taken in
   * ms. Throws with diagnostics on timeout, or as soon as a daemon has exited.
   */
  async waitAllPairs(timeoutMs: number, among?: readonly number[], everyMs = 500): Promise<number> {
    const t0 = Date.now();
    let failing: Array<[number, number]> = [];
    const ok = await waitFor(async () => {
      this.checkDaemons();
      failing = await this.failingPairs(among);
      return failing.length === 0;
    }, timeoutMs, everyMs);
    if (!ok) throw new Error(`not all pairs ping after ${timeoutMs} ms; failing: ${failing.map((p) => p.join("-")).join(" ")}\n${this.diagnostics()}`);
    return Date.now() - t0;
  }

  /** Throws if a started daemon has exited. */
  checkDaemons(): void {
    for (const n of this.nodes)
      if (n.daemon && !running(n.daemon))
        throw new Error(`daemon of node ${n.index} exited (${n.daemon.proc.exitCode ?? n.daemon.proc.signalCode}):\n${n.daemon.err().slice(-4000)}`);
  }

  /** Client tunnel interfaces of node i that are up (the OpenVPN --up hook sets them up once connected). */
  async clientsUp(i: number): Promise<string[]> {
    const r = await run(["ip", "-n", this.nodes[i]!.ns, "-o", "link", "show", "up"], 15_000);
    return r.stdout.split("\n").map((l) => /^\d+:\s+(client\d+)[:@]/.exec(l)?.[1]).filter((n): n is string => n !== undefined);
  }

  /** Node i's prefix (bit string, as peers.db and `vifibnet status` give it), from its certificate. */
  prefix(i: number): string {
    const n = this.nodes[i]!;
    return checkNodeCertificate(readFileSync(join(n.dir, "cert.crt"), "utf8"), readFileSync(join(n.dir, "ca.pem"), "utf8")).prefix!;
  }

  /** What node i's daemon reports through its control socket (`vifibnet status --json`). */
  status(i: number): Promise<Status> {
    return readStatus(this.nodes[i]!.dir);
  }

  /** Node i's client tunnels that are connected (up, retiring or draining), with the index of the peer node (-1: not one of ours). */
  async tunnelsUp(i: number): Promise<Array<{ iface: string; peer: number; prefix: string }>> {
    const prefixOf = new Map(this.nodes.map((n) => [this.prefix(n.index), n.index]));
    return (await this.status(i)).tunnels.filter((t) => CONNECTED.has(t.state))
      .map((t) => ({ iface: t.interface, prefix: t.prefix, peer: prefixOf.get(t.prefix) ?? -1 }));
  }

  /**
   * Unordered pairs "i-j" (i < j) of nodes joined by a connected client
   * tunnel, from the status of the nodes that run a daemon (a node without
   * one, such as a test's legacy node, appears only as a peer).
   */
  async directPairs(): Promise<Set<string>> {
    const pairs = new Set<string>();
    for (const n of this.nodes.filter((n) => n.daemon !== null && running(n.daemon)))
      for (const t of await this.tunnelsUp(n.index)) if (t.peer >= 0) pairs.add([n.index, t.peer].sort((a, b) => a - b).join("-"));
    return pairs;
  }

  /** Processes of node i's namespace, with their command names. */
  processes(i: number): Array<{ pid: number; comm: string }> {
    return this.lab.processes(this.nodes[i]!.ns);
  }

  links(i: number): string[] {
    return this.lab.links(this.nodes[i]!.ns);
  }

  /** Daemon stderr tails, log tails, routes and links of every node. */
  diagnostics(): string {
    return this.nodes.map((n) => {
      let files = "";
      try {
        for (const f of readdirSync(n.log)) files += `--- ${f}\n${readFileSync(join(n.log, f), "utf8").split("\n").slice(-8).join("\n")}\n`;
      } catch {
        // no logs
      }
      return `=== node ${n.index} (${n.address}) daemon stderr:\n${(n.daemon?.err() ?? "").split("\n").slice(-25).join("\n")}\n${files}` +
        `routes:\n${this.lab.exec(n.ns, ["ip", "-6", "route"]).stdout}links: ${this.lab.links(n.ns).join(" ")}\n`;
    }).join("\n");
  }

  /** Stops every daemon (SIGTERM, bounded), then everything else; deletes the namespaces and files. Idempotent. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    try {
      const live = this.all.filter(running);
      for (const p of live) p.proc.kill("SIGTERM");
      await Promise.all(live.map((p) => exitWithin(p, 15_000)));
    } finally {
      this.lab.destroy();
      rmSync(this.tmp, { recursive: true, force: true });
    }
  }
}
