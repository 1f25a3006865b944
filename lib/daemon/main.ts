// vifibnet (and compat/vifibnet.py): the node daemon, legacy vifibnet.py's
// main loop, as a thin root. It checks everything it needs before starting
// anything (./host.ts), composes the services and hands each what it needs,
// starts them in order and stops them in reverse on SIGTERM or SIGINT.
// SIGHUP reopens the log files. `vifibnet status` asks a running daemon
// through its control socket (./control.ts).
//
//   control socket   STATE/vifibnet.sock: `vifibnet status`
//   servers          one OpenVPN server per --pp, supervised (./servers.ts)
//   babel            babeld, supervised, and its control socket (./babel.ts)
//   address keeper   the node address back on the server interfaces (./address-keeper.ts)
//   advertiser       what we advertise: --ip, UPnP, or what peers report (./advertiser.ts)
//   peers refresh    declare, getPeerList into peers.db (./peers.ts); then the CA
//                    (./ca-refresh.ts) and the revocation list (./revocations.ts)
//   tunnel refresh   observe, plan (lib/tunnel.ts), execute (./tunnels.ts)
//   renewal          the node certificate, at start and daily (./renewal.ts)

import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { PeersDb } from "../db";
import { declarationKey } from "../declaration";
import { strictnessCosts } from "../legacy-peers";
import { NegotiationLog } from "../ovpn-log";
import { OpenvpnCommon, openvpnClientArgv } from "../plib";
import { RpcClient } from "../rpc-client";
import { CLIENT_INTERFACES, DRAIN_HELLOS } from "../tunnel";
import { bitsToIpv6 } from "../utils/address";
import { Logger, createLogger } from "../utils/log";
import { systemTimers } from "../utils/timers";
import { discoverIgd } from "../upnp-gateway";
import { Igd } from "../upnpigd";
import { AddressKeeper } from "./address-keeper";
import { CaRefresh } from "./ca-refresh";
import { Advertiser } from "./advertiser";
import { DaemonConfig, parseDaemonArgs, progName } from "./args";
import { Babel } from "./babel";
import { Child, EVENT_FD, describeExit, killAllNow } from "./children";
import { ControlServer, controlSocketPath, statusCommand } from "./control";
import { IpMonitor } from "./ip-monitor";
import { Identity, enableForwarding, interfaceBytes, interfaceUp, readIfInet6, readRoutes, startupChecks } from "./host";
import { LogFiles } from "./logs";
import { PeersRefresh } from "./peers";
import { CertificateRenewal } from "./renewal";
import { Revocations } from "./revocations";
import { Server, ServerRestarts } from "./servers";
import { Status, buildStatus } from "./status";
import { TunnelRefresh } from "./tunnel-refresh";
import { Tunnels } from "./tunnels";

/** The hook scripts, shipped in bin/ (dist/lib/daemon → ../../../bin). */
export const HOOK_DIR = resolve(__dirname, "..", "..", "..", "bin");

interface Service {
  readonly name: string;
  start(): void | Promise<void>;
  stop(): Promise<void>;
}

/** `ip ARGS`, bounded. */
function ip(args: string[]): Promise<void> {
  return new Promise((res, rej) => execFile("ip", args, { timeout: 5_000 }, (e, _out, stderr) => (e ? rej(new Error(`ip ${args.join(" ")}: ${String(stderr).trim() || e.message}`)) : res())));
}

export class Daemon {
  private readonly db: PeersDb;
  private readonly logs: LogFiles;
  private readonly babel: Babel;
  private readonly restarts: ServerRestarts;
  private readonly revocations: Revocations;
  private readonly rpc: RpcClient;
  private readonly services: Service[];
  private readonly started: Service[] = [];
  private readonly snapshot: () => Promise<Status>;
  private stopping: Promise<number> | null = null;

