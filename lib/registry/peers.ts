// The registry's peer table in memory, for random picks whose cost does not
// grow with the table: the legacy `ORDER BY random()` scans and sorts every
// row on each request (44 requests/s at 100,000 peers). The SQLite table stays
// the source of truth; this mirror is loaded from it and updated alongside it.

import { Bits } from "../utils/address";

/** Returns an integer in [0, n). */
export type RandomInt = (n: number) => number;

export const mathRandomInt: RandomInt = (n) => Math.floor(Math.random() * n);

export type Peer = [prefix: Bits, address: string];

export class PeerSet {
  private readonly peers: Peer[] = [];
  private readonly index = new Map<Bits, number>();

  constructor(rows: Iterable<{ prefix: Bits; address: string }> = []) {
    for (const r of rows) this.set(r.prefix, r.address);
  }

  get size(): number {
    return this.peers.length;
  }

  set(prefix: Bits, address: string): void {
    const at = this.index.get(prefix);
    if (at === undefined) {
      this.index.set(prefix, this.peers.length);
      this.peers.push([prefix, address]);
    } else {
      this.peers[at] = [prefix, address];
    }
  }

  delete(prefix: Bits): void {
    const at = this.index.get(prefix);
    if (at === undefined) return;
    const last = this.peers.pop()!;
    this.index.delete(prefix);
    if (at < this.peers.length) {
      this.peers[at] = last;
      this.index.set(last[0], at);
    }
  }

  /** Up to n distinct peers in random order: O(n) whatever the size (Floyd's sampling). */
  sample(n: number, random: RandomInt = mathRandomInt): Peer[] {
    const total = this.peers.length;
    const k = Math.min(n, total);
    const picked = new Set<number>();
    for (let j = total - k; j < total; j++) {
      const t = random(j + 1);
      picked.add(picked.has(t) ? j : t);
    }
    const out = Array.from(picked, (i) => this.peers[i]!);
    for (let i = out.length - 1; i > 0; i--) {
      const j = random(i + 1);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }
}
