// Every simulated node's peers.db, with the semantics of lib/db.ts (PeersDb)
// on typed arrays: 100,000 SQLite files would not fit. A row is a peer (a
// node index), its `used` (1 a tunnel is up, 0 free, -1 its tunnel died) and
// its `date` (seconds of simulated time the registry last mentioned it).
// What each method mirrors is named on it; SQLite's random() is `rng`.

import type { Rng } from "./rng";

/** A `used` value no row has: marks the rows populate drops. */
const DROP = 2;

export interface PopulateCounts {
  added: number;
  updated: number;
  skipped: number;
  dropped: number;
}

export class PeersDbs {
  private readonly peer: Int32Array;
  private readonly used: Int8Array;
  private readonly date: Int32Array;
  private readonly size: Int32Array;
  /** Row of a peer in the node being populated (+1), 0 otherwise: populate's "known" lookup. */
  private readonly rowOf: Int32Array;
  // Scratch of populate and unused, sized for one node.
  private readonly sPeer: Int32Array;
  private readonly sUsed: Int8Array;
  private readonly sDate: Int32Array;
  private readonly sKey: Float64Array;
  private readonly sPick: Int32Array;
  private readonly sRowKey: Float64Array;

  /**
   * `nodes` databases of at most `cap` rows each (PEERS_DB_SIZE), for lists
   * of up to `listMax` items, of peers numbered 0 to `peers` - 1.
   */
  constructor(readonly nodes: number, readonly cap: number, private readonly listMax: number, readonly peers: number = nodes) {
    this.peer = new Int32Array(nodes * cap);
    this.used = new Int8Array(nodes * cap);
    this.date = new Int32Array(nodes * cap);
    this.size = new Int32Array(nodes);
    this.rowOf = new Int32Array(peers);
    const scratch = cap + listMax;
    this.sPeer = new Int32Array(scratch);
    this.sUsed = new Int8Array(scratch);
    this.sDate = new Int32Array(scratch);
    this.sKey = new Float64Array(scratch);
    this.sPick = new Int32Array(scratch);
    this.sRowKey = new Float64Array(scratch);
  }

  /** A copy, for the kill experiments that start from the same network. */
  clone(): PeersDbs {
    const c = new PeersDbs(this.nodes, this.cap, this.listMax, this.peers);
    c.peer.set(this.peer);
    c.used.set(this.used);
    c.date.set(this.date);
    c.size.set(this.size);
    return c;
  }

  count(u: number): number {
    return this.size[u]!;
  }

  /** Rows of node u as [peer, used, date], in storage order (for tests and checks). */
  rows(u: number): Array<[peer: number, used: number, date: number]> {
    const base = u * this.cap;
    return Array.from({ length: this.size[u]! }, (_, i) => [this.peer[base + i]!, this.used[base + i]!, this.date[base + i]!]);
  }

  private find(u: number, p: number): number {
    const base = u * this.cap, end = base + this.size[u]!;
    for (let i = base; i < end; i++) if (this.peer[i] === p) return i;
    return -1;
  }

  /** addPeer: setup's bootstrap peer (a new row, used 0), or nothing if known. */
  addPeer(u: number, p: number, date: number): void {
    if (!(p >= 0 && p < this.peers)) throw new RangeError(`peer ${p} out of range`);
    if (this.find(u, p) >= 0 || this.size[u]! >= this.cap) return;
    const at = u * this.cap + this.size[u]!++;
    this.peer[at] = p;
    this.used[at] = 0;
    this.date[at] = date;
  }

  /** setUsed: false when the peer is not in u's database. */
  setUsed(u: number, p: number, used: 1 | 0 | -1): boolean {
    const i = this.find(u, p);
    if (i < 0) return false;
    this.used[i] = used;
    return true;
  }

  /** removePeer. */
  removePeer(u: number, p: number): boolean {
    const i = this.find(u, p);
    if (i < 0) return false;
    const last = u * this.cap + --this.size[u]!;
    this.peer[i] = this.peer[last]!;
    this.used[i] = this.used[last]!;
    this.date[i] = this.date[last]!;
    return true;
  }

