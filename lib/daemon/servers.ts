// The node's OpenVPN servers, one per --pp (SPEC section 6), each supervised
// (./supervisor.ts), each with the peers connected to it as its hooks report
// them ("client-connect <common name> <remote address>",
// "client-disconnect <common name>", "client-refused ..." for a revoked
// peer), and whether its up hook has run ("up <dev>": the interface holds
// the node address). ServerRestarts restarts them for a new certificate or
// CA without taking them all down at once.

import { NegotiationLog, type Negotiation } from "../ovpn-log";
import { openvpnServerArgv, type OpenvpnCommon } from "../plib";
import { cnToPrefix, type Bits } from "../utils/address";
import type { Logger } from "../utils/log";
import type { Timers } from "../utils/timers";
import type { DaemonConfig, ServerProto } from "./args";
import { Child } from "./children";
import type { LogFiles } from "./logs";
import { ChildStatus, Supervisor } from "./supervisor";

/** Server device names: vifibnet, vifibnet1, vifibnet2... (the legacy gave them all one name). */
export function serverDevice(index: number): string {
  return index === 0 ? "vifibnet" : `vifibnet${index}`;
}

/** vifibnet.server.<proto>.log, with the port when several servers share the protocol. */
export function serverLogName(pp: DaemonConfig["pp"], index: number): string {
  const { port, proto } = pp[index]!;
  return pp.filter((p) => p.proto === proto).length > 1 ? `vifibnet.server.${proto}.${port}.log` : `vifibnet.server.${proto}.log`;
}

export interface ServerPeer {
  commonName: string;
  /** The CN's prefix, or null when it is not a vifibnet one. */
  prefix: Bits | null;
  /** The address it connects from, as OpenVPN saw it. */
  remote: string | null;
  /** ms. */
  since: number;
  /** What it negotiated with this server, as the server's log says (lib/ovpn-log.ts); null until known. */
  negotiation: Negotiation | null;
}

export interface ServerStatus {
  iface: string;
  port: number;
  proto: ServerProto;
  child: ChildStatus;
  peers: ServerPeer[];
  /** Connections its hook refused (revoked peers) since the daemon started. */
  refused: number;
}

export interface ServerSetup {
  index: number;
  pp: DaemonConfig["pp"];
  common: OpenvpnCommon;
  openvpn: string;
  dh: string;
  maxClients: number;
  /** The node address with its subnet length, "2001:db8:42:5::/64". */
  subnet: string;
  /** The revoked peers' common names, for the client-connect hook (./revocations.ts); null: none. */
  revokedFile: string | null;
}

/** How long a restarted server may take to run its up hook before the next one goes down anyway. */
export const UP_TIMEOUT_MS = 30_000;

export class Server {
  readonly iface: string;
  readonly port: number;
  readonly proto: ServerProto;
  readonly supervisor: Supervisor;
  private readonly peers = new Map<string, Omit<ServerPeer, "negotiation">>();
  /** The current run's handshakes, from its log as it passes. */
  private negotiations = new NegotiationLog();
  /** When the current run's up hook ran; null before. */
  private upAt: number | null = null;
  private onUp: Array<() => void> = [];
  private refused = 0;

  constructor(s: ServerSetup, logs: LogFiles, deps: { timers: Timers; now: () => number; logger: Logger }) {
    const { port, proto } = s.pp[s.index]!;
    this.iface = serverDevice(s.index);
    this.port = port;
    this.proto = proto;
    const log = logs.open(serverLogName(s.pp, s.index));
    const argv = openvpnServerArgv(s.common, { dev: this.iface, port, proto, dh: s.dh, maxClients: s.maxClients, address: s.subnet, revokedFile: s.revokedFile });
    const name = `OpenVPN server ${port}/${proto}`;
    this.supervisor = new Supervisor(name, () => {
      const negotiations = (this.negotiations = new NegotiationLog());
      this.upAt = null;
      const child = new Child(name, s.openvpn, argv, {
        log: { write: (chunk) => (log.write(chunk), negotiations.chunk(chunk)) },
        onEvent: (type, arg) => this.event(type, arg, deps),
        onExit: () => this.peers.clear(), // its clients are gone with it
      });
      deps.logger.log(1, `Started the OpenVPN server on ${this.iface}, ${proto} port ${port} (pid ${child.pid})`);
      return child;
    }, { ...deps, logPath: log.path });
  }

  private event(type: string, arg: string, deps: { now: () => number; logger: Logger }): void {
    const [cn = "", remote] = arg.split(" ");
    if (type === "up") {
      this.upAt = deps.now();
      for (const f of this.onUp.splice(0)) f();
    } else if (type === "client-refused") {
      this.refused++;
      deps.logger.log(1, `Refused ${cn} on ${this.iface}${remote ? ` (from ${remote})` : ""}: its prefix is revoked`);
    } else if (type === "client-connect") {
      this.peers.set(cn, { commonName: cn, prefix: cnToPrefix(cn), remote: remote || null, since: deps.now() });
      deps.logger.log(2, `${cn} connected to ${this.iface}${remote ? ` from ${remote}` : ""}`);
    } else if (type === "client-disconnect") {
      this.peers.delete(cn);
      deps.logger.log(2, `${cn} disconnected from ${this.iface}`);
    } else deps.logger.log(3, `unexpected event from the server on ${this.iface}: ${type} ${arg}`);
  }

