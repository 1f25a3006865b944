// The tunnel graph as babel routes over it, and what the simulator measures
// on it. Tunnels are undirected edges; each node's adjacency lists its
// tunnels oldest first, and among equally short paths babel keeps the route
// it already has, so the oldest tunnel wins a tie (see docs/scale.md).
//
// One bit-parallel breadth-first search (many sources at once, one bit per
// source in a word per node) gives both what the planner needs (for every
// node and tunnel, how many of the sources it routes through that tunnel)
// and what the report needs (distances from the sources to every node).

/** Compressed adjacency: node u's neighbours are targets[offsets[u] .. offsets[u+1]). */
export interface Csr {
  n: number;
  offsets: Int32Array;
  targets: Int32Array;
}

/**
 * The graph of `count` undirected edges (a[i], b[i]), each node's neighbours
 * in edge order. `halfEdge[i]` is where b[i] sits in a[i]'s list: the
 * position of a[i]'s side of the tunnel, whose route count the BFS gives.
 */
export function buildCsr(n: number, a: Int32Array, b: Int32Array, count: number): { csr: Csr; halfEdge: Int32Array } {
  const offsets = new Int32Array(n + 1);
  for (let i = 0; i < count; i++) {
    offsets[a[i]! + 1]!++;
    offsets[b[i]! + 1]!++;
  }
  for (let u = 0; u < n; u++) offsets[u + 1]! += offsets[u]!;
  const cursor = offsets.slice(0, n);
  const targets = new Int32Array(2 * count);
  const halfEdge = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const u = a[i]!, v = b[i]!;
    const pu = cursor[u]!++;
    targets[pu] = v;
    halfEdge[i] = pu;
    targets[cursor[v]!++] = u;
  }
  return { csr: { n, offsets, targets }, halfEdge };
}

/** Size of the connected component of every node's root, by union-find; `members` limits the nodes counted. */
export function componentSizes(csr: Csr, members?: Uint8Array): { largest: number; connectedPairs: number; nodes: number } {
  const { n, offsets, targets } = csr;
  const parent = new Int32Array(n);
  for (let u = 0; u < n; u++) parent[u] = u;
  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]!]!;
      x = parent[x]!;
    }
    return x;
  };
  for (let u = 0; u < n; u++)
    for (let j = offsets[u]!; j < offsets[u + 1]!; j++) {
      const ru = find(u), rv = find(targets[j]!);
      if (ru !== rv) parent[ru] = rv;
    }
  const size = new Int32Array(n);
  let nodes = 0;
  for (let u = 0; u < n; u++)
    if (members === undefined || members[u] === 1) {
      size[find(u)]!++;
      nodes++;
    }
  let largest = 0, connectedPairs = 0;
  for (let u = 0; u < n; u++) {
    const s = size[u]!;
    if (s > largest) largest = s;
    connectedPairs += s * (s - 1);
  }
  return { largest, connectedPairs, nodes };
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/** Sources searched together: 32 per word, WORDS words per node (pullLevel is written for 8). */
export const WORDS = 8;
export const BATCH = 32 * WORDS;

/** What a search from a set of sources found. Distances count ordered (source, node) pairs, node != source. */
export interface BfsTotals {
  /** Reachable (source, node) pairs. */
  pairs: number;
  /** Sum of their hop distances. */
  distance: number;
  /** Longest distance from a source. */
  maxDistance: number;
  /** Per group of 32 sources (a word): pairs and distance sums, for the sampling error. */
  groupPairs: number[];
  groupDistance: number[];
}

/** Scratch arrays of one searcher, reused from batch to batch. */
export class BfsScratch {
  seen: Int32Array;
  front: Int32Array;
  next: Int32Array;
  frontAny: Uint8Array;
  /** Nodes with bits in `front`, and in `next` once a level is done. */
  frontList: Int32Array;
  nextList: Int32Array;
  /** Nodes a sparse level pulls for, and the level that last listed each. */
  pullList: Int32Array;
  listedAt: Int32Array;
  constructor(readonly n: number) {
    this.seen = new Int32Array(n * WORDS);
    this.front = new Int32Array(n * WORDS);
    this.next = new Int32Array(n * WORDS);
    this.frontAny = new Uint8Array(n);
    this.frontList = new Int32Array(n);
    this.nextList = new Int32Array(n);
    this.pullList = new Int32Array(n);
    this.listedAt = new Int32Array(n);
  }
}

