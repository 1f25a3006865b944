// A simulated vifibnet network: N nodes, each with its peers.db, its client
// tunnels on client1..client12 and its OpenVPN server's --max-clients, run
// refresh after refresh on a simulated clock (one round = one
// --tunnel-refresh interval). Each round, every node, in a random order,
// runs one tunnel refresh through the daemon's planner (sim/policy.ts);
// peers DB refreshes come every --peers-db-refresh; then babel settles: the
// route counts the next round's planner sees, and the round's metrics, come
// from the graph of working tunnels. docs/scale.md says what is modelled.

import { DEFAULTS } from "../lib/daemon/args";
import { PEER_LIST_SIZE, PEERS_DB_SIZE } from "../lib/peers-refresh";
import { MAX_CLIENT_TUNNELS } from "../lib/tunnel";
import type { Bits } from "../lib/utils/address";
import { BfsScratch, buildCsr, componentSizes, meanDistance, searchAll } from "./graph";
import { PeersDbs } from "./peers-db";
import { refreshNode, type PolicyHost, type RefreshTally, type SimTunnel } from "./policy";
import { Rng, permutation, pick, sampleDistinct } from "./rng";

export interface SimConfig {
  nodes: number;
  /** Client tunnels wanted, K: the nodes run with --connection-count 2K. */
  tunnels: number;
  seed: number;
  /** BFS sources per round (route counts and distances); `nodes` or more: every node, exact. */
  sources: number;
  /**
   * Which of equally short routes babel keeps: the oldest tunnel's (it had
   * the route first), or, to test how much that matters, one in a random
   * order drawn each round.
   */
  ties?: Ties;
  /** The servers' --max-clients: the connection count, as the daemon sets it, unless given (SPEC section 8 allows more). */
  maxClients?: number;
  refreshRate?: number;
  tunnelRefreshS?: number;
  peersDbRefreshS?: number;
  helloS?: number;
}

export interface Spread {
  min: number;
  mean: number;
  max: number;
}

/** The network as babel has settled it at the end of a round (retiring tunnels drained). */
export interface GraphMetrics {
  /** Nodes running. */
  nodes: number;
  /** Nodes the distances were measured from (all of them: exact). */
  sources: number;
  /** Mean hop distance over the connected pairs, and its standard error (0 when exact). */
  meanDistance: number;
  distanceError: number;
  /** Longest distance from a source. */
  maxDistance: number;
  /** Nodes in the largest connected component. */
  largestComponent: number;
  /** Share of the ordered pairs of running nodes that are connected. */
  connectedPairs: number;
  /** Working client tunnels per node (outgoing), and tunnels other nodes opened to it (incoming). */
  out: Spread;
  in: Spread;
  /** Nodes whose server is full (--max-clients tunnels, retiring ones included): they refuse new ones. */
  full: number;
  /** inHistogram[d]: nodes with d incoming working tunnels. */
  inHistogram: number[];
}

export interface RoundMetrics extends GraphMetrics {
  /** 1 for the first refresh. */
  round: number;
  opened: number;
  /** Opened to a full server or a gone node: dead at once, closed (peer -1) by the next refresh. */
  refused: number;
  dead: number;
  replaced: number;
}

export type KillKind = "random" | "best";
export type Ties = "oldest" | "random";

export interface KillResult {
  kind: KillKind;
  fraction: number;
  killed: number;
  /** Right after the kill (babel rerouted), then after one more refresh of the survivors. */
  before: GraphMetrics;
  after: GraphMetrics;
}

const S = MAX_CLIENT_TUNNELS;
const NONE = 0, UP = 1, RETIRING = 2, DEAD = 3;

