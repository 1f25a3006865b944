// Prefix allocation, the legacy algorithm (SPEC section 3), as a pure plan
// that the database applies inside one transaction.

import { Bits } from "../utils/address";

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
