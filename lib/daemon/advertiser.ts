// What the node advertises, and where it came from (`vifibnet status`):
// the --ip list; else the UPnP mappings made on the LAN's gateway
// (lib/upnpigd.ts); else the external address its peers report, by the
// policy of lib/advertise.ts; else nothing yet. `onChange` hears each new
// list, so it is declared at once.

import { AddressSource, Decision, Learning, LONE_PEER_REFRESHES, NOTHING_LEARNT, decideAddress, forgetPeer, reportAddress } from "../advertise";
import { DISCOVERY_TIMEOUT_MS, Igd, PortForwarder, ServerPort, UPNP_STOP_MS } from "../upnpigd";
import { Bits, PeerAddress, addressesFor, formatAddressList } from "../utils/address";
import type { Logger } from "../utils/log";
import { Timer, Timers, withTimeout } from "../utils/timers";

export interface AdvertisedStatus {
  addresses: string | null;
  source: AddressSource;
  /** ms it has been advertised since, or null. */
  since: number | null;
  /** The reports of our peers (without --ip or UPnP), and what the policy makes of them. */
  reports: Array<{ prefix: Bits; ip: string; at: number }>;
  decision: Decision["why"] | null;
  /** A lone peer's report is believed at this time (ms). */
  waitingUntil: number | null;
}

export interface AdvertiserDeps {
  discover: (timeoutMs: number, logger: Logger) => Promise<Igd | null>;
  timers: Timers;
  now: () => number;
  logger: Logger;
  onChange: (list: string) => void;
}

export class Advertiser {
  private list: string | null = null;
  private source: AddressSource = "none";
  private since: number | null = null;
  private learning: Learning = NOTHING_LEARNT;
  private decision: Decision | null = null;
  private loneTimer: Timer | null = null;
  private upnp: PortForwarder | null = null;
  private upnpStarting: Promise<void> | null = null;
  private stopped = false;

  /** `fixed`: --ip; `pp`: our servers; `tunnelRefresh`: seconds. */
  constructor(private readonly fixed: PeerAddress[] | undefined, private readonly pp: readonly ServerPort[], private readonly tunnelRefresh: number, private readonly deps: AdvertiserDeps) {}

  start(): void {
    if (this.fixed !== undefined) {
      this.set(formatAddressList(this.fixed), "ip", "--ip");
      return;
    }
    this.upnpStarting = this.startUpnp();
  }

  current(): string | null {
    return this.list;
  }

  private set(list: string, source: AddressSource, why: string): void {
    if (this.stopped || (list === this.list && source === this.source)) return;
    const changed = list !== this.list;
    this.list = list;
    this.source = source;
    this.since = this.deps.now();
    this.deps.logger.log(1, `Advertising ${list} (${why})`);
    if (changed) this.deps.onChange(list);
  }

  /** No --ip: port mappings on the LAN's UPnP gateway, else what our peers report. */
  private async startUpnp(): Promise<void> {
    const { logger } = this.deps;
    const fallback = "advertising the external address our peers report, with the --pp ports";
    let f: PortForwarder | null = null;
    try {
      const igd = await this.deps.discover(DISCOVERY_TIMEOUT_MS, logger);
      if (igd === null) {
        logger.log(1, `No --ip given and no UPnP gateway found: ${fallback}`);
        return;
      }
      f = await PortForwarder.start(igd, this.pp, {
        timers: this.deps.timers, logger, onChange: (addresses) => this.set(formatAddressList(addresses), "upnp", "UPnP mappings renewed"),
      });
    } catch (e) {
      logger.warn(`UPnP failed: ${(e as Error).message}`);
    }
    if (f === null) {
      logger.log(1, `No --ip given and UPnP port forwarding failed: ${fallback}`);
      return;
    }
    if (this.stopped) {
      await f.stop();
      return;
    }
    this.upnp = f;
    this.set(formatAddressList(f.addresses()), "upnp", "UPnP port forwarding");
  }

  /** The peer of one of our tunnels sees us at `ip`. */
  report(peer: Bits, ip: string): void {
    this.learning = reportAddress(this.learning, peer, ip, this.deps.now());
    if (!this.learning.reports.has(peer)) this.deps.logger.log(2, `Ignored ${JSON.stringify(ip)} as our address, reported by ${peer}: not a global unicast address`);
    this.decide();
  }

  /** The tunnel to `peer` closed. */
  forget(peer: Bits): void {
    this.learning = forgetPeer(this.learning, peer);
  }

  private decide(): void {
    if (this.fixed !== undefined || this.upnp !== null || this.stopped) return;
    const { now, timers } = this.deps;
    const d = decideAddress(this.learning, now(), LONE_PEER_REFRESHES * this.tunnelRefresh * 1000, this.source === "peers" ? this.learnedIp() : null);
    this.decision = d;
    if (d.ip !== null) {
      this.set(formatAddressList(addressesFor(d.ip, this.pp)), "peers", d.why === "agreed" ? `reported by ${d.peers} peers` : "reported by our only peer so far");
    } else if (d.why === "waiting" && d.until !== undefined && this.loneTimer === null) {
      this.loneTimer = timers.after(d.until - now(), () => {
        this.loneTimer = null;
        this.decide();
      });
    }
  }

  private learnedIp(): string | null {
    return this.list?.split(",")[0] ?? null;
  }

  /** Removes the UPnP mappings (bounded: a silent gateway must not hold the exit). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.loneTimer?.cancel();
    const unmap = (async () => {
      await this.upnpStarting;
      await this.upnp?.stop();
    })();
    await withTimeout(unmap, UPNP_STOP_MS, "removing the UPnP mappings").catch((e: unknown) => this.deps.logger.warn((e as Error).message));
  }

  status(): AdvertisedStatus {
    const d = this.decision;
    return {
      addresses: this.list, source: this.source, since: this.since,
      reports: [...this.learning.reports].map(([prefix, r]) => ({ prefix, ip: r.ip, at: r.at })),
      decision: d?.why ?? null, waitingUntil: d !== null && d.ip === null && d.until !== undefined ? d.until : null,
    };
  }
}
