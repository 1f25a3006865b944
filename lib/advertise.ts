// Which external address a node without --ip and without a UPnP mapping
// advertises, from what its peers report. Each client tunnel's server pushes
// the address it sees us coming from (ovpn-server's external_ip, our route-up
// hook reports it), and any one peer can lie. So a learned address is
// advertised only when two different peers report the same one, or, when a
// single peer was ever reached, once that peer's report has stood for
// LONE_PEER_REFRESHES tunnel refreshes (the other peers had that many
// refreshes to be tried); and never an address no other host could reach
// (remoteUnicastProblem, the one check for addresses).
// Once chosen, an address stays until another one reaches agreement: peers
// come and go, our address does not change with them. Pure: the daemon
// passes the reports and the time.

import { type Bits, remoteUnicastProblem } from "./utils/address";

/** Where the advertised address list comes from. */
export type AddressSource = "ip" | "upnp" | "peers" | "none";

/** How many tunnel refreshes a lone peer's report must stand before it is believed. */
export const LONE_PEER_REFRESHES = 2;

export interface Report {
  ip: string;
  /** When it was reported, ms. */
  at: number;
}

export interface Learning {
  /** The latest report of each peer whose tunnel is open. */
  readonly reports: ReadonlyMap<Bits, Report>;
  /** The first peer that ever reported, when; whether any other peer ever did. */
  readonly first: { peer: Bits; at: number } | null;
  readonly severalPeers: boolean;
}

export const NOTHING_LEARNT: Learning = { reports: new Map(), first: null, severalPeers: false };

/** `peer` reports that it sees us at `ip`; a report of an address no other host could reach us at is dropped. */
export function reportAddress(l: Learning, peer: Bits, ip: string, now: number): Learning {
  if (remoteUnicastProblem(ip) !== null) return l;
  const reports = new Map(l.reports).set(peer, { ip, at: now });
  const first = l.first ?? { peer, at: now };
  return { reports, first, severalPeers: l.severalPeers || first.peer !== peer };
}

/** The tunnel to `peer` closed: its report no longer counts. */
export function forgetPeer(l: Learning, peer: Bits): Learning {
  if (!l.reports.has(peer)) return l;
  const reports = new Map(l.reports);
  reports.delete(peer);
  return { ...l, reports };
}

export type Decision =
  | { ip: string; why: "agreed"; peers: number }
  | { ip: string; why: "lone-peer" }
  /** Nothing to advertise yet; `until`: when a lone peer's report will be believed. */
  | { ip: null; why: "no-report" | "unconfirmed" | "waiting"; until?: number };

/**
 * What to advertise now. `current` is what is advertised (kept among equals:
 * no flapping between two addresses with as many peers each); `loneWaitMs`
 * is LONE_PEER_REFRESHES tunnel refreshes.
 */
export function decideAddress(l: Learning, now: number, loneWaitMs: number, current: string | null = null): Decision {
  const peersOf = new Map<string, number>();
  for (const r of l.reports.values()) peersOf.set(r.ip, (peersOf.get(r.ip) ?? 0) + 1);
  let best: string | null = null;
  for (const [ip, n] of peersOf) {
    const b = best === null ? 0 : peersOf.get(best)!;
    if (n > b || (n === b && ip === current)) best = ip;
  }
  if (best !== null && peersOf.get(best)! >= 2) return { ip: best, why: "agreed", peers: peersOf.get(best)! };
  if (l.first === null || l.reports.size === 0) return { ip: null, why: "no-report" };
  if (l.severalPeers) return { ip: null, why: "unconfirmed" };
  const lone = l.reports.get(l.first.peer);
  if (lone === undefined) return { ip: null, why: "no-report" };
  const until = l.first.at + loneWaitMs;
  return now >= until ? { ip: lone.ip, why: "lone-peer" } : { ip: null, why: "waiting", until };
}
