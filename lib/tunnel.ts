// The tunnel policy (legacy module `tunnel`, SPEC section 6): which client
// tunnels to close and which peers to open tunnels to at each
// --tunnel-refresh, and when. Pure: the tunnel executor
// (lib/daemon/tunnels.ts) passes a read-only snapshot of what it observed
// (each tunnel's state, routes per interface, smoothed traffic, unused peers
// from peers.db, LAN peers), the time and a random source, and executes the
// plan it gets back. Nothing here spawns, kills, reads files or the clock.

import { type Bits, type PeerAddress, parseAddressList } from "./utils/address";

/** At most this many client interfaces, client1..client12 (SPEC section 6). */
export const MAX_CLIENT_TUNNELS = 12;
export const CLIENT_INTERFACES: readonly string[] = Array.from({ length: MAX_CLIENT_TUNNELS }, (_, i) => `client${i + 1}`);
/** Share of the tunnels, those with the most traffic, never killed as weak (legacy value). */
export const PROTECTED_RATIO = 0.2;
/** Weight of the newest sample in the traffic average (legacy value: lower is smoother). */
export const TRAFFIC_SMOOTHING = 0.3;

// Float products such as 0.3 * 10 = 3.0000000000000004 must not round up to 4.
const EPSILON = 1e-9;

/** Client tunnels wanted: half the connection count (the other half are peers dialling us), at most 12. */
export function wantedTunnels(connectionCount: number): number {
  if (!Number.isFinite(connectionCount) || connectionCount <= 0) return 0;
  return Math.min(MAX_CLIENT_TUNNELS, Math.ceil(connectionCount / 2 - EPSILON));
}

/** Tunnels to replace at each refresh: ceil(refresh-rate * wanted). */
export function refreshCount(refreshRate: number, wanted: number): number {
  if (!(refreshRate > 0) || wanted <= 0) return 0;
  return Math.min(wanted, Math.ceil(Math.min(refreshRate, 1) * wanted - EPSILON));
}

/**
 * A tunnel is judged weak only after this many hello intervals (and a
 * refresh interval): babel must have routed over it.
 */
export const SETTLE_HELLOS = 4;
/**
 * How long before a retired tunnel closes babel moves the routes off it, in
 * hello intervals: the peer drops us at our next hello (at once) and learns
 * the new cost from the IHUs that follow within two hellos; four leave a
 * margin. Not earlier: the replacement opened beside it comes up meanwhile.
 */
export const DRAIN_HELLOS = 4;

// ---- Traffic ---------------------------------------------------------------

/** Bytes through an interface (rx + tx) at a time, in milliseconds of any monotonic clock. */
export interface TrafficSample {
  bytes: number;
  time: number;
}

/** Smoothed traffic of one tunnel; keep one per tunnel and feed it samples. */
export interface Traffic {
  last: TrafficSample | null;
  /** Bytes per second, exponentially smoothed; null until two samples. */
  rate: number | null;
}

export const NO_TRAFFIC: Traffic = { last: null, rate: null };

/** A counter file's content (/sys/class/net/IF/statistics/rx_bytes), or null if it is not one. */
export function counterValue(text: string): number | null {
  const t = text.trim();
  return /^[0-9]{1,20}$/.test(t) ? Number(t) : null;
}

/**
 * Folds a sample into the average: rate = (1 - smooth) * rate + smooth * new.
 * No sample (interface gone, file unreadable) keeps the state; a counter
 * that went backwards (interface recreated) restarts the baseline without
 * inventing a rate; a clock that did not advance is ignored.
 */
export function updateTraffic(prev: Traffic, sample: TrafficSample | null, smooth: number = TRAFFIC_SMOOTHING): Traffic {
  if (sample === null) return prev;
  const last = prev.last;
  if (last === null || sample.bytes < last.bytes) return { last: sample, rate: prev.rate };
  const dt = (sample.time - last.time) / 1000;
  if (!(dt > 0)) return prev;
  const now = (sample.bytes - last.bytes) / dt;
  return { last: sample, rate: prev.rate === null ? now : (1 - smooth) * prev.rate + smooth * now };
}

// ---- Refresh plan ----------------------------------------------------------

/**
 * Where a client tunnel is in its life: its OpenVPN started (`opening`),
 * connected (`up`: the route-up hook reported), chosen as weak by a refresh
 * (`retiring`: it runs on beside its replacement), its routes moved off it
 * before the next refresh closes it (`draining`), or its OpenVPN exited
 * (`dead`, ping-exit, refused, crashed). Closed tunnels are not in a snapshot.
 */
export type TunnelState = "opening" | "up" | "retiring" | "draining" | "dead";

