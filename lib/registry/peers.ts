// The registry's peer table in memory, for random picks whose cost does not
// grow with the table: the legacy `ORDER BY random()` scans and sorts every
// row on each request (44 requests/s at 100,000 peers). The SQLite table stays
// the source of truth; this mirror is loaded from it and updated alongside it.

import { Bits } from "../utils/address";
import { RawXml, serializeValue } from "../xmlrpc";

/** Returns an integer in [0, n). */
export type RandomInt = (n: number) => number;

export const mathRandomInt: RandomInt = (n) => Math.floor(Math.random() * n);

export type Peer = [prefix: Bits, address: string];

/** A peer as XML-RPC, built once: serializing 50 peers per request was a tenth of its cost. */
function peerXml(peer: Peer): string {
  // A flat copy: a concatenated string is a rope, slow to read again and again.
  return Buffer.from(serializeValue(peer)).toString();
}

export class PeerSet {
  private readonly peers: Peer[] = [];
  private readonly xml: string[] = [];
  private readonly index = new Map<Bits, number>();

  constructor(rows: Iterable<{ prefix: Bits; address: string }> = []) {
    for (const r of rows) this.set(r.prefix, r.address);
  }

  get size(): number {
    return this.peers.length;
  }

  has(prefix: Bits): boolean {
    return this.index.has(prefix);
  }

  set(prefix: Bits, address: string): void {
    const at = this.index.get(prefix);
    const peer: Peer = [prefix, address];
    if (at === undefined) {
      this.index.set(prefix, this.peers.length);
      this.peers.push(peer);
      this.xml.push(peerXml(peer));
    } else {
      this.peers[at] = peer;
      this.xml[at] = peerXml(peer);
    }
  }

  delete(prefix: Bits): void {
    const at = this.index.get(prefix);
    if (at === undefined) return;
    const last = this.peers.pop()!;
    const lastXml = this.xml.pop()!;
    this.index.delete(prefix);
    if (at < this.peers.length) {
      this.peers[at] = last;
      this.xml[at] = lastXml;
      this.index.set(last[0], at);
    }
  }

  /** Up to n distinct indices in random order: O(n) whatever the size (Floyd's sampling). */
  private sampleIndices(n: number, random: RandomInt): number[] {
    const total = this.peers.length;
    const k = Math.min(n, total);
    const picked = new Set<number>();
    for (let j = total - k; j < total; j++) {
      const t = random(j + 1);
      picked.add(picked.has(t) ? j : t);
    }
    const out = Array.from(picked);
    for (let i = out.length - 1; i > 0; i--) {
      const j = random(i + 1);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }

  /** Up to n distinct peers in random order. */
  sample(n: number, random: RandomInt = mathRandomInt): Peer[] {
    return this.sampleIndices(n, random).map((i) => this.peers[i]!);
  }

  /** The same, as the XML-RPC array of [prefix, address] pairs. */
  sampleXml(n: number, random: RandomInt = mathRandomInt): RawXml {
    let out = "<value><array><data>\n";
    for (const i of this.sampleIndices(n, random)) out += this.xml[i]!;
    return new RawXml(out + "</data></array></value>\n");
  }
}
