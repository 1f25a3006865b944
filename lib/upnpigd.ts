// UPnP IGD port forwarding, legacy upnpigd.py (SPEC section 6): without
// --ip, one port mapping per --pp on the LAN's Internet Gateway Device, the
// external port from 1000 upward (first free), renewed hourly and removed on
// stop; the node then advertises the gateway's external IP and mapped ports.
//
// The policy (PortForwarder) is pure over a small Igd interface so tests use
// a fake; the real gateway is found and driven by lib/upnp-gateway.ts.

import { type PeerAddress, addressesFor } from "./utils/address";
import { type Logger, silentLogger } from "./utils/log";
import type { Timer, Timers } from "./utils/timers";

export type IgdProtocol = "UDP" | "TCP";

export interface IgdMapping {
  externalPort: number;
  internalPort: number;
  /** Our LAN address, as the gateway reaches us. */
  internalHost: string;
  protocol: IgdProtocol;
  description: string;
  /** Lease duration in seconds. */
  leaseS: number;
}

/** The gateway, as the policy sees it. Every call is bounded in time by the implementation. */
export interface Igd {
  /** Our LAN address towards the gateway. */
  readonly internalHost: string;
  externalIp(): Promise<string>;
  /** Adds (or renews) a mapping; resolves to the external port reserved; rejects on a conflict or failure. */
  addMapping(m: IgdMapping): Promise<number>;
  removeMapping(externalPort: number, protocol: IgdProtocol): Promise<void>;
}

/** One --pp, as lib/daemon/args.ts gives it. */
export interface ServerPort {
  port: number;
  proto: "udp" | "tcp-server";
}

export const FIRST_EXTERNAL_PORT = 1000;
/** External ports tried per --pp before giving up on it. */
export const MAX_PORT_TRIES = 32;
/** Lease asked for each mapping: two renewal periods, so one missed renewal loses nothing. */
export const LEASE_S = 7200;
/** Renewed hourly (SPEC section 6). */
export const RENEW_MS = 3600_000;
/** How long discovery may take: a node without a gateway must start quickly. */
export const DISCOVERY_TIMEOUT_MS = 3000;
/** Longest the removal of the mappings may delay the daemon's exit (a discovery still running included). */
export const UPNP_STOP_MS = DISCOVERY_TIMEOUT_MS + 5000;
export const DESCRIPTION = "vifibnet";

export interface Mapped {
  internalPort: number;
  externalPort: number;
  /** The --pp proto it serves. */
  proto: ServerPort["proto"];
}

export function igdProtocol(proto: string): IgdProtocol {
  return proto === "udp" ? "UDP" : "TCP";
}

export interface ForwarderOptions {
  timers: Timers;
  logger?: Logger;
  /** Called after a renewal changed the external IP or a port. */
  onChange?: (addresses: PeerAddress[]) => void;
  firstPort?: number;
  maxTries?: number;
  leaseS?: number;
  renewMs?: number;
}

export class PortForwarder {
  private mapped: Mapped[] = [];
  private timer: Timer | null = null;
  private stopped = false;
  private renewing: Promise<void> | null = null;
  private readonly logger: Logger;

  private constructor(private readonly igd: Igd, private readonly pp: readonly ServerPort[], private ip: string, private readonly opts: ForwarderOptions) {
    this.logger = opts.logger ?? silentLogger;
  }

  /**
   * Maps every --pp on `igd`. Resolves to null when the gateway gives no
   * external IP or no mapping could be made (nothing is left mapped then).
   */
  static async start(igd: Igd, pp: readonly ServerPort[], opts: ForwarderOptions): Promise<PortForwarder | null> {
    const logger = opts.logger ?? silentLogger;
    let ip: string;
    try {
      ip = await igd.externalIp();
    } catch (e) {
      logger.warn(`UPnP: the gateway gave no external IP: ${(e as Error).message}`);
      return null;
    }
    if (!/^[0-9]{1,3}(\.[0-9]{1,3}){3}$/.test(ip) || ip === "0.0.0.0") {
      logger.warn(`UPnP: the gateway's external IP is ${JSON.stringify(ip)}: not usable`);
      return null;
    }
    const f = new PortForwarder(igd, pp, ip, opts);
    for (const p of pp) {
      const m = await f.mapOne(p);
      if (m) f.mapped.push(m);
    }
    if (f.mapped.length === 0) return null;
    f.schedule();
    return f;
  }

