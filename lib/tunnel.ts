// The tunnel policy (legacy module `tunnel`, SPEC section 6): which client
// tunnels to close and which peers to open tunnels to at each
// --tunnel-refresh. Pure: the main loop passes what it observed (tunnels and
// whether their OpenVPN still runs, routes per interface, smoothed traffic,
// unused peers from peers.db, LAN peers) and a random source, and executes
// the plan it gets back. Nothing here spawns, kills, reads files or the clock.

import { type Bits, parseAddressList } from "./utils/address";

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

/** The lowest-numbered client interface not in `inUse`, or null when all 12 are taken. */
export function freeInterface(inUse: Iterable<string>, cap: number = MAX_CLIENT_TUNNELS): string | null {
  const used = new Set(inUse);
  return CLIENT_INTERFACES.slice(0, cap).find((i) => !used.has(i)) ?? null;
}

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

// ---- Peer addresses --------------------------------------------------------

/** One `--remote IP PORT PROTO` of a client tunnel. */
export interface Remote {
  ip: string;
  port: number;
  proto: "udp" | "tcp-client";
}

/**
 * The remotes to dial for an advertised address list, or null when the list
 * is malformed (then nothing of it may reach OpenVPN's command line, SPEC
 * section 2). A legacy node behind UPnP advertises `tcp-server`: it listens,
 * so we dial it as `tcp-client`.
 */
export function peerRemotes(address: string): Remote[] | null {
  const items = parseAddressList(address);
  if (items === null) return null;
  return items.map((a) => ({ ip: a.ip, port: a.port, proto: a.proto === "udp" ? "udp" : "tcp-client" }));
}

/** `--remote IP PORT PROTO` words for OpenVPN's argv, in the list's order. */
export function remoteArgs(remotes: readonly Remote[]): string[] {
  return remotes.flatMap((r) => ["--remote", r.ip, String(r.port), r.proto]);
}

// ---- Refresh plan ----------------------------------------------------------

/** A client tunnel as the main loop tracks it. */
export interface Tunnel {
  /** The peer's prefix (bit string). */
  prefix: Bits;
  iface: string;
  /** When it was opened, same clock as the main loop's; older goes first among equals. */
  openedAt: number;
  /** False once its OpenVPN exited (ping-exit, refused, crashed). */
  alive: boolean;
  /** Chosen as weak by the previous refresh: its replacement was opened then, it closes now. */
  retiring: boolean;
  /** Smoothed bytes/s (Traffic.rate); null when not yet measured. */
  traffic: number | null;
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
  protectedRatio?: number;
  /**
   * Tunnels opened after this time (the clock of Tunnel.openedAt) are still
   * settling, babel may not route over them yet: never replaced as weak.
   * Default: every tunnel is judged.
   */
  settledBefore?: number;
  /** Interface cap, for tests; never above 12. */
  maxTunnels?: number;
}

/**
 * Why a tunnel closes: its OpenVPN exited; its peer is on the LAN; it was
 * retired by the previous refresh; it is weak and its replacement needs its
 * interface now (at the 12-interface cap); there are more tunnels than
 * wanted; the daemon stops.
 */
export type CloseReason = "dead" | "lan" | "retired" | "weak" | "excess" | "shutdown";

/** The value to write in the peer's `used` column, or "remove" to delete its row. */
export type PeerMark = 1 | 0 | -1 | "remove";

export type RefreshStep =
  /** Stop the tunnel's OpenVPN and wait for it to exit (its interface is free then); then mark the peer. */
  | { kind: "close"; prefix: Bits; iface: string; reason: CloseReason; mark: PeerMark }
  /** Start a client on `iface` with `remotes`; mark the peer used (1), or dead (-1) if it cannot start. */
  | { kind: "open"; prefix: Bits; address: string; iface: string; remotes: Remote[] }
  /** Keep the tunnel running but set its `retiring` flag: the next refresh closes it. */
  | { kind: "retire"; prefix: Bits; iface: string };