export class Network implements PolicyHost {
  readonly n: number;
  readonly connectionCount: number;
  readonly maxClients: number;
  readonly refreshRate: number;
  readonly tunnelRefreshS: number;
  readonly helloS: number;
  readonly peersDbRefreshS: number;
  readonly ties: Ties;
  private readonly prefixes: Bits[];
  private readonly addresses: string[];
  private db: PeersDbs;
  // Client tunnels: node u's interface client(k+1) is slot u*S+k.
  private slotPeer: Int32Array;
  private slotState: Uint8Array;
  private slotOpenedAt: Float64Array;
  /** Which tunnel a slot holds (a counter at open), to tell a log entry still valid. */
  private slotSeq: Int32Array;
  private slotRoutes: Float64Array;
  /** Tunnels held at each node's server: the client's up or retiring ones. */
  private incoming: Int32Array;
  private gone: Uint8Array;
  /** The working tunnels, oldest first (slots and their seq; stale entries skipped). */
  private logSlot: Int32Array;
  private logSeq: Int32Array;
  private logLen = 0;
  private seq = 0;
  private roundNo = 0;
  private nextPeersRefreshS = 0;
  private rngOrder: Rng;
  private rngPlan: Rng;
  private rngRegistry: Rng;
  private rngDb: Rng;
  private rngSources: Rng;
  private rngTies: Rng;
  private readonly bfs: BfsScratch;
  private refused = 0;
  private readonly listScratch = new Int32Array(PEER_LIST_SIZE);
  private readonly listMark: Uint8Array;

  constructor(readonly config: SimConfig) {
    const n = config.nodes;
    if (!Number.isInteger(n) || n < 2) throw new RangeError(`a network needs at least 2 nodes, got ${n}`);
    if (!Number.isInteger(config.tunnels) || config.tunnels < 1) throw new RangeError(`tunnels must be a positive integer, got ${config.tunnels}`);
    this.n = n;
    this.connectionCount = 2 * config.tunnels;
    this.maxClients = config.maxClients ?? this.connectionCount;
    if (!Number.isInteger(this.maxClients) || this.maxClients < 1) throw new RangeError(`max-clients must be a positive integer, got ${this.maxClients}`);
    this.refreshRate = config.refreshRate ?? DEFAULTS.refreshRate;
    this.tunnelRefreshS = config.tunnelRefreshS ?? DEFAULTS.tunnelRefresh;
    this.peersDbRefreshS = config.peersDbRefreshS ?? DEFAULTS.peersDbRefresh;
    this.helloS = config.helloS ?? DEFAULTS.hello;
    this.ties = config.ties ?? "oldest";
    const bits = Math.max(16, Math.ceil(Math.log2(n)));
    // Flat copies: padStart and templates make ropes, which every Map lookup and parse would walk again.
    const flat = (s: string): string => Buffer.from(s).toString();
    this.prefixes = Array.from({ length: n }, (_, u) => flat(u.toString(2).padStart(bits, "0")));
    this.addresses = Array.from({ length: n }, (_, u) => flat(`10.${(u >>> 16) & 255}.${(u >>> 8) & 255}.${u & 255},1194,udp`));
    this.db = new PeersDbs(n, PEERS_DB_SIZE, PEER_LIST_SIZE);
    this.slotPeer = new Int32Array(n * S).fill(-1);
    this.slotState = new Uint8Array(n * S);
    this.slotOpenedAt = new Float64Array(n * S);
    this.slotSeq = new Int32Array(n * S);
    this.slotRoutes = new Float64Array(n * S);
    this.incoming = new Int32Array(n);
    this.gone = new Uint8Array(n);
    // Between two compactions: the working tunnels (at most 12 a node) and one round's opens (at most 12 a node).
    this.logSlot = new Int32Array(2 * n * S);
    this.logSeq = new Int32Array(2 * n * S);
    this.rngOrder = new Rng(config.seed, "order");
    this.rngPlan = new Rng(config.seed, "plan");
    this.rngRegistry = new Rng(config.seed, "registry");
    this.rngDb = new Rng(config.seed, "db");
    this.rngSources = new Rng(config.seed, "sources");
    this.rngTies = new Rng(config.seed, "ties");
    this.bfs = new BfsScratch(n);
    this.listMark = new Uint8Array(n);
    // Setup: peers.db with one bootstrap peer, a random node of those declared before (not itself).
    const boot = new Rng(config.seed, "bootstrap");
    for (let u = 0; u < n; u++) {
      const p = boot.int(n - 1);
      this.db.addPeer(u, p >= u ? p + 1 : p, 0);
    }
  }

