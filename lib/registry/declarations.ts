// Which prefix a declaration is for, or why it is refused: the legacy
// `declare` (unauthenticated, refused as `false`) and `declareSigned`
// (lib/declaration.ts; refused with a fault that says why). Storing the
// address list is the caller's (./service.ts).

import { verifyDeclaration } from "../declaration";
import { Bits, hostBits, parseAddressList, prefixToCn } from "../utils/address";
import { Logger } from "../utils/log";
import { Caller, RpcFault } from "./call";
import type { RegistryDb } from "./db";
import { RevokedPrefixes, revokedFault } from "./revoked";
import { StrictModes, declareRefusal } from "./strict";

/** How far a signed declaration's time may be from the registry's clock, in seconds. */
export const DECLARATION_SKEW = 3600;

export interface DeclarationDeps {
  db: Pick<RegistryDb, "ownerOf" | "certOf" | "recordDeclaration">;
  revoked: RevokedPrefixes;
  /** The network's prefix (a CA renewal keeps it). */
  network: Bits;
  strict: StrictModes;
  log: Logger;
  /** Seconds since the epoch. */
  now: () => number;
}

export class Declarations {
  constructor(private readonly deps: DeclarationDeps) {}

  /** The prefix a legacy declare is for; null when it is refused (false on the wire, as legacy nodes expect). */
  legacy(nodeIp: string, addressList: string, caller: Caller): Bits | null {
    const { db, revoked, log } = this.deps;
    const bits = hostBits(nodeIp, this.deps.network);
    if (bits === null || parseAddressList(addressList) === null) return null;
    const why = declareRefusal(this.deps.strict, nodeIp, caller);
    if (why !== null) {
      log.log(2, `declare for ${nodeIp} from ${caller.address ?? "?"} refused: ${why}`);
      return null;
    }
    const prefix = db.ownerOf(bits);
    if (prefix === undefined) return null;
    revoked.refreshIfDue();
    if (revoked.has(prefix)) {
      log.log(2, `declare for ${nodeIp} refused: prefix ${prefixToCn(prefix)} is revoked`);
      return null;
    }
    return prefix;
  }

  /**
   * The prefix a declaration signed with the key of the certificate stored
   * for it is for. Faults say why a declaration is refused: only our nodes
   * call it, and they log the reason.
   */
  signed(nodeIp: string, addressList: string, time: string, signature: Buffer): Bits {
    const { db, revoked } = this.deps;
    const bits = hostBits(nodeIp, this.deps.network);
    if (bits === null) throw new RpcFault("ValueError", `${nodeIp} is not an address inside the network`);
    if (parseAddressList(addressList) === null) throw new RpcFault("ValueError", `malformed address list ${JSON.stringify(addressList.slice(0, 200))}`);
    const ms = /^[0-9]{1,16}$/.test(time) ? Number(time) : NaN;
    if (!(Math.abs(ms / 1000 - this.deps.now()) <= DECLARATION_SKEW))
      throw new RpcFault("ValueError", `the declaration's time ${JSON.stringify(time.slice(0, 20))} is more than ${DECLARATION_SKEW} s away from the registry's clock`);
    const prefix = db.ownerOf(bits);
    const cert = prefix === undefined ? null : db.certOf(prefix);
    if (prefix === undefined || cert === null) throw new RpcFault("LookupError", `no certificate was issued for ${nodeIp}`);
    revoked.refreshIfDue();
    const row = revoked.get(prefix);
    if (row) throw revokedFault(row, "its declarations are refused");
    if (!verifyDeclaration({ nodeIp, addressList, time }, signature, cert))
      throw new RpcFault("PermissionError", `the signature is not made with the key of the certificate issued for ${prefixToCn(prefix)}`);
    if (!db.recordDeclaration(prefix, ms))
      throw new RpcFault("PermissionError", "a declaration as recent was already accepted (replayed?)");
    return prefix;
  }
}
