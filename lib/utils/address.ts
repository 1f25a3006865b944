// Address arithmetic shared by the registry, setup and the daemon
// (SPEC section 2). Prefixes are bit strings ("0101…"), as the legacy stores them.

import { isIP } from "node:net";

/** A bit string: only '0' and '1'. */
export type Bits = string;

const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;
const DOTTED = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** The groups of one side of "::", or null if malformed; a dotted IPv4 tail counts as two. */
function groupsOf(part: string, allowDotted: boolean): number[] | null {
  if (part === "") return [];
  const fields = part.split(":");
  const out: number[] = [];
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    if (HEX_GROUP.test(f)) out.push(parseInt(f, 16));
    else if (allowDotted && i === fields.length - 1) {
      const m = DOTTED.exec(f);
      if (!m) return null;
      out.push((Number(m[1]) << 8) | Number(m[2]), (Number(m[3]) << 8) | Number(m[4]));
    } else return null;
  }
  return out;
}

/**
 * The 128 bits of an IPv6 address (any valid spelling, zone ignored), or
 * null if `text` is not one. Hand-written: the registry checks an address on
 * every getPeerList, and net.isIPv6's regular expression cost a tenth of it.
 */
export function ipv6ToBits(text: string): Bits | null {
  const zone = text.indexOf("%");
  const addr = zone >= 0 ? text.slice(0, zone) : text;
  if (zone === 0 || zone === text.length - 1 || addr.length > 45) return null;
  const halves = addr.split("::");
  let groups: number[];
  if (halves.length === 1) {
    const all = groupsOf(addr, true);
    if (!all || all.length !== 8) return null;
    groups = all;
  } else if (halves.length === 2) {
    const head = groupsOf(halves[0]!, false);
    const tail = groupsOf(halves[1]!, true);
    if (!head || !tail || head.length + tail.length > 7) return null;
    groups = [...head, ...Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else return null;
  let bits = "";
  for (const g of groups) bits += g.toString(2).padStart(16, "0");
  return bits;
}

/** The bits of `ip` after `network`, or null if `ip` is not an address inside it. */
export function hostBits(ip: string, network: Bits): Bits | null {
  const bits = ipv6ToBits(ip);
  return bits !== null && bits.startsWith(network) ? bits.slice(network.length) : null;
}

/**
 * Whom a client's requests count against (the registry's connection and
 * token limits): its IPv4 address, or the /64 of its IPv6 one, which one
 * host usually holds whole.
 */
export function clientSource(address: string | null): string {
  if (address === null) return "?";
  if (address.startsWith("::ffff:") && address.includes(".")) return address.slice(7);
  const bits = ipv6ToBits(address);
  return bits === null ? address : `${bitsToIpv6(bits.slice(0, 64))}/64`;
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

/**
 * What the connecting side gives OpenVPN's `--remote` for a proto: `udp`, or
 * `tcp-client` for a TCP server, whether it is our `--pp ... tcp-server` or a
 * legacy node behind UPnP advertising `tcp-server` (SPEC section 2).
 */
export function dialProto(proto: PeerAddress["proto"]): "udp" | "tcp-client" {
  return proto === "udp" ? "udp" : "tcp-client";
}

/** The address list items for one IP and our servers' ports, one per server, as peers dial them. */
export function addressesFor(ip: string, servers: ReadonlyArray<{ port: number; proto: PeerAddress["proto"] }>): PeerAddress[] {
  return servers.map(({ port, proto }) => ({ ip, port, proto: dialProto(proto) }));
}

function ipv4Problem(a: number, b: number): string | null {
  if (a === 0) return "an unspecified (0.0.0.0/8) address";
  if (a === 127) return "a loopback address";
  if (a === 169 && b === 254) return "a link-local address";
  if (a >= 224 && a < 240) return "a multicast address";
  if (a >= 240) return "a reserved or broadcast address";
  return null;
}

const V4_MAPPED = "0".repeat(80) + "1".repeat(16);
const V4_COMPATIBLE = "0".repeat(96);

/**
 * Why another host could never reach us at `ip`, or null when it is a
 * unicast address worth dialling: not unspecified, loopback, link-local,
 * multicast, broadcast or reserved, nor any of these inside an IPv4-mapped
 * IPv6 address. Private ranges (10/8, 192.168/16, fc00::/7...) pass: nodes
 * on one LAN or a private underlay use them. The one check for every
 * address a node advertises, the registry stores or the daemon dials
 * (docs/decisions.md). Text that is no IP address gets a reason too.
 */
export function remoteUnicastProblem(ip: string): string | null {
  const v4 = DOTTED.exec(ip);
  if (v4) return ipv4Problem(Number(v4[1]), Number(v4[2]));
  if (ip.includes("%")) return "an address with a zone (link-local)";
  const bits = ipv6ToBits(ip);
  if (bits === null) return "not an IP address";
  if (bits.startsWith(V4_MAPPED)) return ipv4Problem(parseInt(bits.slice(96, 104), 2), parseInt(bits.slice(104, 112), 2));
  if (bits.startsWith(V4_COMPATIBLE)) return "an unspecified, loopback or deprecated IPv4-compatible address (::/96)";
  if (bits.startsWith("1111111010")) return "a link-local address";
  if (bits.startsWith("11111111")) return "a multicast address";
  return null;
}

const PROTOS = new Set(["udp", "tcp-client", "tcp-server"]);
/** Most addresses a node may advertise; the legacy never sends more than a few. */
export const MAX_ADDRESS_ITEMS = 16;

/**
 * Parses an advertised address list "ip,port,proto;…" (SPEC section 2).
 * Returns null if any item is malformed: such a list must never reach
 * OpenVPN's command line, where a field like "--up" would run a program.
 * An address no other host can reach (remoteUnicastProblem) makes it
 * malformed too: `127.0.0.1,22,tcp-client` would have nodes dial themselves.
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
    if (isIP(ip) === 0 || remoteUnicastProblem(ip) !== null) return null;
    if (!/^[0-9]{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) return null;
    if (!PROTOS.has(proto)) return null;
    out.push({ ip, port: Number(port), proto: proto as PeerAddress["proto"] });
  }
  return out;
}

export function formatAddressList(items: readonly PeerAddress[]): string {
  return items.map((a) => `${a.ip},${a.port},${a.proto}`).join(";");
}
