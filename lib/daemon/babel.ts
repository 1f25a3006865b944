// babeld, supervised (./supervisor.ts), with its control socket
// (lib/babel-control.ts): the routing moves of the tunnel executor, and the
// babel part of `vifibnet status` (neighbours, routes, reachable nodes).

import { rmSync } from "node:fs";
import { resolve } from "node:path";
import { BabelControl, BabelNeighbour } from "../babel-control";
import { babeldArgv } from "../plib";
import { Bits, bitsToIpv6, ipv6ToBits } from "../utils/address";
import type { Logger } from "../utils/log";
import { nodePrefixOf } from "../utils/routes";
import type { Timers } from "../utils/timers";
import { fitsSocketPath } from "../utils/unix-socket";
import { Child } from "./children";
import { clearStalePidFile } from "./host";
import type { LogFiles } from "./logs";
import { Supervisor } from "./supervisor";

export interface BabelSetup {
  babeld: string;
  state: string;
  network: Bits;
  prefix: Bits;
  address: string;
  interfaces: readonly string[];
  wireless: boolean;
  hello: number;
  verbose: number;
}

export interface BabelStatus {
  /** Whether babeld answered on its control socket; `error` says why not. */
  answered: boolean;
  error: string | null;
  neighbours: BabelNeighbour[];
  /** Routes babeld installed. */
  routes: number;
  /** Other nodes babel routes to (installed routes to a node address or prefix). */
  reachable: Array<{ prefix: Bits; address: string; metric: number; iface: string }>;
}

export class Babel {
  readonly control: BabelControl;
  readonly supervisor: Supervisor;
  private child: Child | null = null;

  constructor(private readonly s: BabelSetup, logs: LogFiles, deps: { timers: Timers; now: () => number; logger: Logger }) {
    const pidFile = resolve(s.state, "vifibnet.babeld.pid");
    const socket = resolve(s.state, "vifibnet.babeld.sock");
    const usable = fitsSocketPath(socket);
    if (!usable) deps.logger.warn(`--state path too long for babeld's control socket (${socket}): tunnels will close without first moving routes off them`);
    this.control = new BabelControl(usable ? socket : null, s.wireless, deps.logger);
    // babeld writes its log itself (-L), where the daemon writes what it
    // prints before opening it (an argument it refuses, say): its debug
    // output is the one child output that never stops.
    const log = logs.open("vifibnet.babeld.log");
    const argv = babeldArgv({
      network: s.network, address: s.address, interfaces: s.interfaces, wireless: s.wireless, hello: s.hello, verbose: s.verbose,
      stateFile: resolve(s.state, "vifibnet.babeld.state"), pidFile, controlSocket: this.control.path, logFile: log.path,
    });
    this.supervisor = new Supervisor("babeld", () => {
      // What a babeld killed with SIGKILL leaves behind would stop the next one.
      clearStalePidFile(pidFile);
      if (usable) rmSync(socket, { force: true });
      const child = (this.child = new Child("babeld", s.babeld, argv, { log }));
      deps.logger.log(1, `Started babeld (pid ${child.pid})`);
      return child;
    }, { ...deps, logPath: log.path });
  }

  /** SIGHUP: babeld reopens its log file (SIGUSR2 also has it check its interfaces now, which is harmless). */
  reopenLog(): void {
    this.child?.signal("SIGUSR2");
  }

  /** Checks, before anything starts, that no other babeld holds our pid file. */
  checkPidFile(): void {
    clearStalePidFile(resolve(this.s.state, "vifibnet.babeld.pid"));
  }

  start(): void {
    this.supervisor.start();
  }

  stop(): Promise<void> {
    return this.supervisor.stop();
  }

  async status(): Promise<BabelStatus> {
    let dump;
    try {
      dump = await this.control.dump();
    } catch (e) {
      return { answered: false, error: (e as Error).message, neighbours: [], routes: 0, reachable: [] };
    }
    const installed = dump.routes.filter((r) => r.installed);
    const reachable: BabelStatus["reachable"] = [];
    for (const r of installed) {
      const [addr, len] = r.prefix.split("/");
      const bits = ipv6ToBits(addr ?? "");
      const prefix = bits === null || !bits.startsWith(this.s.network) ? null : nodePrefixOf(bits, Number(len), this.s.network, this.s.prefix.length);
      if (prefix !== null && prefix !== this.s.prefix && !reachable.some((x) => x.prefix === prefix))
        reachable.push({ prefix, address: bitsToIpv6(this.s.network + prefix), metric: r.metric, iface: r.iface });
    }
    return { answered: true, error: null, neighbours: dump.neighbours, routes: installed.length, reachable };
  }
}