export type SkipReason = "own" | "lan" | "in-use" | "duplicate" | "malformed";

export interface RefreshPlan {
  wanted: number;
  /** Execute in this order; see planRefresh. */
  steps: RefreshStep[];
  /** Candidates not tunnelled to, for the log; "malformed" ones may be removed from peers.db. */
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
 * peer that has a tunnel (even one closing now: not reopened in the same
 * refresh), a prefix twice, or a malformed address list.
 */
export function usableCandidates(
  candidates: readonly Candidate[], ownPrefix: Bits, lan: ReadonlySet<Bits>, tunnelled: ReadonlySet<Bits>,
): { usable: Array<Candidate & { remotes: Remote[] }>; skipped: RefreshPlan["skipped"] } {
  const usable: Array<Candidate & { remotes: Remote[] }> = [];
  const skipped: RefreshPlan["skipped"] = [];
  const seen = new Set<Bits>();
  const ordered = [...candidates].sort((a, b) => (a.used === 0 ? 0 : 1) - (b.used === 0 ? 0 : 1));
  for (const c of ordered) {
    const remotes = peerRemotes(c.address);
    const reason: SkipReason | null =
      c.prefix === ownPrefix ? "own"
      : lan.has(c.prefix) ? "lan"
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
 * Ordering contract: the main loop executes `steps` in order, one at a time,
 * and a close is complete when its OpenVPN has exited. The steps come as:
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
  const steps: RefreshStep[] = [];
  const close = (t: Tunnel, reason: CloseReason, mark: PeerMark): void => {
    steps.push({ kind: "close", prefix: t.prefix, iface: t.iface, reason, mark });
  };

  const dead = state.tunnels.filter((t) => !t.alive);
  const live = state.tunnels.filter((t) => t.alive);
  const onLan = live.filter((t) => lan.has(t.prefix));
  const retired = live.filter((t) => !lan.has(t.prefix) && t.retiring);
  const keep = live.filter((t) => !lan.has(t.prefix) && !t.retiring);
  dead.forEach((t) => close(t, "dead", -1));
  onLan.forEach((t) => close(t, "lan", "remove"));
  retired.forEach((t) => close(t, "retired", 0));

  const { usable, skipped } = usableCandidates(state.candidates, params.ownPrefix, lan, new Set(state.tunnels.map((t) => t.prefix)));
  const { weakest, protected: prot } = rankWeakest(keep, state.routes, params.rng, params.protectedRatio);

  // Too many tunnels (the wanted count shrank): close the weakest, protected last.
  const excess = Math.max(0, keep.length - wanted);
  const byWeakness = [...weakest, ...[...prot].reverse()];
  const excessive = byWeakness.slice(0, excess);
  excessive.forEach((t) => close(t, "excess", 0));
  const staying = keep.length - excess;

  // Replace at least refreshCount tunnels, counting refills; only as many weak ones as there are spare peers.
  const deficit = Math.max(0, wanted - staying);
  const settledBefore = params.settledBefore ?? Infinity;
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
  const held = new Set(state.tunnels.filter((t) => t.alive).map((t) => t.iface));
  const fresh = allIfaces.filter((i) => !held.has(i));
  const closedNow = new Set([...onLan, ...retired, ...excessive].map((t) => t.iface));
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
  pendingVictims.forEach((t) => steps.push({ kind: "retire", prefix: t.prefix, iface: t.iface }));
  return { wanted, steps, skipped };
}

/** Closing every client tunnel when the daemon stops: peers back to free (dead ones to -1). */
export function planShutdown(tunnels: readonly Tunnel[]): RefreshStep[] {
  return tunnels.map((t) => ({ kind: "close", prefix: t.prefix, iface: t.iface, reason: t.alive ? "shutdown" : "dead", mark: t.alive ? 0 : -1 }));
}
