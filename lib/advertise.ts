// Which external address a node without --ip and without a UPnP mapping
// advertises, from what its peers report. Each client tunnel's server pushes
// the address it sees us coming from (ovpn-server's external_ip, our route-up
// hook reports it), and any one peer can lie. So a learned address is
// advertised only when two different peers report the same one, or, when a
// single peer was ever reached, once that peer's report has stood for
// LONE_PEER_REFRESHES tunnel refreshes (the other peers had that many
// refreshes to be tried); and never an address that is not global unicast.
// Once chosen, an address stays until another one reaches agreement: peers
// come and go, our address does not change with them. Pure: the daemon
// passes the reports and the time.

import { isIPv4, isIPv6 } from "node:net";
import type { Bits } from "./utils/address";
import { ipv6ToBits } from "./utils/address";

/** Where the advertised address list comes from. */
export type AddressSource = "ip" | "upnp" | "peers" | "none";

/** How many tunnel refreshes a lone peer's report must stand before it is believed. */
export const LONE_PEER_REFRESHES = 2;

function ipv4Bytes(ip: string): number[] {
  return ip.split(".").map(Number);
}

/**
 * An address a node can be reached at: not unspecified, loopback, multicast,
 * link-local, broadcast or reserved (0/8, 240/4), nor an IPv4-mapped IPv6
 * address of those, nor one of the deprecated IPv4-compatible ::/96. Private and documentation ranges pass: a node on a LAN, or a test
 * network, is reached at such addresses.
 */
export function isGlobalUnicast(ip: string): boolean {
  if (isIPv4(ip)) {
    const [a, b] = ipv4Bytes(ip) as [number, number];
    return !(a === 0 || a === 127 || a >= 224 || (a === 169 && b === 254));
  }
  if (!isIPv6(ip)) return false;
  const bits = ipv6ToBits(ip);
  if (bits === null) return false;
  if (/^0{80}1{16}/.test(bits)) {
    const v4 = [96, 104, 112, 120].map((i) => parseInt(bits.slice(i, i + 8), 2)).join(".");
    return isGlobalUnicast(v4);
  }
  return !(
    bits.startsWith("0".repeat(96)) || // ::, ::1 and the deprecated IPv4-compatible ::/96
    bits.startsWith("11111111") || // ff00::/8 multicast
    bits.startsWith("1111111010") || // fe80::/10 link-local
    bits.startsWith("1111111011") // fec0::/10, deprecated site-local
  );
}

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

/** `peer` reports that it sees us at `ip`; a report of an address that is not global unicast is dropped. */
export function reportAddress(l: Learning, peer: Bits, ip: string, now: number): Learning {
  if (!isGlobalUnicast(ip)) return l;
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
