// Reading the kernel's IPv6 routing table, /proc/net/ipv6_route, for the
// tunnel policy (SPEC section 6): how many routes babel installed through
// each tunnel, and which peers babel reaches over a LAN interface (-i).
// Pure: callers pass the file's text, so tests run on recorded samples.
//
// One route per line, whitespace-separated (net/ipv6/route.c):
//   dest(32 hex) dest_len(2 hex) src(32 hex) src_len(2 hex) next_hop(32 hex)
//   metric(8 hex) refcnt(8 hex) use(8 hex) flags(8 hex) iface(%8s, right-aligned)

import type { Bits } from "./address";

export interface Ipv6Route {
  /** Destination, 128 bits; only the first destLen count. */
  dest: Bits;
  destLen: number;
  src: Bits;
  srcLen: number;
  /** Gateway as 32 hex digits; all zeros for a directly connected route. */
  nextHop: string;
  metric: number;
  refCount: number;
  use: number;
  flags: number;
  iface: string;
}

/** Route flags (include/uapi/linux/route.h, ipv6_route.h) that matter here. */
export const RTF_GATEWAY = 0x0002;
export const RTF_REJECT = 0x0200;
export const RTF_CACHE = 0x01000000;
export const RTF_LOCAL = 0x80000000;

const HEX32 = /^[0-9a-fA-F]{32}$/;
const HEX = /^[0-9a-fA-F]{1,8}$/;

function hexToBits(hex: string): Bits {
  let out = "";
  for (const c of hex) out += parseInt(c, 16).toString(2).padStart(4, "0");
  return out;
}

/**
 * Parses the table; a line that does not have the kernel's shape is skipped
 * rather than failing the whole refresh (a routing table is only advice).
 */
export function parseIpv6Routes(text: string): Ipv6Route[] {
  const routes: Ipv6Route[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length !== 10) continue;
    const [dest, destLen, src, srcLen, nextHop, metric, refCount, use, flags, iface] = f as [string, string, string, string, string, string, string, string, string, string];
    if (!HEX32.test(dest) || !HEX32.test(src) || !HEX32.test(nextHop)) continue;
    if (![destLen, srcLen, metric, refCount, use, flags].every((h) => HEX.test(h))) continue;
    const dl = parseInt(destLen, 16), sl = parseInt(srcLen, 16);
    if (dl > 128 || sl > 128) continue;
    routes.push({
      dest: hexToBits(dest), destLen: dl, src: hexToBits(src), srcLen: sl, nextHop: nextHop.toLowerCase(),
      metric: parseInt(metric, 16), refCount: parseInt(refCount, 16), use: parseInt(use, 16), flags: parseInt(flags, 16), iface,
    });
  }
  return routes;
}

/** The route's destination lies inside `network` (as long as it or longer, same leading bits). */
export function insideNetwork(route: Ipv6Route, network: Bits): boolean {
  return route.destLen >= network.length && route.dest.startsWith(network);
}

/**
 * Routes that describe a destination babel (or the kernel) set up, not
 * per-destination clones: RTF_CACHE entries (PMTU exceptions, listed by old
 * kernels) would count a busy peer several times.
 */
function isRealRoute(route: Ipv6Route): boolean {
  return (route.flags & RTF_CACHE) === 0;
}

/**
 * Number of routes inside the overlay `network` per interface of `ifaces`
 * (the tunnel interfaces): how useful babel finds each tunnel. Every
 * interface asked for is in the map, with 0 when no route uses it.
 */
export function countRoutes(text: string, network: Bits, ifaces: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const i of ifaces) counts.set(i, 0);
  for (const r of parseIpv6Routes(text)) {
    const n = counts.get(r.iface);
    if (n !== undefined && isRealRoute(r) && insideNetwork(r, network)) counts.set(r.iface, n + 1);
  }
  return counts;
}

/**
 * Node prefixes (the bits after the network) that babel reaches through a
 * LAN interface (-i): those peers are on the LAN and need no tunnel
 * (SPEC section 6). A route of length L, network < L < 128, names the prefix
 * of L - network bits, as the legacy read it. babel announces node addresses
 * as /128 routes (network + prefix + zeros): such a route names the prefix of
 * our own prefix's length (every node of a network gets the same length from
 * the registry) when the bits after it are all zero; other /128 routes are
 * hosts, not nodes. Our own prefix and our own addresses (local routes) are
 * never reported. Sorted, without duplicates.
 */
export function lanPeers(text: string, network: Bits, lanIfaces: Iterable<string>, ownPrefix: Bits): Bits[] {
  const lan = new Set(lanIfaces);
  const found = new Set<Bits>();
  if (lan.size === 0) return [];
  for (const r of parseIpv6Routes(text)) {
    if (!lan.has(r.iface) || !isRealRoute(r) || (r.flags & (RTF_LOCAL | RTF_REJECT)) !== 0) continue;
    if (!insideNetwork(r, network)) continue;
    const prefix = nodePrefixOf(r.dest, r.destLen, network, ownPrefix.length);
    if (prefix !== null && prefix !== ownPrefix) found.add(prefix);
  }
  return [...found].sort();
}

/**
 * The node prefix a route inside `network` names (see lanPeers): the bits
 * after the network for network < length < 128; for a /128, a node address,
 * the `prefixLength` bits after the network when all later bits are zero.
 * Null for the network itself and other hosts.
 */
export function nodePrefixOf(dest: Bits, destLen: number, network: Bits, prefixLength: number): Bits | null {
  const netLen = network.length;
  if (destLen <= netLen) return null;
  if (destLen < 128) return dest.slice(netLen, destLen);
  const end = netLen + prefixLength;
  if (prefixLength === 0 || end > 128 || dest.slice(end).includes("1")) return null;
  return dest.slice(netLen, end);
}
