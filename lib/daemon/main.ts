// vifibnet (and compat/vifibnet.py): the node daemon, legacy vifibnet.py's
// main loop. Checks everything it needs before starting anything, then runs
// one OpenVPN server per --pp, babeld, the peers DB refresh and the tunnel
// refresh; SIGTERM or SIGINT stops every child and exits 0.
//
// The policy is elsewhere and pure (lib/tunnel.ts, lib/peers-refresh.ts,
// lib/utils/routes.ts); this module observes the system, executes plans and
// owns the processes (./children.ts).

import { accessSync, constants as fsConstants, existsSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { delimiter, join, resolve } from "node:path";
import { PeersDb } from "../db";
import { PeersRefreshResult, runPeersRefresh } from "../peers-refresh";
import { babelRequest } from "../babel-control";
import {
  MAX_SOCKET_PATH, OpenvpnCommon, babelRestoreLines, babelRetireLines, babeldArgv, openvpnClientArgv, openvpnServerArgv,
} from "../plib";
import { RpcClient } from "../rpc-client";
import { declarationKey } from "../declaration";
import {
  CLIENT_INTERFACES, NO_TRAFFIC, Traffic, Tunnel, counterValue, planRefresh, planShutdown, updateTraffic, type RefreshStep,
} from "../tunnel";
import { Bits, PeerAddress, bitsToIpv6, formatAddressList, nodeAddress } from "../utils/address";
import { CertificateError, caNetwork, checkNodeCertificate } from "../utils/x509";
import { makeDirectory, readUserFile } from "../utils/files";
import { Logger, createLogger } from "../utils/log";
import { countRoutes, lanPeers } from "../utils/routes";
import { DISCOVERY_TIMEOUT_MS, Igd, PortForwarder, discoverIgd, withTimeout } from "../upnpigd";
import { DaemonConfig, ServerProto, parseDaemonArgs, progName } from "./args";
import { Child, EVENT_FD, killAllNow, liveChildren, stopAll } from "./children";

/** A startup check failed: printed as "prog: error: <message>", exit 1. */
export class StartupError extends Error {
  override name = "StartupError";
}

/** The hook scripts, shipped in bin/ (dist/lib/daemon → ../../../bin). */
export const HOOK_DIR = resolve(__dirname, "..", "..", "..", "bin");

/** Longest the removal of the UPnP mappings may delay the exit (discovery still running included). */
const UPNP_STOP_MS = DISCOVERY_TIMEOUT_MS + 5000;

const SBIN_DIRS = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

/** The absolute path of an executable on PATH (or an sbin directory), or null. */
export function findProgram(name: string, path: string = process.env["PATH"] ?? ""): string | null {
  for (const dir of [...path.split(delimiter).filter((d) => d !== ""), ...SBIN_DIRS]) {
    const file = join(dir, name);
    try {
      accessSync(file, fsConstants.X_OK);
      return file;
    } catch {
      // next
    }
  }
  return null;
}

/** Server device names: vifibnet, vifibnet1, vifibnet2... (the legacy gave them all one name). */
export function serverDevice(index: number): string {
  return index === 0 ? "vifibnet" : `vifibnet${index}`;
}

/** vifibnet.server.<proto>.log, with the port when several servers share the protocol. */
export function serverLogName(pp: DaemonConfig["pp"], index: number): string {
  const { port, proto } = pp[index]!;
  return pp.filter((p) => p.proto === proto).length > 1 ? `vifibnet.server.${proto}.${port}.log` : `vifibnet.server.${proto}.log`;
}

/** What we advertise for an external IPv4 learnt from a route-up: one item per server. */
export function addressesFor(ip: string, pp: DaemonConfig["pp"]): PeerAddress[] {
  return pp.map(({ port, proto }) => ({ ip, port, proto: proto === "udp" ? "udp" : "tcp-client" }));
}

export interface Identity {
  network: Bits;
  prefix: Bits;
  /** The node address, e.g. "2001:db8:42:5::". */
  address: string;
  sha1: boolean;
  caPath: string;
  certPath: string;
  dhPath: string;
  peersDbPath: string;
  openvpn: string;
  babeld: string;
}

/** Every check before anything starts (each failure a one-line StartupError). */
export function startupChecks(cfg: DaemonConfig, uid: number | undefined = process.getuid?.()): Identity {
  if (uid !== 0) throw new StartupError("must be run as root (it creates interfaces and routes)");
  const openvpn = findProgram("openvpn");
  if (openvpn === null) throw new StartupError("openvpn is not installed (apt-get install openvpn)");
  const babeld = findProgram("babeld");
  if (babeld === null) throw new StartupError("babeld is not installed (apt-get install babeld)");
  const read = (flag: string, path: string): string => {
    try {
      return readUserFile(flag, path);
    } catch (e) {
      throw new StartupError((e as Error).message);
    }
  };
  const caPem = read("--ca", cfg.ca);
  const certPem = read("--cert", cfg.cert);
  read("--dh", cfg.dh);
  let network: Bits;
  try {
    network = caNetwork(caPem);
  } catch (e) {
    throw new StartupError(`--ca ${cfg.ca}: not a vifibnet CA certificate (${(e as Error).message.split("\n")[0]})`);
  }
  let cert;
  try {
    cert = checkNodeCertificate(certPem, caPem);
  } catch (e) {
    if (e instanceof CertificateError) throw new StartupError(`--cert ${cfg.cert}: ${e.message} (--ca ${cfg.ca})`);
    throw e;
  }
  if (cert.prefix === null || network.length + cert.prefix.length > 128)
    throw new StartupError(`--cert ${cfg.cert}: its common name ${JSON.stringify(cert.commonName)} is not a vifibnet prefix ("<integer>/<length>")`);
  const peersDbPath = join(cfg.state, "peers.db");
  if (!existsSync(peersDbPath)) throw new StartupError(`${peersDbPath} does not exist: run vifibnet-setup first`);
  return {
    network, prefix: cert.prefix, address: nodeAddress(network, cert.prefix), sha1: cert.sha1,
    caPath: resolve(cfg.ca), certPath: resolve(cfg.cert), dhPath: resolve(cfg.dh), peersDbPath, openvpn, babeld,
  };
}

/** setTimeout for any number of milliseconds (Node's caps at 2^31-1). */
function longTimeout(fn: () => void, ms: number): { cancel(): void } {
  const MAX = 2 ** 31 - 1;
  let handle: NodeJS.Timeout;
  const arm = (left: number): void => {
    handle = setTimeout(() => (left > MAX ? arm(left - MAX) : fn()), Math.min(left, MAX));
  };
  arm(Math.max(0, ms));
  return { cancel: () => clearTimeout(handle) };
}

function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** rx + tx bytes of an interface, or null when it is not there. */
function interfaceBytes(iface: string): number | null {
  const rx = counterValue(readText(`/sys/class/net/${iface}/statistics/rx_bytes`));
  const tx = counterValue(readText(`/sys/class/net/${iface}/statistics/tx_bytes`));
  return rx === null || tx === null ? null : rx + tx;
}

/** Removes a babeld pid file left by a crash; refuses to start beside a running babeld using it. */
function clearStalePidFile(pidFile: string): void {
  const text = readText(pidFile).trim();
  if (!existsSync(pidFile)) return;
  const pid = Number(text);
  if (/^[0-9]+$/.test(text) && pid > 0) {
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch (e) {
      alive = (e as NodeJS.ErrnoException).code === "EPERM";
    }
    if (alive && readText(`/proc/${pid}/comm`).trim() === "babeld")
      throw new StartupError(`babeld (pid ${pid}) is already running with ${pidFile}: is another vifibnet using --state ${pidFile.replace(/\/[^/]*$/, "")}?`);
  }
  unlinkSync(pidFile);
}

interface TunnelEntry {
  tunnel: Tunnel;
  traffic: Traffic;
  child: Child;
  /** Retiring: when babel moves the routes off it (before the next refresh closes it). */
  drain?: NodeJS.Timeout;
}

/**
 * How long before a retired tunnel closes babel moves the routes off it, in
 * hello intervals: the peer drops us at our next hello (at once) and learns
 * the new cost from the IHUs that follow within two hellos; four leave a
 * margin. Not earlier: the replacement opened beside it comes up meanwhile.
 */
const DRAIN_HELLOS = 4;
/** A tunnel is judged weak only after this many hello intervals (and a refresh interval): babel must have routed over it. */
const SETTLE_HELLOS = 4;

export class Daemon {
  private readonly db: PeersDb;
  private readonly common: OpenvpnCommon;
  private readonly tunnels = new Map<string, TunnelEntry>();
  private readonly servers: Child[] = [];
  private babeld: Child | null = null;
  /** babeld's control socket, or null when its path is too long for one. */
  private babelSocket: string | null = null;
  /** Client interfaces whose babel parameters are a retiring tunnel's, to restore before reuse. */
  private readonly babelRetired = new Set<string>();
  private stopping = false;
  private stopPeers: (() => void) | null = null;
  private tunnelTimer: { cancel(): void } | null = null;
  private lan: Bits[] = [];
  /** Our advertised address list, or null while unknown. */
  private advertised: string | null;
  private externalIp: string | null = null;
  /** The UPnP port mappings (no --ip and a gateway found), and their setting up. */
  private upnp: PortForwarder<{ cancel(): void }> | null = null;
  private upnpStarting: Promise<void> | null = null;

  constructor(
    private readonly cfg: DaemonConfig, private readonly id: Identity, private readonly logger: Logger,
    private readonly discover: (timeoutMs: number, logger: Logger) => Promise<Igd | null> = discoverIgd,
  ) {
    this.db = PeersDb.open(id.peersDbPath);
    this.common = {
      hello: cfg.hello, verbose: cfg.verbose, ca: id.caPath, cert: id.certPath, openvpnArgs: cfg.openvpnArgs,
      hookDir: HOOK_DIR, eventFd: EVENT_FD,
    };
    this.advertised = cfg.address ? formatAddressList(cfg.address) : null;
  }

  private logPath(name: string): string {
    return join(this.cfg.log, name);
  }

  start(): void {
    const { cfg, id, logger } = this;
    makeDirectory(cfg.log);
    try {
      writeFileSync("/proc/sys/net/ipv6/conf/all/forwarding", "1\n");
    } catch (e) {
      logger.warn(`cannot enable IPv6 forwarding (sysctl net.ipv6.conf.all.forwarding=1): ${(e as Error).message}`);
    }
    if (id.sha1) logger.warn(`${cfg.cert} is signed with SHA-1 (a legacy registry's): peers accept it unless they run OpenVPN with a stricter --tls-cert-profile; renew it when the network's registry signs with SHA-256`);
    const reset = this.db.resetUsed();
    if (reset > 0) logger.log(3, `Marked ${reset} peer(s) free: the previous run's tunnels are gone`);
    logger.log(1, `Node address ${id.address}, network ${bitsToIpv6(id.network)}/${id.network.length}`);

    const subnet = `${id.address}/${id.network.length + id.prefix.length}`;
    cfg.pp.forEach(({ port, proto }, i) => {
      const dev = serverDevice(i);
      const argv = openvpnServerArgv(this.common, { dev, port, proto: proto as ServerProto, dh: id.dhPath, maxClients: cfg.connectionCount, address: subnet });
      const child = new Child(`server ${port}/${proto}`, id.openvpn, argv, {
        logPath: this.logPath(serverLogName(cfg.pp, i)),
        onEvent: (type, arg) => this.serverEvent(dev, type, arg),
        onExit: (s) => this.childDied(`OpenVPN server ${port}/${proto}`, s),
      });
      this.servers.push(child);
      logger.log(1, `Started the OpenVPN server on ${dev}, ${proto} port ${port} (pid ${child.pid})`);
    });

    const pidFile = resolve(cfg.state, "vifibnet.babeld.pid");
    clearStalePidFile(pidFile);
    const ifaces = [...cfg.pp.map((_, i) => serverDevice(i)), ...CLIENT_INTERFACES, ...cfg.interfaces];
    const socket = resolve(cfg.state, "vifibnet.babeld.sock");
    if (Buffer.byteLength(socket) <= MAX_SOCKET_PATH) {
      this.babelSocket = socket;
      rmSync(socket, { force: true }); // a crashed babeld's; the pid file check above says none runs
    } else {
      logger.warn(`--state path too long for babeld's control socket (${socket}): tunnels will close without first moving routes off them`);
    }
    this.babeld = new Child("babeld", id.babeld, babeldArgv({
      network: id.network, address: id.address, interfaces: ifaces, wireless: cfg.wireless, hello: cfg.hello,
      verbose: cfg.verbose, stateFile: resolve(cfg.state, "vifibnet.babeld.state"), pidFile, controlSocket: this.babelSocket,
    }), { logPath: this.logPath("vifibnet.babeld.log"), onExit: (s) => this.childDied("babeld", s) });
    logger.log(1, `Started babeld (pid ${this.babeld.pid})`);

    if (this.advertised === null) this.upnpStarting = this.startUpnp();
    else logger.log(1, `Advertising ${this.advertised}`);

    this.startPeersRefresh();
    this.scheduleTunnelRefresh(0);
  }

  /** No --ip: port mappings on the LAN's UPnP gateway, else the external IPv4 our tunnels report. */
  private async startUpnp(): Promise<void> {
    const { logger } = this;
    const fallback = "advertising the external IPv4 our tunnels report, with the --pp ports";
    let f: PortForwarder<{ cancel(): void }> | null = null;
    try {
      const igd = await this.discover(DISCOVERY_TIMEOUT_MS, logger);
      if (igd === null) {
        logger.log(1, `No --ip given and no UPnP gateway found: ${fallback}`);
        return;
      }
      f = await PortForwarder.start(igd, this.cfg.pp, {
        timers: { setTimeout: (fn: () => void, ms: number) => longTimeout(fn, ms), clearTimeout: (h: { cancel(): void }) => h.cancel() },
        logger,
        onChange: (addresses) => this.advertise(formatAddressList(addresses), "UPnP mappings renewed"),
      });
    } catch (e) {
      logger.warn(`UPnP failed: ${(e as Error).message}`);
    }
    if (f === null) {
      logger.log(1, `No --ip given and UPnP port forwarding failed: ${fallback}`);
      return;
    }
    if (this.stopping) {
      await f.stop();
      return;
    }
    this.upnp = f;
    this.advertise(formatAddressList(f.addresses()), "UPnP port forwarding");
  }

  /** Changes what we advertise and declares it now rather than at the next peers DB refresh. */
  private advertise(list: string, why: string): void {
    if (this.stopping || list === this.advertised) return;
    this.advertised = list;
    this.logger.log(1, `${why}: advertising ${list}`);
    this.stopPeers?.();
    this.startPeersRefresh();
  }

  private childDied(what: string, s: { code: number | null; signal: string | null; error?: Error }): void {
    if (this.stopping) return;
    const how = s.error ? `could not start: ${s.error.message}` : s.signal ? `was killed by ${s.signal}` : `exited with status ${s.code}`;
    this.logger.warn(`${what} ${how}; stopping (see its log in ${this.cfg.log})`);
    void this.shutdown(1);
  }

  private serverEvent(dev: string, type: string, arg: string): void {
    if (type === "client-connect") this.logger.log(2, `${arg} connected to ${dev}`);
    else if (type === "client-disconnect") this.logger.log(2, `${arg} disconnected from ${dev}`);
    else this.logger.log(3, `unexpected event from the server on ${dev}: ${type} ${arg}`);
  }

  private clientEvent(iface: string, type: string, arg: string): void {
    if (type !== "route-up") {
      this.logger.log(3, `unexpected event from the tunnel on ${iface}: ${type} ${arg}`);
      return;
    }
    this.logger.log(2, `Tunnel on ${iface} is up${arg ? `; the peer sees us as ${arg}` : ""}`);
    if (this.cfg.address !== undefined || this.upnp !== null || !/^[0-9]{1,3}(\.[0-9]{1,3}){3}$/.test(arg) || arg === this.externalIp) return;
    this.externalIp = arg;
    this.advertise(formatAddressList(addressesFor(arg, this.cfg.pp)), "External address learnt");
  }

  private startPeersRefresh(): void {
    if (this.stopping) return;
    const rpc = new RpcClient(this.cfg.server, this.cfg.serverPort);
    this.stopPeers = runPeersRefresh(
      () => ({
        rpc, db: this.db, nodeIp: this.id.address, ownPrefix: this.id.prefix, address: this.advertised, key: declarationKey(this.cfg.openvpnArgs),
        refreshInterval: this.cfg.peersDbRefresh, now: Date.now, logger: this.logger, lan: this.lan,
      }),
      { setTimeout: (fn: () => void, ms: number) => longTimeout(fn, ms), clearTimeout: (h: { cancel(): void }) => h.cancel() },
      (r: PeersRefreshResult) => this.logger.log(3, `Next peers DB refresh in ${r.delayS} s`),
    );
  }

  private scheduleTunnelRefresh(ms: number): void {
    if (this.stopping) return;
    this.tunnelTimer = longTimeout(() => {
      this.tunnelTimer = null;
      void this.refreshTunnels()
        .catch((e) => this.logger.warn(`tunnel refresh failed: ${(e as Error).stack ?? e}`))
        .finally(() => {
          this.scheduleTunnelRefresh(this.cfg.tunnelRefresh * 1000);
        });
    }, ms);
  }

  /** One tunnel refresh: observe, plan (lib/tunnel.ts), execute the steps in order. */
  private async refreshTunnels(): Promise<void> {
    const now = Date.now();
    const routesText = readText("/proc/net/ipv6_route");
    const ifaces = [...this.tunnels.keys()];
    const routes = countRoutes(routesText, this.id.network, ifaces);
    this.lan = lanPeers(routesText, this.id.network, this.cfg.interfaces, this.id.prefix);
    if (this.lan.length > 0) this.db.removePeers(this.lan);
    for (const [iface, e] of this.tunnels) {
      const bytes = interfaceBytes(iface);
      e.traffic = updateTraffic(e.traffic, bytes === null ? null : { bytes, time: now });
      e.tunnel.traffic = e.traffic.rate;
    }
    const plan = planRefresh(
      { tunnels: [...this.tunnels.values()].map((e) => e.tunnel), routes, candidates: this.db.unusedPeers(), lan: this.lan },
      {
        connectionCount: this.cfg.connectionCount, refreshRate: this.cfg.refreshRate, ownPrefix: this.id.prefix, rng: Math.random,
        settledBefore: now - Math.max(this.cfg.tunnelRefresh, SETTLE_HELLOS * this.cfg.hello) * 1000,
      },
    );
    for (const s of plan.skipped)
      if (s.reason === "malformed") this.db.removePeer(s.prefix);
    this.logger.log(3, `Tunnel refresh: ${this.tunnels.size} tunnel(s), ${plan.wanted} wanted, ${plan.steps.length} step(s)`);
    for (const step of plan.steps) {
      if (this.stopping) return;
      await this.execute(step);
    }
  }

  /** Sends requests to babeld; false (and a warning) if it is unreachable or refuses. */
  private async babel(lines: string[]): Promise<boolean> {
    if (this.babelSocket === null) return false;
    try {
      await babelRequest(this.babelSocket, lines);
      return true;
    } catch (e) {
      this.logger.warn((e as Error).message);
      return false;
    }
  }

  /** Gives a retired tunnel's interface babel's default parameters back (it is down or gone now). */
  private async restoreBabel(iface: string): Promise<void> {
    if (this.babelRetired.has(iface) && (await this.babel(babelRestoreLines(iface, this.cfg.wireless)))) this.babelRetired.delete(iface);
  }

  private async drain(iface: string, e: TunnelEntry): Promise<void> {
    if (this.stopping || this.tunnels.get(iface) !== e || !e.tunnel.alive) return;
    if (await this.babel(babelRetireLines(iface))) {
      this.babelRetired.add(iface);
      this.logger.log(3, `Moved babel's routes off the tunnel to ${e.tunnel.prefix} on ${iface}: it closes at the next refresh`);
      if (this.tunnels.get(iface) !== e) await this.restoreBabel(iface); // closed meanwhile: its restore came first
    }
  }

  private async execute(step: RefreshStep): Promise<void> {
    switch (step.kind) {
      case "close": {
        const e = this.tunnels.get(step.iface);
        if (e) {
          clearTimeout(e.drain);
          await e.child.stop();
          this.tunnels.delete(step.iface);
        }
        await this.restoreBabel(step.iface);
        if (step.mark === "remove") this.db.removePeer(step.prefix);
        else this.db.setUsed(step.prefix, step.mark);
        this.logger.log(2, `Closed the tunnel to ${step.prefix} on ${step.iface} (${step.reason})`);
        return;
      }
      case "retire": {
        const e = this.tunnels.get(step.iface);
        if (!e) return;
        e.tunnel.retiring = true;
        // It carries traffic while its replacement comes up; shortly before
        // the next refresh closes it, babel moves the routes off it, so the
        // close loses no packet.
        const delay = Math.max(0, (this.cfg.tunnelRefresh - DRAIN_HELLOS * this.cfg.hello) * 1000);
        e.drain = setTimeout(() => void this.drain(step.iface, e), delay);
        e.drain.unref();
        return;
      }
      case "open": {
        await this.restoreBabel(step.iface);
        const argv = openvpnClientArgv(this.common, step.iface, step.remotes);
        const tunnel: Tunnel = { prefix: step.prefix, iface: step.iface, openedAt: Date.now(), alive: true, retiring: false, traffic: null };
        const child = new Child(`client ${step.iface}`, this.id.openvpn, argv, {
          logPath: this.logPath(`vifibnet.client.${step.prefix}.log`),
          onEvent: (type, arg) => this.clientEvent(step.iface, type, arg),
          onExit: (s) => {
            tunnel.alive = false;
            if (!this.stopping)
              this.logger.log(2, `The tunnel to ${step.prefix} on ${step.iface} ended (${s.error ? s.error.message : s.signal ?? `status ${s.code}`})`);
          },
        });
        this.tunnels.set(step.iface, { tunnel, traffic: NO_TRAFFIC, child });
        this.db.markUsed(step.prefix);
        this.logger.log(2, `Opened a tunnel to ${step.prefix} on ${step.iface} (${step.address})`);
        return;
      }
    }
  }

  /** Stops everything, in order, and exits with `status`. */
  async shutdown(status: number): Promise<never> {
    if (!this.stopping) {
      this.stopping = true;
      this.logger.log(1, "Stopping");
      this.tunnelTimer?.cancel();
      this.stopPeers?.();
      const marks = planShutdown([...this.tunnels.values()].map((e) => e.tunnel));
      // The UPnP mappings go (bounded: a silent gateway must not hold the exit) while the children stop.
      const unmap = (async () => {
        await this.upnpStarting;
        await this.upnp?.stop();
      })();
      try {
        await Promise.all([
          stopAll(),
          withTimeout(unmap, UPNP_STOP_MS, "removing the UPnP mappings").catch((e) => this.logger.warn((e as Error).message)),
        ]);
      } catch (e) {
        this.logger.warn(`while stopping: ${(e as Error).message}`);
      }
      try {
        for (const m of marks) if (m.kind === "close" && m.mark !== "remove") this.db.setUsed(m.prefix, m.mark);
        this.db.close();
      } catch (e) {
        this.logger.warn(`peers.db: ${(e as Error).message}`);
      }
      this.logger.log(1, "Stopped");
      process.exit(status);
    }
    return new Promise<never>(() => {});
  }

  /** For tests and logs: pids of the children alive now. */
  childPids(): number[] {
    return liveChildren().map((c) => c.pid).filter((p): p is number => p !== undefined);
  }
}

export function main(argv: readonly string[]): void {
  const prog = progName();
  const cfg = parseDaemonArgs(argv);
  const logger = createLogger(cfg.verbose);
  const fail = (message: string): never => {
    process.stderr.write(`${prog}: error: ${message}\n`);
    process.exit(1);
  };

  // Whatever ends the daemon, no child outlives it.
  process.on("exit", killAllNow);
  let daemon: Daemon | null = null;
  const crash = (e: unknown): void => {
    process.stderr.write(`${prog}: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
    killAllNow();
    process.exit(1);
  };
  process.on("uncaughtException", crash);
  process.on("unhandledRejection", crash);
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
    process.on(sig, () => {
      if (daemon) void daemon.shutdown(0);
      else process.exit(0);
    });
  }

  let id: Identity;
  try {
    id = startupChecks(cfg);
    daemon = new Daemon(cfg, id, logger);
    daemon.start();
  } catch (e) {
    // Anything failing before the loops run (a check, peers.db, an unwritable
    // log directory) is one line and status 1, with whatever started stopped.
    killAllNow();
    fail(e instanceof Error ? e.message.split("\n")[0]! : String(e));
  }
}