  constructor(private readonly cfg: DaemonConfig, private readonly id: Identity, private readonly logger: Logger, discover: (timeoutMs: number, logger: Logger) => Promise<Igd | null> = discoverIgd) {
    const deps = { timers: systemTimers, now: Date.now, logger };
    const db = (this.db = PeersDb.open(id.peersDbPath));
    const logs = (this.logs = new LogFiles(cfg.log));
    const common: OpenvpnCommon = {
      hello: cfg.hello, verbose: cfg.verbose, ca: id.caPath, cert: id.certPath, openvpnArgs: cfg.openvpnArgs, hookDir: HOOK_DIR, eventFd: EVENT_FD, legacy: !cfg.noLegacy,
    };
    const subnet = `${id.address}/${id.network.length + id.prefix.length}`;
    const revocations: Revocations = (this.revocations = new Revocations(cfg.state, {
      ...deps, caPath: id.caPath, ownPrefix: id.prefix, removePeers: (l) => db.removePeers(l), closeTunnels: () => refresh.refreshSoon(),
      dropConnected: (cns): Promise<void> => restarts.request("a revoked peer was connected", { which: (s: Server) => cns.some((cn) => s.serves(cn)), graceful: false }),
    }));
    const servers: Server[] = cfg.pp.map((_, index) => new Server({
      index, pp: cfg.pp, common, openvpn: id.openvpn, dh: id.dhPath, maxClients: cfg.connectionCount, subnet, revokedFile: revocations.cnFile,
    }, logs, deps));
    const babel = new Babel({
      babeld: id.babeld, state: cfg.state, network: id.network, prefix: id.prefix, address: id.address, wireless: cfg.wireless, hello: cfg.hello,
      verbose: cfg.verbose, interfaces: [...servers.map((s) => s.iface), ...CLIENT_INTERFACES, ...cfg.interfaces],
    }, logs, deps);
    babel.checkPidFile(); // another daemon's babeld: stop before anything starts
    this.babel = babel;
    const monitor = new IpMonitor("ip", deps);
    const keeper = new AddressKeeper(id.address, subnet, cfg.hello, {
      ...deps, interfaces: () => servers.filter((s) => s.ready()).map((s) => s.iface), readIfInet6, isUp: interfaceUp, ip, watch: monitor,
    });
    const advertiser = new Advertiser(cfg.address, cfg.pp, cfg.tunnelRefresh, { ...deps, discover, onChange: () => peers.restart() });
    const tunnels = new Tunnels({
      ...deps, babel: babel.control, peers: db, onReport: (p, ext) => advertiser.report(p, ext), onClosed: (p) => advertiser.forget(p),
      spawn: (iface, prefix, remotes, events) => {
        const log = logs.open(`vifibnet.client.${prefix}.log`);
        const negotiation = new NegotiationLog();
        try {
          const child = new Child(`client ${iface}`, id.openvpn, openvpnClientArgv(common, iface, prefix, remotes), {
            log: { write: (chunk) => (log.write(chunk), negotiation.chunk(chunk)) },
            onEvent: (type, arg) => {
              const [external, remote] = arg.split(" ");
              if (type === "route-up") events.up(external || null, remote || null);
              else logger.log(3, `unexpected event from the tunnel on ${iface}: ${type} ${arg}`);
            },
            onExit: (s) => events.exited(describeExit(s)),
            onOutputEnd: () => logs.close(log),
          });
          return { pid: child.pid, stop: () => child.stop(), negotiation: () => negotiation.tunnel() };
        } catch (e) {
          logs.close(log);
          throw e;
        }
      },
    });
    const refresh = new TunnelRefresh({
      connectionCount: cfg.connectionCount, refreshRate: cfg.refreshRate, hello: cfg.hello, tunnelRefresh: cfg.tunnelRefresh,
      network: id.network, ownPrefix: id.prefix, lanInterfaces: cfg.interfaces,
    }, {
      ...deps, tunnels, candidates: () => db.unusedPeers(), removePeers: (l) => db.removePeers(l), revoked: () => revocations.revoked(),
      routes: readRoutes, bytes: interfaceBytes, rng: Math.random,
    });
    // A new certificate or CA: the servers restarted one by one, drained first, each given two hellos for its peers to come back.
    const restarts: ServerRestarts = (this.restarts = new ServerRestarts(servers, { ...deps, babel: babel.control }, {
      settleMs: 2 * cfg.hello * 1000, drainMs: DRAIN_HELLOS * cfg.hello * 1000,
    }));
    const restartServers = (why: string): Promise<void> => restarts.request(why, { graceful: true });
    const ca = new CaRefresh(id.caPath, { ...deps, restartServers });
    const rpc = (this.rpc = new RpcClient(cfg.server, cfg.serverPort));
    const renewal = new CertificateRenewal(id.certPath, { ...deps, rpc, key: () => declarationKey(cfg.openvpnArgs), ca: () => ca.current(), restartServers });
    const peers = new PeersRefresh(
      { server: cfg.server, port: cfg.serverPort, nodeIp: id.address, ownPrefix: id.prefix, refreshInterval: cfg.peersDbRefresh },
      {
        ...deps, db, address: () => advertiser.current(), lan: () => refresh.lan, revoked: () => revocations.revoked(), key: () => declarationKey(cfg.openvpnArgs),
        // The revocation list is checked against ca.pem: the CA first.
        afterRound: async (registry) => {
          await ca.check(registry);
          if (!this.stopping) await revocations.check(registry);
        },
      },
    );
    const startedAt = Date.now();
    this.snapshot = async () => buildStatus({
      startedAt, now: Date.now(), id, certificate: renewal.status(), ca: ca.status(), revocation: revocations.status(), subnet, addressRestores: { count: keeper.restores, last: keeper.lastRestore },
      advertised: advertiser.status(), registry: peers.status(), servers: servers.map((s) => s.status()), tunnels: tunnels.info(),
      bytes: interfaceBytes, routes: refresh.routesPerInterface(), refresh: { ...refresh.status(), closed: tunnels.closed },
      babel: await babel.status(), children: [babel.supervisor.status(), ...servers.map((s) => s.supervisor.status()), ...[monitor.status()].filter((c) => c !== null)],
    });
    const control = new ControlServer(controlSocketPath(cfg.state), { status: this.snapshot }, logger);
    const named = <T extends { start(): void | Promise<void>; stop(): Promise<void> }>(name: string, s: T): Service =>
      ({ name, start: () => s.start(), stop: () => s.stop() });
    this.services = [
      named("control socket", control), ...servers.map((s) => named(`OpenVPN server ${s.port}/${s.proto}`, s)), named("babeld", babel),
      named("address keeper", keeper), named("advertiser", advertiser), named("peers refresh", peers), named("tunnel refresh", refresh),
      named("certificate renewal", renewal),
    ];
  }

