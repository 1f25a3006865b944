// Prefix allocation, the legacy algorithm (SPEC section 3), as a pure plan
// that the database applies inside one transaction.

import { Bits, cnToPrefix, ipv6ToBits } from "../utils/address";

export interface AllocationPlan {
  /** The free row the allocation starts from. */
  from: Bits;
  /** Each split, in order: free row p becomes p+'1' and a free row p+'0' is inserted. */
  splits: Bits[];
  /** The allocated prefix, of exactly the requested length. */
  prefix: Bits;
}

/**
 * Plans the allocation of a prefix of `length` bits from the free prefixes.
 * Takes the longest free prefix not longer than `length` (ties: the smallest),
 * then splits it: p becomes p+'1' (free) and p+'0' is inserted, continuing
 * with p+'0'. Returns null when the space is exhausted.
 */
export function planAllocation(free: readonly Bits[], length: number): AllocationPlan | null {
  let from: Bits | null = null;
  for (const p of free) {
    if (p.length > length) continue;
    if (from === null || p.length > from.length || (p.length === from.length && p < from)) from = p;
  }
  if (from === null) return null;
  const splits: Bits[] = [];
  let p = from;
  for (; p.length < length; p += "0") splits.push(p);
  return { from, splits, prefix: p };
}

/** Checks a requested length against the network: 0 < L <= 128 - network length. */
export function checkPrefixLength(length: number, networkLength: number): string | null {
  if (!Number.isInteger(length) || length <= 0) return `prefix length ${length} must be a positive integer`;
  if (length > 128 - networkLength) return `a /${length} node prefix does not fit in a /${networkLength} network`;
  return null;
}

/** A node prefix as an operator names it: exactly, or by an address or subnet inside it. */
export type PrefixArgument = { prefix: Bits } | { inside: Bits; length: number };

/**
 * Reads a prefix in the forms an operator has at hand: the certificate's
 * CN ("5/16"), the registry's bit string ("0000000000000101"), or an IPv6
 * address or subnet of the node ("2001:db8:42:5::", "2001:db8:42:5::/64",
 * any address inside its subnet), which needs the network (from the CA).
 * Returns the exact prefix, or the bits after the network that some
 * allocated prefix must hold; a string says what is wrong.
 */
export function parsePrefixArgument(text: string, network: Bits | null): PrefixArgument | string {
  if (/^[01]{1,128}$/.test(text)) return { prefix: text };
  if (/^\d+\/\d+$/.test(text)) {
    const prefix = cnToPrefix(text);
    return prefix !== null && prefix.length > 0 ? { prefix } : `'${text}' is not a node's CN: N/LEN with N below 2^LEN`;
  }
  if (text.includes(":")) {
    const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(text);
    const bits = m ? ipv6ToBits(m[1]!) : null;
    const length = m?.[2] === undefined ? 128 : Number(m[2]);
    if (bits === null || length > 128) return `'${text}' is not an IPv6 address or subnet`;
    if (network === null) return `an IPv6 address needs the network: give --ca (the registry's CA file)`;
    if (!bits.startsWith(network) || length <= network.length) return `'${text}' is not inside the network ${network.length ? `of the CA (a /${network.length})` : ""}`.trim();
    return { inside: bits.slice(network.length), length: length - network.length };
  }
  return `'${text}' is not a prefix: give the CN (5/16), the bit string (0000000000000101) or the node's IPv6 address or subnet`;
}