/** A client tunnel as the planner sees it: a read-only snapshot, not the executor's record. */
export interface Tunnel {
  /** The peer's prefix (bit string). */
  readonly prefix: Bits;
  readonly iface: string;
  /** When it was opened, on RefreshParams.now's clock; older goes first among equals. */
  readonly openedAt: number;
  readonly state: TunnelState;
  /** Smoothed bytes/s (Traffic.rate); null when not yet measured. */
  readonly traffic: number | null;
}

/** An unused peer from peers.db (a PeerRow fits). */
export interface Candidate {
  prefix: Bits;
  address: string;
  /** 0 free, -1 its last tunnel died: tried after the free ones. */
  used: number;
}

export interface RefreshState {
  tunnels: readonly Tunnel[];
  /** Routes inside the network per interface: countRoutes() over the tunnels' interfaces. */
  routes: ReadonlyMap<string, number>;
  /**
   * Unused peers, free ones first (PeersDb.unusedPeers()). Pass them all, or
   * at least wanted + 12: some may be skipped (malformed, on the LAN).
   */
  candidates: readonly Candidate[];
  /** Prefixes of peers on the LAN: lanPeers(). */
  lan: Iterable<Bits>;
  /** Prefixes the network's revocation list names (lib/revocation.ts): their tunnels close, none opens. */
  revoked?: Iterable<Bits>;
}

export interface RefreshParams {
  /** --connection-count */
  connectionCount: number;
  /** --refresh-rate, 0..1 */
  refreshRate: number;
  /** Our own prefix: never a tunnel to ourselves. */
  ownPrefix: Bits;
  /** Uniform in [0, 1): breaks the last ties among equally weak tunnels. */
  rng: () => number;
  /** The time of this refresh, ms, the clock of Tunnel.openedAt. */
  now: number;
  /** --hello, s. */
  hello: number;
  /** --tunnel-refresh, s: when the next refresh comes. */
  tunnelRefresh: number;
  protectedRatio?: number;
  /** Interface cap, for tests; never above 12. */
  maxTunnels?: number;
}

/**
 * Why a tunnel closes: its OpenVPN exited; its peer is on the LAN; it was
 * retired by the previous refresh; it is weak and its replacement needs its
 * interface now (at the 12-interface cap); there are more tunnels than
 * wanted; the daemon stops; its peer's prefix is revoked.
 */
export type CloseReason = "dead" | "lan" | "retired" | "weak" | "excess" | "shutdown" | "revoked";

/** The value to write in the peer's `used` column, or "remove" to delete its row. */
export type PeerMark = 1 | 0 | -1 | "remove";

export type RefreshStep =
  /** Forget a peer whose advertised address list is malformed: delete its peers.db row. */
  | { kind: "forget"; prefix: Bits; reason: "malformed" }
  /** Stop the tunnel's OpenVPN and wait for it to exit (its interface is free then); then mark the peer. */
  | { kind: "close"; prefix: Bits; iface: string; reason: CloseReason; mark: PeerMark }
  /** Start a client on `iface` dialling `remotes` (the peer's address list, parsed); mark the peer used (1), or dead (-1) if it cannot start. */
  | { kind: "open"; prefix: Bits; address: string; iface: string; remotes: PeerAddress[] }
  /**
   * The tunnel goes on running beside its replacement (state `retiring`); at
   * `drainAt` (RefreshParams.now's clock) babel moves the routes off it
   * (`draining`), and the next refresh closes it.
   */
  | { kind: "retire"; prefix: Bits; iface: string; drainAt: number };

export type SkipReason = "own" | "lan" | "revoked" | "in-use" | "duplicate" | "malformed";

export interface RefreshPlan {
  wanted: number;
  /** Execute in this order; see planRefresh. */
  steps: RefreshStep[];
  /** Candidates not tunnelled to, for the log ("malformed" ones also get a forget step). */
  skipped: Array<{ prefix: Bits; reason: SkipReason }>;
}