  start(): void {
    this.supervisor.start();
  }

  stop(): Promise<void> {
    return this.supervisor.stop();
  }

  /** Whether its OpenVPN runs and its up hook has run: its interface is then its to keep up. */
  ready(): boolean {
    return this.supervisor.status().running && this.upAt !== null;
  }

  /** Whether a peer with this common name is connected to it now. */
  serves(commonName: string): boolean {
    return this.peers.has(commonName);
  }

  /**
   * Restarts its OpenVPN (which reads the certificate and CA files again);
   * resolves once the new run's up hook has run, or after `timeoutMs`
   * (false: it did not come up in time; supervision goes on).
   */
  async restart(timers: Timers, timeoutMs = UP_TIMEOUT_MS): Promise<boolean> {
    await this.supervisor.restart();
    if (this.upAt !== null) return true;
    const c = this.supervisor.status();
    if (!c.running && c.restartAt === null) return false; // supervision stopped: the daemon is stopping
    return new Promise<boolean>((resolve) => {
      const done = (up: boolean): void => {
        timer.cancel();
        this.onUp = this.onUp.filter((f) => f !== onUp);
        resolve(up);
      };
      const onUp = (): void => done(true);
      const timer = timers.after(timeoutMs, () => done(false));
      this.onUp.push(onUp);
    });
  }

  status(): ServerStatus {
    const negotiated = this.negotiations.peers();
    return {
      iface: this.iface, port: this.port, proto: this.proto, child: this.supervisor.status(),
      peers: [...this.peers.values()].map((p) => ({ ...p, negotiation: negotiated.get(p.commonName) ?? null })), refused: this.refused,
    };
  }
}

/** What ServerRestarts needs of a server (Server fits). */
export interface Restartable {
  readonly iface: string;
  readonly port: number;
  readonly proto: ServerProto;
  restart(timers: Timers): Promise<boolean>;
}

export interface RestartDeps {
  timers: Timers;
  logger: Logger;
  /** babel's routing on an interface (lib/babel-control.ts BabelControl); false when babeld did not do it. */
  babel: { retire(iface: string): Promise<boolean>; restore(iface: string): Promise<boolean> };
}

/**
 * The one way the daemon restarts its servers (a renewed certificate or
 * CA, a peer revoked while connected): one at a time, each back up (its up
 * hook ran) and given `settleMs` for its peers to reconnect before the next
 * goes down, so the node never has all its servers down at once, and its
 * client tunnels are never touched. A graceful restart first has babel move
 * the routes off the server's interface for `drainMs`, as a retired tunnel
 * does (lib/tunnel.ts DRAIN_HELLOS), so its peers' traffic takes other
 * paths before it goes down; a revoked peer's server restarts at once.
 * Requests run one after the other.
 */
export class ServerRestarts<S extends Restartable = Server> {
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly servers: readonly S[], private readonly deps: RestartDeps, private readonly times: { settleMs: number; drainMs: number }) {}

  /** Restarts `which` (default: every server), draining each first when `graceful`; resolves once done. */
  request(why: string, opts: { which?: (s: S) => boolean; graceful: boolean }): Promise<void> {
    this.chain = this.chain
      .then(() => this.run(this.servers.filter(opts.which ?? (() => true)), why, opts.graceful))
      .catch((e: unknown) => this.deps.logger.warn(`restarting the OpenVPN servers (${why}): ${(e as Error).message}`));
    return this.chain;
  }

  private async run(servers: readonly S[], why: string, graceful: boolean): Promise<void> {
    const { timers, logger, babel } = this.deps;
    const wait = (ms: number): Promise<void> => new Promise<void>((resolve) => timers.after(ms, resolve));
    for (const [i, server] of servers.entries()) {
      if (i > 0) await wait(this.times.settleMs);
      if (this.stopped) return;
      const drained = graceful && (await babel.retire(server.iface));
      if (drained) {
        logger.log(2, `Moving babel's routes off ${server.iface} before its server restarts`);
        await wait(this.times.drainMs);
        if (this.stopped) return;
      }
      logger.log(1, `Restarting the OpenVPN server on ${server.iface} (${server.port}/${server.proto}): ${why}`);
      const up = await server.restart(timers);
      if (drained) await babel.restore(server.iface);
      if (!up && !this.stopped)
        logger.warn(`the OpenVPN server on ${server.iface} did not come back within ${UP_TIMEOUT_MS / 1000} s after its restart (${why})`);
    }
  }

  /** No restart from now on (the daemon stops). */
  stop(): void {
    this.stopped = true;
  }
}
