// Self-healing of the node address: every quarter hello, the daemon checks
// that each running server's interface is up and holds the node address
// (SPEC section 6: the server's --up hook puts it there), and puts back what
// is missing. Deleting the address, a link flap (an interface set down loses
// its IPv6 addresses) or an operator's mistake is repaired within one hello,
// without a restart. The reads of /proc and /sys and the `ip` runner are
// handed in; the decision is pure.

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

export interface KeeperDeps {
  /** The interfaces to keep (those of running servers). */
  interfaces(): string[];
  readIfInet6(): string;
  isUp(iface: string): boolean | null;
  /** Runs `ip` with these arguments; rejects with its error. */
  ip(args: string[]): Promise<void>;
  timers: Timers;
  now: () => number;
  logger: Logger;
}

export class AddressKeeper {
  private timer: Timer | null = null;
  private stopped = false;
  private readonly bits: Bits;
  restores = 0;
  lastRestore: number | null = null;

  /** `address` the node address, `subnet` it with its length ("2001:db8:42:5::/64"). */
  constructor(address: string, private readonly subnet: string, private readonly hello: number, private readonly deps: KeeperDeps) {
    this.bits = ipv6ToBits(address)!;
  }

  start(): void {
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.deps.timers.after((this.hello * 1000) / 4, () => {
      this.timer = null;
      void this.check().finally(() => this.schedule());
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
  }
}