  /**
   * unusedPeers(limit): the peers without a tunnel, free (0) before dead
   * (-1), in random order within each (ORDER BY used DESC, random()), at
   * most `limit`. Fills `out` with [peer, used] pairs and returns how many.
   */
  unusedPeers(u: number, limit: number, rng: Rng, out: { peer: Int32Array; used: Int8Array }): number {
    const base = u * this.cap, size = this.size[u]!;
    let got = 0;
    for (const want of [0, -1]) {
      if (got >= limit) break;
      let k = 0;
      for (let i = 0; i < size; i++) if (this.used[base + i] === want) this.sPick[k++] = this.peer[base + i]!;
      // A partial Fisher-Yates: the first picks of a random order.
      for (let i = 0; i < k && got < limit; i++) {
        const j = i + rng.int(k - i);
        const t = this.sPick[j]!;
        this.sPick[j] = this.sPick[i]!;
        this.sPick[i] = t;
        out.peer[got] = t;
        out.used[got] = want;
        got++;
      }
    }
    return got;
  }

  /**
   * populate(list, own, maxSize): stores a getPeerList answer. Skips our own
   * index; a known peer gets date `now` and keeps its `used`; a new one comes
   * in free. Over `maxSize` rows, drops the rows without a tunnel
   * mentioned least recently, dead before free among equals, at random past
   * that (ORDER BY date ASC, used ASC, random()). (There are no malformed
   * items or LAN peers in the simulation.)
   */
  populate(u: number, list: ArrayLike<number>, own: number, maxSize: number, now: number, rng: Rng): PopulateCounts {
    if (list.length > this.listMax) throw new RangeError(`a peer list of ${list.length} items, over ${this.listMax}`);
    const counts: PopulateCounts = { added: 0, updated: 0, skipped: 0, dropped: 0 };
    const base = u * this.cap;
    let size = this.size[u]!;
    const { sPeer, sUsed, sDate, rowOf } = this;
    for (let i = 0; i < size; i++) {
      sPeer[i] = this.peer[base + i]!;
      sUsed[i] = this.used[base + i]!;
      sDate[i] = this.date[base + i]!;
      rowOf[sPeer[i]!] = i + 1;
    }
    for (let i = 0; i < list.length; i++) {
      const p = list[i]!;
      if (!(p >= 0 && p < this.peers)) throw new RangeError(`peer ${p} out of range`);
      if (p === own) {
        counts.skipped++;
        continue;
      }
      const r = rowOf[p]!;
      if (r > 0) {
        sDate[r - 1] = now;
        counts.updated++;
      } else {
        sPeer[size] = p;
        sUsed[size] = 0;
        sDate[size] = now;
        rowOf[p] = ++size;
        counts.added++;
      }
    }
    for (let i = 0; i < size; i++) rowOf[sPeer[i]!] = 0;
    const over = size - Math.min(maxSize, this.cap);
    if (over > 0) {
      // (date, used, random) as one number per droppable row; the `over` smallest go.
      let k = 0;
      for (let i = 0; i < size; i++) {
        this.sRowKey[i] = Infinity;
        if (sUsed[i]! > 0) continue;
        const key = sDate[i]! * 4 + (sUsed[i]! + 1) * 2 + rng.next();
        this.sRowKey[i] = key;
        this.sKey[k++] = key;
      }
      const drop = Math.min(over, k);
      if (drop > 0) {
        const threshold = this.sKey.subarray(0, k).sort()[drop - 1]!;
        let marked = 0;
        for (let i = 0; i < size; i++) if (this.sRowKey[i]! < threshold) {
          sUsed[i] = DROP;
          marked++;
        }
        for (let i = 0; i < size && marked < drop; i++) if (this.sRowKey[i] === threshold) {
          sUsed[i] = DROP;
          marked++;
        }
      }
      counts.dropped = drop;
    }
    let w = 0;
    for (let i = 0; i < size; i++) {
      if (sUsed[i] === DROP) continue;
      this.peer[base + w] = sPeer[i]!;
      this.used[base + w] = sUsed[i]!;
      this.date[base + w] = sDate[i]!;
      w++;
    }
    this.size[u] = w;
    return counts;
  }
}