/**
 * One level of the search, pulling: every node u listed (`list`, or all
 * nodes when null) that is not done yet takes, from its neighbours in
 * adjacency order, the sources they reached at the previous level (`front`)
 * that u had not seen; the first neighbour to offer a source is u's route to
 * it, counted in routes[j]. Writes what u found into `next`. The eight words
 * are spelled out: this loop is nearly all of the search time, and locals
 * beat an array here.
 */
function pullLevel(
  csr: Csr, list: Int32Array | null, count: number, valid: Int32Array, seen: Int32Array, front: Int32Array, next: Int32Array,
  frontAny: Uint8Array, routes: Uint32Array,
): void {
  const { offsets, targets } = csr;
  const v0 = valid[0]!, v1 = valid[1]!, v2 = valid[2]!, v3 = valid[3]!, v4 = valid[4]!, v5 = valid[5]!, v6 = valid[6]!, v7 = valid[7]!;
  for (let i = 0; i < count; i++) {
    const u = list === null ? i : list[i]!;
    const b = u * 8;
    const i0 = v0 & ~seen[b]!, i1 = v1 & ~seen[b + 1]!, i2 = v2 & ~seen[b + 2]!, i3 = v3 & ~seen[b + 3]!;
    const i4 = v4 & ~seen[b + 4]!, i5 = v5 & ~seen[b + 5]!, i6 = v6 & ~seen[b + 6]!, i7 = v7 & ~seen[b + 7]!;
    let r0 = i0, r1 = i1, r2 = i2, r3 = i3, r4 = i4, r5 = i5, r6 = i6, r7 = i7;
    if ((r0 | r1 | r2 | r3 | r4 | r5 | r6 | r7) === 0) continue;
    const end = offsets[u + 1]!;
    for (let j = offsets[u]!; j < end; j++) {
      const v = targets[j]!;
      if (frontAny[v] === 0) continue;
      const f = v * 8;
      let m: number, here = 0;
      m = front[f]! & r0; if (m !== 0) { here += popcount(m); r0 ^= m; }
      m = front[f + 1]! & r1; if (m !== 0) { here += popcount(m); r1 ^= m; }
      m = front[f + 2]! & r2; if (m !== 0) { here += popcount(m); r2 ^= m; }
      m = front[f + 3]! & r3; if (m !== 0) { here += popcount(m); r3 ^= m; }
      m = front[f + 4]! & r4; if (m !== 0) { here += popcount(m); r4 ^= m; }
      m = front[f + 5]! & r5; if (m !== 0) { here += popcount(m); r5 ^= m; }
      m = front[f + 6]! & r6; if (m !== 0) { here += popcount(m); r6 ^= m; }
      m = front[f + 7]! & r7; if (m !== 0) { here += popcount(m); r7 ^= m; }
      if (here !== 0) {
        routes[j]! += here;
        if ((r0 | r1 | r2 | r3 | r4 | r5 | r6 | r7) === 0) break;
      }
    }
    next[b] = i0 ^ r0; next[b + 1] = i1 ^ r1; next[b + 2] = i2 ^ r2; next[b + 3] = i3 ^ r3;
    next[b + 4] = i4 ^ r4; next[b + 5] = i5 ^ r5; next[b + 6] = i6 ^ r6; next[b + 7] = i7 ^ r7;
  }
}

/**
 * Breadth-first search from up to BATCH sources at once. Adds to
 * `routes[j]`, for every position j of node u's adjacency (u's tunnel to
 * targets[j]), the number of sources d whose route from u leaves through
 * that tunnel: the first neighbour, in adjacency order, one hop closer to d.
 * Adds the distances found to `totals`. A level whose frontier touches few
 * tunnels pulls only for the frontier's neighbours (the first levels, and
 * the long thin paths of a young network); the others pull for every node.
 */
