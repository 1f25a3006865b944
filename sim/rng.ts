// Seeded random numbers for the simulator: every choice of a run (the
// registry's picks, peers.db's random() orders, the planner's ties, the
// order in which nodes refresh, the sampled BFS sources) draws from one of
// these, so a seed fixes the whole run. sfc32, seeded through splitmix32:
// fast, 128 bits of state, good enough for simulation (not for keys).

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** A string's 32-bit FNV-1a hash: names the independent streams of one seed. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** The stream `label` of `seed`: the same pair always gives the same numbers, other labels others. */
  constructor(seed: number, label = "") {
    const mix = splitmix32((seed >>> 0) ^ hash32(label));
    this.a = mix();
    this.b = mix();
    this.c = mix();
    this.d = mix() | 1;
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** Uniform 32-bit unsigned integer. */
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.u32() / 4294967296;
  }

  /** Uniform integer in [0, n), n >= 1. */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** `next` as a plain function, for APIs that take one (planRefresh's rng). */
  readonly random = (): number => this.next();
  /** `int` as a plain function (the registry's RandomInt). */
  readonly randomInt = (n: number): number => this.int(n);
}

/** Fisher-Yates, in place. */
export function shuffleInPlace(a: Int32Array | number[], rng: Rng): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
}

/** k distinct items of `items` at random, in random order (a partial Fisher-Yates on a copy). */
export function pick<T>(items: readonly T[], k: number, rng: Rng): T[] {
  const pool = [...items];
  const m = Math.min(k, pool.length);
  for (let i = 0; i < m; i++) {
    const j = i + rng.int(pool.length - i);
    const t = pool[i]!;
    pool[i] = pool[j]!;
    pool[j] = t;
  }
  return pool.slice(0, m);
}

/**
 * k distinct integers of [0, n) at random, in random order, into `out`
 * (Floyd's sampling, as the registry's PeerSet draws getPeerList's rows);
 * `mark` is scratch of n zeros, left as zeros. Returns how many (min(k, n)).
 */
export function sampleDistinct(n: number, k: number, rng: Rng, out: Int32Array, mark: Uint8Array): number {
  const m = Math.min(k, n);
  let c = 0;
  for (let j = n - m; j < n; j++) {
    const t = rng.int(j + 1);
    const v = mark[t] === 1 ? j : t;
    mark[v] = 1;
    out[c++] = v;
  }
  for (let i = 0; i < m; i++) mark[out[i]!] = 0;
  shuffleInPlace(out.subarray(0, m), rng);
  return m;
}

/** The integers 0..n-1 in random order. */
export function permutation(n: number, rng: Rng): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  shuffleInPlace(out, rng);
  return out;
}
