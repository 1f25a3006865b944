// The node's OpenVPN servers, one per --pp (SPEC section 6), each supervised
// (./supervisor.ts), each with the peers connected to it as its hooks report
// them ("client-connect <common name> <remote address>",
// "client-disconnect <common name>").

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
}

export interface ServerStatus {
  iface: string;
  port: number;
  proto: ServerProto;
  child: ChildStatus;
  peers: ServerPeer[];
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
}

export class Server {
  readonly iface: string;
  readonly port: number;
  readonly proto: ServerProto;
  readonly supervisor: Supervisor;
  private readonly peers = new Map<string, ServerPeer>();

  constructor(s: ServerSetup, logs: LogFiles, deps: { timers: Timers; now: () => number; logger: Logger }) {
    const { port, proto } = s.pp[s.index]!;
    this.iface = serverDevice(s.index);
    this.port = port;
    this.proto = proto;
    const log = logs.open(serverLogName(s.pp, s.index));
    const argv = openvpnServerArgv(s.common, { dev: this.iface, port, proto, dh: s.dh, maxClients: s.maxClients, address: s.subnet });
    const name = `OpenVPN server ${port}/${proto}`;
    this.supervisor = new Supervisor(name, () => {
      const child = new Child(name, s.openvpn, argv, {
        log,
        onEvent: (type, arg) => this.event(type, arg, deps),
        onExit: () => this.peers.clear(), // its clients are gone with it
      });
      deps.logger.log(1, `Started the OpenVPN server on ${this.iface}, ${proto} port ${port} (pid ${child.pid})`);
      return child;
    }, { ...deps, logPath: log.path });
  }

  private event(type: string, arg: string, deps: { now: () => number; logger: Logger }): void {
    const [cn = "", remote] = arg.split(" ");
    if (type === "client-connect") {
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

  /** Whether its OpenVPN runs now (its interface is then its to keep up). */
  running(): boolean {
    return this.supervisor.status().running;
  }

  status(): ServerStatus {
    return { iface: this.iface, port: this.port, proto: this.proto, child: this.supervisor.status(), peers: [...this.peers.values()] };
  }
}
