// Self-healing of the node address: each running server's interface must be
// up and hold the node address (SPEC section 6: the server's --up hook puts
// it there), and what is missing is put back. Deleting the address, a link
// flap (an interface set down loses its IPv6 addresses) or an operator's
// mistake is repaired at once, without a restart. The daemon looks when the
// kernel reports a change of links or addresses (`ip monitor`, handed in as
// `watch`), and every SAFETY_HELLOS hellos in case a report was lost, so an
// idle node does not wake up for it. The reads of /proc and /sys and the
// `ip` runner are handed in; the decision is pure.

import { Bits, ipv6ToBits } from "../utils/address";
import type { Logger } from "../utils/log";
import type { Timer, Timers } from "../utils/timers";

/** The addresses in /proc/net/if_inet6: "<32 hex> <ifindex> <prefix len> <scope> <flags> <name>" per line. */
export function parseIfInet6(text: string): Array<{ iface: string; address: Bits; prefixLength: number }> {
  const out: Array<{ iface: string; address: Bits; prefixLength: number }> = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length !== 6 || !/^[0-9a-f]{32}$/i.test(f[0]!) || !/^[0-9a-f]{2}$/i.test(f[2]!)) continue;
    const address = ipv6ToBits(f[0]!.match(/.{4}/g)!.join(":"));
    if (address !== null) out.push({ iface: f[5]!, address, prefixLength: parseInt(f[2]!, 16) });
  }
  return out;
}

export interface Repair {
  iface: string;
  /** It is down: set it up. */
  up: boolean;
  /** The node address is missing from it: add it. */
  address: boolean;
}

/**
 * What to repair on `ifaces` (the interfaces whose server runs), given
 * /proc/net/if_inet6 and each interface's up flag (null: no such interface,
 * nothing to repair: its server makes it when it starts).
 */
export function repairs(ifaces: readonly string[], address: Bits, ifInet6: string, isUp: (iface: string) => boolean | null): Repair[] {
  const present = parseIfInet6(ifInet6);
  const out: Repair[] = [];
  for (const iface of ifaces) {
    const up = isUp(iface);
    if (up === null) continue;
    const has = present.some((a) => a.iface === iface && a.address === address);
    if (!up || !has) out.push({ iface, up: !up, address: !has });
  }
  return out;
}

/** Hellos between two looks when the kernel reports nothing. */
export const SAFETY_HELLOS = 4;
/** A burst of reports (a link going down takes its addresses with it) is one look, this long after the first. */
export const WATCH_DELAY_MS = 50;

/** Reports of changes to links and addresses (`ip monitor`), as the keeper takes them. */
export interface Watch {
  /** Starts reporting to `changed` (also once when it (re)starts: it may have missed changes meanwhile). */
  start(changed: () => void): void;
  stop(): Promise<void>;
}

export interface KeeperDeps {
  /** The interfaces to keep (those of servers whose up hook has run). */
  interfaces(): string[];
  readIfInet6(): string;
  isUp(iface: string): boolean | null;
  /** Runs `ip` with these arguments; rejects with its error. */
  ip(args: string[]): Promise<void>;
  watch: Watch;
  timers: Timers;
  now: () => number;
  logger: Logger;
}

export class AddressKeeper {
  private timer: Timer | null = null;
  private soon: Timer | null = null;
  private checking: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  private readonly bits: Bits;
  restores = 0;
  lastRestore: number | null = null;

  /** `address` the node address, `subnet` it with its length ("2001:db8:42:5::/64"). */
  constructor(address: string, private readonly subnet: string, private readonly hello: number, private readonly deps: KeeperDeps) {
    this.bits = ipv6ToBits(address)!;
  }

  start(): void {
    this.deps.watch.start(() => this.changed());
    this.schedule();
  }

  /** The safety look, every SAFETY_HELLOS hellos. */
  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.deps.timers.after(this.hello * 1000 * SAFETY_HELLOS, () => {
      this.timer = null;
      this.look();
      this.schedule();
    });
  }

  /** The kernel reported a change: one look shortly (a burst of reports is one look). */
  changed(): void {
    if (this.stopped || this.soon !== null) return;
    this.soon = this.deps.timers.after(WATCH_DELAY_MS, () => {
      this.soon = null;
      this.look();
    });
  }

  /** A look, or one more after the one under way (its repairs may race the change). */
  private look(): void {
    if (this.checking) {
      this.again = true;
      return;
    }
    this.checking = this.check().finally(() => {
      this.checking = null;
      if (this.again && !this.stopped) {
        this.again = false;
        this.look();
      }
    });
  }

  /** One look, and the repairs. */
  async check(): Promise<void> {
    const { deps } = this;
    for (const r of repairs(deps.interfaces(), this.bits, deps.readIfInet6(), deps.isUp)) {
      try {
        if (r.up) await deps.ip(["link", "set", "dev", r.iface, "up"]);
        await deps.ip(["-6", "addr", "replace", this.subnet, "dev", r.iface]);
        this.restores++;
        this.lastRestore = deps.now();
        deps.logger.log(1, `Restored ${r.up ? `${r.iface} (it was down) and ` : ""}the node address ${this.subnet} on ${r.iface}`);
      } catch (e) {
        deps.logger.warn(`cannot restore the node address on ${r.iface}: ${(e as Error).message}`);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.soon?.cancel();
    await this.deps.watch.stop();
    await this.checking;
  }
}
