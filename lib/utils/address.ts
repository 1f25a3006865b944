// Address arithmetic shared by the registry, setup and the daemon
// (SPEC section 2). Prefixes are bit strings ("0101…"), as the legacy stores them.

import { isIP, isIPv6 } from "node:net";

/** A bit string: only '0' and '1'. */
export type Bits = string;

/** The 128 bits of an IPv6 address, or null if `text` is not one. */
export function ipv6ToBits(text: string): Bits | null {
  if (!isIPv6(text)) return null;
  let addr = text;
  const zone = addr.indexOf("%");
  if (zone >= 0) addr = addr.slice(0, zone);
  // An embedded dotted IPv4 tail becomes two hex groups.
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(addr);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    addr = addr.slice(0, dotted.index) + ((a << 8) | b).toString(16) + ":" + ((c << 8) | d).toString(16);
  }
  const halves = addr.split("::");
  const head = halves[0] ? halves[0].split(":") : [];
  const tail = halves.length > 1 && halves[1] ? halves[1].split(":") : [];
  const groups = halves.length > 1
    ? [...head, ...Array<string>(8 - head.length - tail.length).fill("0"), ...tail]
    : head;
  return groups.map((g) => parseInt(g, 16).toString(2).padStart(16, "0")).join("");
}

/** The IPv6 text of up to 128 bits, zero-padded on the right; compressed form. */
export function bitsToIpv6(bits: Bits): string {
  const full = bits.padEnd(128, "0");
  const groups: string[] = [];
  for (let i = 0; i < 128; i += 16) groups.push(parseInt(full.slice(i, i + 16), 2).toString(16));
  // Compress the longest run (of length >= 2) of zero groups, as RFC 5952 asks.
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== "0") { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return groups.join(":");
  return groups.slice(0, best).join(":") + "::" + groups.slice(best + bestLen).join(":");
}

/** "2001:db8:42::/48" → its bits, or null if not a valid IPv6 prefix. */
export function parseIpv6Prefix(text: string): Bits | null {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text);
  if (!m) return null;
  const bits = ipv6ToBits(m[1]!);
  const len = Number(m[2]);
  if (bits === null || len > 128) return null;
  if (bits.slice(len).includes("1")) return null; // host bits set: ambiguous, refuse
  return bits.slice(0, len);
}

/** The network bits carried by a CA serial: its binary form minus the leading 1. */
export function networkFromSerial(serial: bigint): Bits {
  if (serial < 1n) throw new RangeError("the CA serial number must be positive: it encodes the network prefix");
  return serial.toString(2).slice(1);
}

/** The CA serial that carries `network` (inverse of networkFromSerial). */
export function serialFromNetwork(network: Bits): bigint {
  return BigInt("0b1" + network);
}

/** Certificate common name of a node prefix: "<decimal>/<length>" (SPEC section 2). */
export function prefixToCn(prefix: Bits): string {
  return `${prefix === "" ? 0n : BigInt("0b" + prefix)}/${prefix.length}`;
}

/** Inverse of prefixToCn, or null if the CN is not of that shape. */
export function cnToPrefix(cn: string): Bits | null {
  const m = /^(\d+)\/(\d{1,3})$/.exec(cn);
  if (!m) return null;
  const len = Number(m[2]);
  const value = BigInt(m[1]!);
  if (len > 128) return null;
  const bits = len === 0 ? "" : value.toString(2).padStart(len, "0");
  return bits.length === len && (len > 0 || value === 0n) ? bits : null;
}

/** The node address: network + prefix bits, zero-padded to 128 bits. */
export function nodeAddress(network: Bits, prefix: Bits): string {
  return bitsToIpv6(network + prefix);
}

/** One item of an address list as OpenVPN's `--remote` takes it. */
export interface PeerAddress {
  ip: string;
  port: number;
  proto: "udp" | "tcp-client" | "tcp-server";
}

const PROTOS = new Set(["udp", "tcp-client", "tcp-server"]);
/** Most addresses a node may advertise; the legacy never sends more than a few. */
export const MAX_ADDRESS_ITEMS = 16;

/**
 * Parses an advertised address list "ip,port,proto;…" (SPEC section 2).
 * Returns null if any item is malformed: such a list must never reach
 * OpenVPN's command line, where a field like "--up" would run a program.
 */
export function parseAddressList(text: string): PeerAddress[] | null {
  if (text.length === 0 || text.length > 1024) return null;
  const items = text.split(";");
  if (items.length > MAX_ADDRESS_ITEMS) return null;
  const out: PeerAddress[] = [];
  for (const item of items) {
    const fields = item.split(",");
    if (fields.length !== 3) return null;
    const [ip, port, proto] = fields as [string, string, string];
    if (isIP(ip) === 0 || ip.includes("%")) return null;
    if (!/^[0-9]{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) return null;
    if (!PROTOS.has(proto)) return null;
    out.push({ ip, port: Number(port), proto: proto as PeerAddress["proto"] });
  }
  return out;
}

export function formatAddressList(items: readonly PeerAddress[]): string {
  return items.map((a) => `${a.ip},${a.port},${a.proto}`).join(";");
}