  private get firstPort(): number {
    return this.opts.firstPort ?? FIRST_EXTERNAL_PORT;
  }

  private request(externalPort: number, p: ServerPort): IgdMapping {
    return {
      externalPort, internalPort: p.port, internalHost: this.igd.internalHost, protocol: igdProtocol(p.proto),
      description: `${DESCRIPTION} ${p.port}/${p.proto}`, leaseS: this.opts.leaseS ?? LEASE_S,
    };
  }

  /** First free external port from firstPort upward (skipping our own), bounded tries. */
  private async mapOne(p: ServerPort): Promise<Mapped | null> {
    const protocol = igdProtocol(p.proto);
    const ours = new Set(this.mapped.filter((m) => igdProtocol(m.proto) === protocol).map((m) => m.externalPort));
    let port = this.firstPort;
    let lastError = "";
    for (let tries = 0; tries < (this.opts.maxTries ?? MAX_PORT_TRIES) && port <= 65535; port++) {
      if (ours.has(port)) continue;
      tries++;
      try {
        const reserved = await this.igd.addMapping(this.request(port, p));
        this.logger.log(2, `UPnP: mapped ${this.ip}:${reserved}/${protocol} to ${this.igd.internalHost}:${p.port}`);
        return { internalPort: p.port, externalPort: reserved, proto: p.proto };
      } catch (e) {
        lastError = (e as Error).message;
        this.logger.log(3, `UPnP: external port ${port}/${protocol} refused (${lastError}); trying the next`);
      }
    }
    this.logger.warn(`UPnP: could not map ${p.port}/${p.proto} (last error: ${lastError})`);
    return null;
  }

  /** The address list items for our mappings, as peers dial them. */
  addresses(): PeerAddress[] {
    return addressesFor(this.ip, this.mapped.map((m) => ({ port: m.externalPort, proto: m.proto })));
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.opts.timers.after(this.opts.renewMs ?? RENEW_MS, () => {
      this.timer = null;
      this.renewing = this.renew().finally(() => {
        this.renewing = null;
        this.schedule();
      });
    });
  }

  /** Renews every mapping; a lost one is mapped again from the first port. */
  async renew(): Promise<void> {
    const before = JSON.stringify(this.addresses());
    try {
      const ip = await this.igd.externalIp();
      if (/^[0-9]{1,3}(\.[0-9]{1,3}){3}$/.test(ip) && ip !== "0.0.0.0") this.ip = ip;
    } catch (e) {
      this.logger.warn(`UPnP: renewal: no external IP: ${(e as Error).message}`);
    }
    const next: Mapped[] = [];
    for (const p of this.pp) {
      if (this.stopped) return;
      const protocol = igdProtocol(p.proto);
      const old = this.mapped.find((m) => m.internalPort === p.port && m.proto === p.proto);
      if (old) {
        try {
          const reserved = await this.igd.addMapping(this.request(old.externalPort, p));
          next.push({ ...old, externalPort: reserved });
          continue;
        } catch (e) {
          this.logger.log(2, `UPnP: renewing ${old.externalPort}/${protocol} failed (${(e as Error).message}); mapping again`);
        }
      }
      const saved = this.mapped;
      this.mapped = next;
      const m = await this.mapOne(p);
      this.mapped = saved;
      if (m) next.push(m);
    }
    if (this.stopped) return;
    this.mapped = next;
    const after = JSON.stringify(this.addresses());
    if (after !== before) {
      this.logger.log(1, `UPnP: the advertised address changed to ${after}`);
      this.opts.onChange?.(this.addresses());
    }
  }

  /** Cancels renewal and removes every mapping (errors logged, never thrown). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.timer?.cancel();
    this.timer = null;
    await this.renewing?.catch(() => {});
    const mapped = this.mapped;
    this.mapped = [];
    await Promise.all(mapped.map(async (m) => {
      const protocol = igdProtocol(m.proto);
      try {
        await this.igd.removeMapping(m.externalPort, protocol);
        this.logger.log(2, `UPnP: removed the mapping of ${m.externalPort}/${protocol}`);
      } catch (e) {
        this.logger.warn(`UPnP: could not remove the mapping of ${m.externalPort}/${protocol}: ${(e as Error).message}`);
      }
    }));
  }
}