  // ---- PolicyHost: what the planner's adapter sees and does ----

  now(): number {
    return this.roundNo * this.tunnelRefreshS * 1000;
  }

  random(): number {
    return this.rngPlan.next();
  }

  prefix(node: number): Bits {
    return this.prefixes[node]!;
  }

  address(node: number): string {
    return this.addresses[node]!;
  }

  node(prefix: Bits): number {
    // A prefix is its node's index in binary (a Map of 100,000 strings was slower).
    const u = parseInt(prefix, 2);
    if (this.prefixes[u] !== prefix) throw new Error(`no simulated node has the prefix ${prefix}`);
    return u;
  }

  tunnel(u: number, slot: number): SimTunnel | null {
    const s = u * S + slot;
    const state = this.slotState[s]!;
    if (state === NONE) return null;
    return { peer: this.slotPeer[s]!, openedAt: this.slotOpenedAt[s]!, alive: state !== DEAD, retiring: state === RETIRING };
  }

  routes(u: number, slot: number): number {
    return this.slotRoutes[u * S + slot]!;
  }

  unusedPeers(u: number, limit: number, out: { peer: Int32Array; used: Int8Array }): number {
    return this.db.unusedPeers(u, limit, this.rngDb, out);
  }

  closeTunnel(u: number, slot: number): void {
    const s = u * S + slot;
    const state = this.slotState[s]!;
    if (state === UP || state === RETIRING) this.incoming[this.slotPeer[s]!]!--;
    this.slotState[s] = NONE;
    this.slotPeer[s] = -1;
  }

  retireTunnel(u: number, slot: number): void {
    const s = u * S + slot;
    if (this.slotState[s] === UP) this.slotState[s] = RETIRING;
  }

  /** The tunnel comes up unless the peer is gone or its server is full: then OpenVPN gives up, the tunnel is dead. */
  openTunnel(u: number, slot: number, peer: number): void {
    const s = u * S + slot;
    if (this.slotState[s] !== NONE) throw new Error(`node ${u}: the planner opened a tunnel on client${slot + 1}, which is in use`);
    this.slotPeer[s] = peer;
    this.slotOpenedAt[s] = this.now();
    this.slotSeq[s] = ++this.seq;
    this.slotRoutes[s] = 0;
    if (this.gone[peer] === 1 || this.incoming[peer]! >= this.maxClients) {
      this.slotState[s] = DEAD;
      this.refused++;
      return;
    }
    this.slotState[s] = UP;
    this.incoming[peer]!++;
    if (this.logLen === this.logSlot.length) throw new Error("the log of working tunnels is full: more opens in a round than interfaces");
    this.logSlot[this.logLen] = s;
    this.logSeq[this.logLen] = this.seq;
    this.logLen++;
  }

  setUsed(u: number, peer: number, used: 1 | 0 | -1): void {
    this.db.setUsed(u, peer, used);
  }

  removePeer(u: number, peer: number): void {
    this.db.removePeer(u, peer);
  }

  // ---- Rounds ----

  /** One --tunnel-refresh interval: every running node refreshes, peers DBs when due, then babel settles. */
  round(): RoundMetrics {
    const tally = this.refreshAll();
    return { round: this.roundNo, ...this.settle(), ...tally };
  }

