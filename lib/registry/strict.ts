// The opt-in strict modes, for a network that has no legacy node left, or
// whose nodes reach the registry over the overlay (README, "Ending a
// migration"; docs/decisions.md, "Signed declarations and the strict
// modes"). Pure: each check is told the call and answers why it is refused.

import { Bits, hostBits, ipv6ToBits } from "../utils/address";
import type { Caller } from "./call";

export interface StrictModes {
  /** --strict-source: `declare` only for its caller's own address; `getPeerList` only to callers inside the network. */
  source?: boolean;
  /** --strict-signed: `declare` (unsigned) refused; only `declareSigned` changes a peer's address. */
  signed?: boolean;
}

/** Whether the call came from `ip` itself (the same 128 bits, whatever the spelling). */
function fromItself(ip: string, caller: Caller): boolean {
  const bits = ipv6ToBits(ip);
  return bits !== null && caller.address !== null && ipv6ToBits(caller.address) === bits;
}

/** Why a strict mode refuses an unsigned declare for `nodeIp`, or null. */
export function declareRefusal(strict: StrictModes, nodeIp: string, caller: Caller): string | null {
  if (strict.signed) return "unsigned (--strict-signed)";
  if (strict.source && !fromItself(nodeIp, caller)) return `not from ${nodeIp} itself (--strict-source)`;
  return null;
}

/** Why a strict mode refuses getPeerList to `caller`, or null. */
export function peerListRefusal(strict: StrictModes, caller: Caller, network: Bits): string | null {
  if (strict.source && (caller.address === null || hostBits(caller.address, network) === null))
    return `getPeerList is answered only to callers inside the network (--strict-source); ${caller.address ?? "this caller"} is not`;
  return null;
}