  /** Starts every service in order; if one fails, those started stop again and the error is thrown. */
  async start(): Promise<void> {
    const { cfg, id, logger } = this;
    enableForwarding(logger);
    // What a strict setting costs: who cannot tunnel with us. A warning when
    // it comes from OpenVPN arguments, where it is easily set by accident.
    for (const { cause, cost } of strictnessCosts(cfg.openvpnArgs, !cfg.noLegacy)) {
      if (cause === "--no-legacy") logger.log(0, `${cause}: ${cost}`);
      else logger.warn(`OpenVPN argument ${cause}: ${cost}`);
    }
    if (id.sha1) logger.warn(`${cfg.cert} is signed with SHA-1 (a legacy registry's): peers accept it unless they run with --no-legacy or a stricter --tls-cert-profile; the daemon renews it from the registry (renewCertificate, SHA-256)`);
    this.revocations.load(); // before any server: its hook reads the revoked names
    const reset = this.db.resetUsed();
    if (reset > 0) logger.log(3, `Marked ${reset} peer(s) free: the previous run's tunnels are gone`);
    logger.log(1, `Node address ${id.address}, network ${bitsToIpv6(id.network)}/${id.network.length}`);
    for (const s of this.services) {
      if (this.stopping) return;
      try {
        await s.start();
      } catch (e) {
        await this.stop();
        throw e;
      }
      this.started.push(s);
    }
  }

  /** SIGHUP: the log files again, for logrotate. */
  reopenLogs(): void {
    const r = this.logs.reopenAll();
    this.babel.reopenLog();
    this.logger.log(1, `SIGHUP: reopened ${r.reopened} log file(s) in ${this.cfg.log}`);
    for (const e of r.errors) this.logger.warn(e);
  }

  /** Stops the services in reverse order; resolves with the exit status. */
  stop(): Promise<number> {
    this.stopping ??= (async () => {
      this.logger.log(1, "Stopping");
      this.restarts.stop();
      this.rpc.close(); // a renewal under way fails now rather than holding the stop
      for (const s of [...this.started].reverse()) {
        try {
          await s.stop();
        } catch (e) {
          this.logger.warn(`while stopping the ${s.name}: ${(e as Error).message}`);
        }
      }
      try {
        this.db.close();
      } catch (e) {
        this.logger.warn(`peers.db: ${(e as Error).message}`);
      }
      this.logs.closeAll();
      this.logger.log(1, "Stopped");
      return 0;
    })();
    return this.stopping;
  }
}

export async function main(argv: readonly string[]): Promise<void> {
  const prog = progName();
  if (argv[0] === "status") {
    process.exitCode = await statusCommand(argv.slice(1));
    return;
  }
  const cfg = parseDaemonArgs(argv);
  const logger = createLogger(cfg.verbose);

  // Whatever ends the daemon, no child outlives it.
  process.on("exit", killAllNow);
  const crash = (e: unknown): void => {
    process.stderr.write(`${prog}: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
    killAllNow();
    process.exit(1);
  };
  process.on("uncaughtException", crash);
  process.on("unhandledRejection", crash);
  let daemon: Daemon | null = null;
  for (const sig of ["SIGTERM", "SIGINT"] as const)
    process.on(sig, () => (daemon ? void daemon.stop().then((code) => process.exit(code)) : process.exit(0)));
  process.on("SIGHUP", () => daemon?.reopenLogs());

  try {
    daemon = new Daemon(cfg, startupChecks(cfg), logger);
    await daemon.start();
  } catch (e) {
    // Anything failing before the services run (a check, peers.db, an
    // unwritable log directory, another daemon on this --state) is one line
    // and status 1, with whatever started stopped.
    killAllNow();
    process.stderr.write(`${prog}: error: ${e instanceof Error ? e.message.split("\n")[0]! : String(e)}\n`);
    process.exit(1);
  }
}