  private refreshAll(): RefreshTally & { refused: number } {
    const tally: RefreshTally = { opened: 0, dead: 0, replaced: 0 };
    this.refused = 0;
    for (const u of permutation(this.n, this.rngOrder)) if (this.gone[u] === 0) refreshNode(this, u, tally);
    // A peers DB refresh due at this refresh's time comes just after it (the
    // daemon starts both at once, and the registry's answer takes longer).
    const nowS = this.roundNo * this.tunnelRefreshS;
    while (this.nextPeersRefreshS < nowS + this.tunnelRefreshS) {
      for (let u = 0; u < this.n; u++) if (this.gone[u] === 0) this.refreshPeers(u, nowS);
      this.nextPeersRefreshS += this.peersDbRefreshS;
    }
    this.roundNo++;
    return { ...tally, refused: this.refused };
  }

  /**
   * declare (the registry holds every node already) then getPeerList(200)
   * into peers.db: the registry answers up to 200 distinct nodes at random,
   * the asking one among them possibly (populate skips it), the gone ones
   * too (the registry forgets a node a day after its last declare).
   */
  private refreshPeers(u: number, nowS: number): void {
    const k = sampleDistinct(this.n, PEER_LIST_SIZE, this.rngRegistry, this.listScratch, this.listMark);
    this.db.populate(u, this.listScratch.subarray(0, k), u, PEERS_DB_SIZE, nowS, this.rngDb);
  }

  /** Babel settles on the working tunnels: route counts for the next refresh, and the metrics. */
  private settle(): GraphMetrics {
    const { n } = this;
    let w = 0;
    for (let i = 0; i < this.logLen; i++) {
      const s = this.logSlot[i]!;
      if (this.slotSeq[s] !== this.logSeq[i] || this.slotState[s] !== UP) continue;
      this.logSlot[w] = s;
      this.logSeq[w] = this.logSeq[i]!;
      w++;
    }
    this.logLen = w;
    // Edges in adjacency order: oldest first, or shuffled (SimConfig.ties).
    const order = this.ties === "random" ? permutation(w, this.rngTies) : null;
    const edgeSlot = order === null ? this.logSlot.subarray(0, w) : Int32Array.from(order, (i) => this.logSlot[i]!);
    const a = new Int32Array(w), b = new Int32Array(w);
    const outDeg = new Int32Array(n), inDeg = new Int32Array(n);
    for (let i = 0; i < w; i++) {
      const s = edgeSlot[i]!;
      a[i] = (s / S) | 0;
      b[i] = this.slotPeer[s]!;
      outDeg[a[i]!]!++;
      inDeg[b[i]!]!++;
    }
    const { csr, halfEdge } = buildCsr(n, a, b, w);
    const alive: number[] = [];
    for (let u = 0; u < n; u++) if (this.gone[u] === 0) alive.push(u);
    const sources = this.pickSources(alive);
    const routes = new Uint32Array(2 * w);
    const totals = searchAll(csr, sources, routes, this.bfs);
    this.slotRoutes.fill(0);
    const scale = alive.length / sources.length;
    for (let i = 0; i < w; i++) this.slotRoutes[edgeSlot[i]!] = routes[halfEdge[i]!]! * scale;
    const members = new Uint8Array(n);
    for (const u of alive) members[u] = 1;
    const comp = componentSizes(csr, members);
    const { mean, error } = meanDistance(totals, sources.length, alive.length);
    const spread = (deg: Int32Array): Spread => {
      let min = Infinity, max = 0, sum = 0;
      for (const u of alive) {
        const d = deg[u]!;
        if (d < min) min = d;
        if (d > max) max = d;
        sum += d;
      }
      return { min: alive.length ? min : 0, mean: alive.length ? sum / alive.length : 0, max };
    };
    let full = 0;
    for (const u of alive) if (this.incoming[u]! >= this.maxClients) full++;
    const inHistogram: number[] = [];
    for (const u of alive) inHistogram[inDeg[u]!] = (inHistogram[inDeg[u]!] ?? 0) + 1;
    const pairs = alive.length * (alive.length - 1);
    return {
      nodes: alive.length, sources: sources.length, meanDistance: mean, distanceError: error, maxDistance: totals.maxDistance,
      largestComponent: comp.largest, connectedPairs: pairs === 0 ? 0 : comp.connectedPairs / pairs,
      out: spread(outDeg), in: spread(inDeg), full, inHistogram: Array.from(inHistogram, (c) => c ?? 0),
    };
  }