function shuffled<T>(items: readonly T[], rng: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.min(i, Math.floor(rng() * (i + 1)));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/**
 * Splits tunnels into the killable ones, weakest first, and the protected
 * ones. Protected: the PROTECTED_RATIO share (rounded down) with the most
 * traffic, if they have any. Weakest: fewest routes, then least traffic (as
 * the legacy's stable double sort), then oldest, then at random.
 */
export function rankWeakest(
  tunnels: readonly Tunnel[], routes: ReadonlyMap<string, number>, rng: () => number, protectedRatio: number = PROTECTED_RATIO,
): { weakest: Tunnel[]; protected: Tunnel[] } {
  const traffic = (t: Tunnel): number => t.traffic ?? 0;
  const byTraffic = [...tunnels].sort((a, b) => traffic(b) - traffic(a));
  const n = Math.floor(tunnels.length * protectedRatio + EPSILON);
  const prot = byTraffic.slice(0, n).filter((t) => traffic(t) > 0);
  const isProtected = new Set(prot);
  const weakest = shuffled(tunnels.filter((t) => !isProtected.has(t)), rng).sort(
    (a, b) => (routes.get(a.iface) ?? 0) - (routes.get(b.iface) ?? 0) || traffic(a) - traffic(b) || a.openedAt - b.openedAt,
  );
  return { weakest, protected: prot };
}

/**
 * Peers we may open a tunnel to, in the order to try them: free (0) before
 * dead (-1), the given order within each. Never ourselves, a LAN peer, a
 * revoked one, a peer that has a tunnel (even one closing now: not reopened
 * in the same refresh), a prefix twice, or a malformed address list.
 */
export function usableCandidates(
  candidates: readonly Candidate[], ownPrefix: Bits, lan: ReadonlySet<Bits>, tunnelled: ReadonlySet<Bits>, revoked: ReadonlySet<Bits> = new Set(),
): { usable: Array<Candidate & { remotes: PeerAddress[] }>; skipped: RefreshPlan["skipped"] } {
  const usable: Array<Candidate & { remotes: PeerAddress[] }> = [];
  const skipped: RefreshPlan["skipped"] = [];
  const seen = new Set<Bits>();
  const ordered = [...candidates].sort((a, b) => (a.used === 0 ? 0 : 1) - (b.used === 0 ? 0 : 1));
  for (const c of ordered) {
    // A malformed list must never reach OpenVPN's command line (SPEC section 2).
    const remotes = parseAddressList(c.address);
    const reason: SkipReason | null =
      c.prefix === ownPrefix ? "own"
      : lan.has(c.prefix) ? "lan"
      : revoked.has(c.prefix) ? "revoked"
      : c.used > 0 || tunnelled.has(c.prefix) ? "in-use"
      : seen.has(c.prefix) ? "duplicate"
      : remotes === null ? "malformed"
      : null;
    seen.add(c.prefix);
    if (reason === null && remotes !== null) usable.push({ ...c, remotes });
    else skipped.push({ prefix: c.prefix, reason: reason ?? "malformed" });
  }
  return { usable, skipped };
}

/**
 * One tunnel refresh (SPEC section 6).
 *
 * Input contract: `state` is a snapshot the planner only reads; every time
 * (Tunnel.openedAt, params.now) is in milliseconds of one clock; the timing
 * rules are here, from params.hello and params.tunnelRefresh: a tunnel
 * opened less than max(tunnelRefresh, SETTLE_HELLOS hellos) ago is still
 * settling, and a retired tunnel drains DRAIN_HELLOS hellos before the next
 * refresh (retire's drainAt).
 *
 * Ordering contract: the executor runs `steps` in order, one at a time,
 * and a close is complete when its OpenVPN has exited. The steps come as:
 *   0. forget peers whose address list is malformed (peers.db rows deleted);
 *   1. close dead tunnels (OpenVPN already exited), peer marked -1;
 *   2. close tunnels to LAN peers (the LAN is a path already), peer removed;
 *   3. close the tunnels the previous refresh retired (their replacements
 *      have had a whole interval to come up), peer marked 0;
 *   4. close tunnels beyond the wanted count (none unless it shrank), marked 0;
 *   5. open tunnels: refills up to the wanted count, then one replacement per
 *      weak tunnel. When no interface is free (the 12 cap) a weak tunnel is
 *      closed first and its interface reused: the only case where a routine
 *      refresh closes a working tunnel before its replacement starts;
 *   6. retire the remaining weak tunnels: they keep running, beside their
 *      replacements, until the next refresh closes them in step 3.
 * So a routine refresh opens a replacement a full interval before the tunnel
 * it replaces goes away. A tunnel still settling (params.settledBefore) is
 * never replaced as weak: a new tunnel has no routes yet, and would otherwise
 * be the weakest at once. At least ceil(refresh-rate * wanted) tunnels are
 * replaced (refills count) as far as settled tunnels go, and a weak tunnel
 * is only replaced when a usable peer is there to replace it: with no peer
 * to spare, nothing is cut.
 * New tunnels take interfaces never used or freed by dead tunnels first;
 * an interface freed by a close in this plan comes last, as its OpenVPN may
 * still be exiting. Between refreshes at most 12 tunnels run.
 */
export function planRefresh(state: RefreshState, params: RefreshParams): RefreshPlan {
  const cap = Math.max(0, Math.min(params.maxTunnels ?? MAX_CLIENT_TUNNELS, MAX_CLIENT_TUNNELS));
  const wanted = Math.min(wantedTunnels(params.connectionCount), cap);
  const lan = new Set(state.lan);
  const revoked = new Set(state.revoked ?? []);
  const steps: RefreshStep[] = [];
  const close = (t: Tunnel, reason: CloseReason, mark: PeerMark): void => {
    steps.push({ kind: "close", prefix: t.prefix, iface: t.iface, reason, mark });
  };

  const retiring = (t: Tunnel): boolean => t.state === "retiring" || t.state === "draining";
  const dead = state.tunnels.filter((t) => t.state === "dead");
  const live = state.tunnels.filter((t) => t.state !== "dead");
  const onLan = live.filter((t) => lan.has(t.prefix));
  const barred = live.filter((t) => !lan.has(t.prefix) && revoked.has(t.prefix));
  const gone = (t: Tunnel): boolean => lan.has(t.prefix) || revoked.has(t.prefix);
  const retired = live.filter((t) => !gone(t) && retiring(t));
  const keep = live.filter((t) => !gone(t) && !retiring(t));

  const { usable, skipped } = usableCandidates(state.candidates, params.ownPrefix, lan, new Set(state.tunnels.map((t) => t.prefix)), revoked);
  for (const s of skipped) if (s.reason === "malformed") steps.push({ kind: "forget", prefix: s.prefix, reason: "malformed" });
  dead.forEach((t) => close(t, "dead", revoked.has(t.prefix) ? "remove" : -1));
  onLan.forEach((t) => close(t, "lan", "remove"));
  barred.forEach((t) => close(t, "revoked", "remove"));
  retired.forEach((t) => close(t, "retired", 0));

  const { weakest, protected: prot } = rankWeakest(keep, state.routes, params.rng, params.protectedRatio);

  // Too many tunnels (the wanted count shrank): close the weakest, protected last.
  const excess = Math.max(0, keep.length - wanted);
  const byWeakness = [...weakest, ...[...prot].reverse()];
  const excessive = byWeakness.slice(0, excess);
  excessive.forEach((t) => close(t, "excess", 0));
  const staying = keep.length - excess;

  // Replace at least refreshCount tunnels, counting refills; only as many weak ones as there are spare peers.
  const deficit = Math.max(0, wanted - staying);
  const settledBefore = params.now - Math.max(params.tunnelRefresh, SETTLE_HELLOS * params.hello) * 1000;
  const replaceable = weakest.filter((t) => !excessive.includes(t) && t.openedAt <= settledBefore);
  const replace = Math.min(
    Math.max(0, refreshCount(params.refreshRate, wanted) - deficit),
    replaceable.length,
    Math.max(0, usable.length - deficit),
  );
  const victims = replaceable.slice(0, replace);
  const opens = usable.slice(0, Math.min(usable.length, deficit + replace));

  // Interfaces: fresh ones (never used, or freed by a dead tunnel) first, then those closed above.
  const allIfaces = CLIENT_INTERFACES.slice(0, cap);
  const held = new Set(live.map((t) => t.iface));
  const fresh = allIfaces.filter((i) => !held.has(i));
  const closedNow = new Set([...onLan, ...barred, ...retired, ...excessive].map((t) => t.iface));
  const reusable = allIfaces.filter((i) => closedNow.has(i));
  const pendingVictims = [...victims];
  for (const peer of opens) {
    let iface = fresh.shift() ?? reusable.shift();
    if (iface === undefined) {
      const v = pendingVictims.shift();
      if (v === undefined) break; // cannot happen: opens never exceed free interfaces plus victims
      close(v, "weak", 0);
      iface = v.iface;
    }
    steps.push({ kind: "open", prefix: peer.prefix, address: peer.address, iface, remotes: peer.remotes });
  }
  const drainAt = params.now + Math.max(0, params.tunnelRefresh - DRAIN_HELLOS * params.hello) * 1000;
  pendingVictims.forEach((t) => steps.push({ kind: "retire", prefix: t.prefix, iface: t.iface, drainAt }));
  return { wanted, steps, skipped };
}

/** Closing every client tunnel when the daemon stops: peers back to free (dead ones to -1). */
export function planShutdown(tunnels: readonly Tunnel[]): Array<Extract<RefreshStep, { kind: "close" }>> {
  return tunnels.map((t) => (t.state === "dead"
    ? { kind: "close", prefix: t.prefix, iface: t.iface, reason: "dead", mark: -1 }
    : { kind: "close", prefix: t.prefix, iface: t.iface, reason: "shutdown", mark: 0 }));
}