export function searchBatch(csr: Csr, sources: ArrayLike<number>, routes: Uint32Array, totals: BfsTotals, scratch: BfsScratch): void {
  const { n, offsets, targets } = csr;
  const W = WORDS;
  const k = sources.length;
  if (k === 0) return;
  if (k > BATCH) throw new RangeError(`at most ${BATCH} sources per batch`);
  let { front, next, frontList, nextList } = scratch;
  const { seen, frontAny, pullList, listedAt } = scratch;
  seen.fill(0);
  front.fill(0);
  next.fill(0);
  frontAny.fill(0);
  listedAt.fill(0);
  // Bits of the batch that are sources: a node is done when it has seen them all.
  const valid = new Int32Array(W);
  for (let i = 0; i < k; i++) valid[i >>> 5]! |= 1 << (i & 31);
  let frontCount = 0;
  for (let i = 0; i < k; i++) {
    const s = sources[i]!;
    const at = s * W + (i >>> 5);
    seen[at]! |= 1 << (i & 31);
    front[at]! |= 1 << (i & 31);
    if (frontAny[s] === 0) frontList[frontCount++] = s;
    frontAny[s] = 1;
  }
  const groups = Math.ceil(k / 32);
  const gPairs = new Float64Array(groups);
  const gDist = new Float64Array(groups);
  // Below this many tunnels touched, listing the frontier's neighbours beats a pass over every node.
  const sparseBelow = Math.max(n, targets.length / 8);
  for (let level = 1; ; level++) {
    let touched = 0;
    for (let i = 0; i < frontCount; i++) {
      const v = frontList[i]!;
      touched += offsets[v + 1]! - offsets[v]!;
    }
    let pulled = n;
    if (touched < sparseBelow) {
      pulled = 0;
      for (let i = 0; i < frontCount; i++) {
        const v = frontList[i]!;
        for (let j = offsets[v]!; j < offsets[v + 1]!; j++) {
          const u = targets[j]!;
          if (listedAt[u] !== level) {
            listedAt[u] = level;
            pullList[pulled++] = u;
          }
        }
      }
      pullLevel(csr, pullList, pulled, valid, seen, front, next, frontAny, routes);
    } else pullLevel(csr, null, n, valid, seen, front, next, frontAny, routes);
    // What this level found becomes the frontier; the old frontier's words are cleared for reuse.
    for (let i = 0; i < frontCount; i++) {
      const v = frontList[i]!;
      frontAny[v] = 0;
      front.fill(0, v * W, v * W + W);
    }
    let found = 0, nextCount = 0;
    for (let i = 0; i < pulled; i++) {
      const u = pulled === n ? i : pullList[i]!;
      const base = u * W;
      let any = 0;
      for (let w = 0; w < W; w++) {
        const f = next[base + w]!;
        if (f === 0) continue;
        seen[base + w]! |= f;
        any = 1;
        const c = popcount(f);
        gPairs[w]! += c; // word w holds sources 32w..32w+31: group w
        gDist[w]! += c * level;
        found += c;
      }
      if (any === 1) {
        frontAny[u] = 1;
        nextList[nextCount++] = u;
      }
    }
    [front, next] = [next, front];
    [frontList, nextList] = [nextList, frontList];
    frontCount = nextCount;
    if (found === 0) break;
    totals.pairs += found;
    totals.distance += found * level;
    if (level > totals.maxDistance) totals.maxDistance = level;
  }
  scratch.front = front;
  scratch.next = next;
  scratch.frontList = frontList;
  scratch.nextList = nextList;
  for (let g = 0; g < groups; g++) {
    totals.groupPairs.push(gPairs[g]!);
    totals.groupDistance.push(gDist[g]!);
  }
}

export function emptyTotals(): BfsTotals {
  return { pairs: 0, distance: 0, maxDistance: 0, groupPairs: [], groupDistance: [] };
}

/** Searches from every source in `sources`, BATCH at a time. */
export function searchAll(csr: Csr, sources: ArrayLike<number>, routes: Uint32Array, scratch: BfsScratch = new BfsScratch(csr.n)): BfsTotals {
  const totals = emptyTotals();
  const batch: number[] = [];
  for (let i = 0; i < sources.length; i++) {
    batch.push(sources[i]!);
    if (batch.length === BATCH) {
      searchBatch(csr, batch, routes, totals, scratch);
      batch.length = 0;
    }
  }
  searchBatch(csr, batch, routes, totals, scratch);
  return totals;
}

/**
 * Mean distance over the reachable pairs found, and its standard error when
 * the sources are a random sample of `population` nodes: the spread of the
 * groups' means (32 sources each) over the square root of their number,
 * with the finite-population correction. 0 when every node was a source.
 */
export function meanDistance(t: BfsTotals, sources: number, population: number): { mean: number; error: number } {
  const mean = t.pairs === 0 ? 0 : t.distance / t.pairs;
  const groups = t.groupPairs.map((p, i) => (p === 0 ? null : t.groupDistance[i]! / p)).filter((m): m is number => m !== null);
  if (sources >= population || groups.length < 2) return { mean, error: 0 };
  const gMean = groups.reduce((s, m) => s + m, 0) / groups.length;
  const variance = groups.reduce((s, m) => s + (m - gMean) ** 2, 0) / (groups.length - 1);
  const fpc = Math.sqrt(Math.max(0, 1 - sources / population));
  return { mean, error: Math.sqrt(variance / groups.length) * fpc };
}