  /** Every running node when there are at most config.sources, else that many at random. */
  private pickSources(alive: number[]): number[] {
    return this.config.sources >= alive.length ? alive : pick(alive, this.config.sources, this.rngSources);
  }

  // ---- Kill experiments ----

  /** A copy of the network whose random streams are named `label`: experiments on it leave this one as it is. */
  private fork(label: string): Network {
    const c = Object.create(Network.prototype) as Network;
    Object.assign(c, this);
    c.db = this.db.clone();
    c.slotPeer = this.slotPeer.slice();
    c.slotState = this.slotState.slice();
    c.slotOpenedAt = this.slotOpenedAt.slice();
    c.slotSeq = this.slotSeq.slice();
    c.slotRoutes = this.slotRoutes.slice();
    c.incoming = this.incoming.slice();
    c.gone = this.gone.slice();
    c.logSlot = this.logSlot.slice();
    c.logSeq = this.logSeq.slice();
    const seed = this.config.seed;
    c.rngOrder = new Rng(seed, `${label}/order`);
    c.rngPlan = new Rng(seed, `${label}/plan`);
    c.rngRegistry = new Rng(seed, `${label}/registry`);
    c.rngDb = new Rng(seed, `${label}/db`);
    c.rngSources = new Rng(seed, `${label}/sources`);
    c.rngTies = new Rng(seed, `${label}/ties`);
    return c;
  }

  /**
   * Stops a share of the nodes for good, at random or the best connected
   * (most working tunnels, in and out; lowest index first among equals), on
   * a copy of the network: its client tunnels vanish, and every tunnel to it
   * dies (its peers see it dead at their next refresh). The registry and the
   * peers DBs still list it, as they would for up to a day.
   */
  kill(kind: KillKind, fraction: number): KillResult {
    const c = this.fork(`kill/${kind}/${fraction}`);
    const alive: number[] = [];
    for (let u = 0; u < this.n; u++) if (this.gone[u] === 0) alive.push(u);
    const count = Math.floor(fraction * alive.length);
    let victims: number[];
    if (kind === "random") {
      victims = pick(alive, count, new Rng(this.config.seed, `kill/${kind}/${fraction}/victims`));
    } else {
      const degree = new Int32Array(this.n);
      for (let s = 0; s < this.n * S; s++)
        if (this.slotState[s] === UP) {
          degree[(s / S) | 0]!++;
          degree[this.slotPeer[s]!]!++;
        }
      victims = [...alive].sort((x, y) => degree[y]! - degree[x]! || x - y).slice(0, count);
    }
    for (const v of victims) c.gone[v] = 1;
    for (let s = 0; s < this.n * S; s++) {
      const state = c.slotState[s]!;
      if (state === NONE) continue;
      if (c.gone[(s / S) | 0] === 1) {
        c.slotState[s] = NONE;
        c.slotPeer[s] = -1;
      } else if (c.gone[c.slotPeer[s]!] === 1 && state !== DEAD) c.slotState[s] = DEAD;
    }
    c.incoming.fill(0);
    for (let s = 0; s < this.n * S; s++) {
      const state = c.slotState[s]!;
      if (state === UP || state === RETIRING) c.incoming[c.slotPeer[s]!]!++;
    }
    const before = c.settle();
    c.refreshAll();
    const after = c.settle();
    return { kind, fraction, killed: count, before, after };
  }
}
