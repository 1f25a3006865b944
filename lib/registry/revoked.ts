// The revoked prefixes, as last read from the database, and the signed list
// of them (lib/revocation.ts). `vifibnet-registry revoke` changes the table
// under a running registry: a call that needs it reads it again at most
// every REVOCATION_RELOAD seconds, a decisive one (renewal, the list) every
// time (docs/decisions.md, "How a running registry learns of a revocation").

import type { KeyObject } from "node:crypto";
import { RevokedPrefix, SignedRevocationList, signRevocationList } from "../revocation";
import { Bits, prefixToCn } from "../utils/address";
import { RpcFault, isoTime } from "./call";
import type { RegistryDb, RevokedRow } from "./db";

/** Seconds between two looks at the revoked table by one process (the CLI changes it under a running registry). */
export const REVOCATION_RELOAD = 1;
/** A signed revocation list is signed again after this many seconds, so its `issued` stays recent. */
export const REVOCATION_LIST_AGE = 3600;

export class RevokedPrefixes {
  /** By prefix, and the prefixes' lengths for address look-ups. */
  private rows = new Map<Bits, RevokedRow>();
  private lengths: number[] = [];
  private text = "";
  private lastLook = -Infinity;
  private signed: { answer: SignedRevocationList; issued: number } | undefined;

  /**
   * Reads the table. `onChange` is told the whole table whenever a later
   * read finds it changed: what was revoked meanwhile must leave the peers.
   */
  constructor(
    private readonly db: Pick<RegistryDb, "revokedPrefixes">,
    private readonly now: () => number,
    private readonly onChange: (rows: readonly RevokedRow[]) => void,
  ) {
    this.read();
  }

  /** Reads the table again now. */
  refresh(): void {
    const rows = this.read();
    if (rows) this.onChange(rows);
  }

  /** Reads the table again if REVOCATION_RELOAD seconds passed since the last look. */
  refreshIfDue(): void {
    if (this.now() - this.lastLook >= REVOCATION_RELOAD) this.refresh();
  }

  /** The rows when they changed since the last read, else null. */
  private read(): RevokedRow[] | null {
    this.lastLook = this.now();
    const rows = this.db.revokedPrefixes();
    const text = rows.map((r) => `${r.prefix} ${r.since} ${r.reason}`).join("\n");
    if (text === this.text) return null;
    this.text = text;
    this.rows = new Map(rows.map((r) => [r.prefix, r]));
    this.lengths = [...new Set(rows.map((r) => r.prefix.length))];
    this.signed = undefined;
    return rows;
  }

  has(prefix: Bits): boolean {
    return this.rows.has(prefix);
  }

  get(prefix: Bits): RevokedRow | undefined {
    return this.rows.get(prefix);
  }

  /** The revoked prefix that `bits` (after the network) fall in, if any. */
  owner(bits: Bits): RevokedRow | undefined {
    for (const length of this.lengths) {
      const row = this.rows.get(bits.slice(0, length));
      if (row) return row;
    }
    return undefined;
  }

  /** The signed list, from the table as it is now; signed again when it changed or aged. */
  signedList(caKey: KeyObject): SignedRevocationList {
    this.refresh();
    const now = this.now();
    if (!this.signed || now - this.signed.issued >= REVOCATION_LIST_AGE) {
      const revoked: RevokedPrefix[] = [...this.rows.values()].map((r) => ({ prefix: r.prefix, cn: prefixToCn(r.prefix), since: r.since, reason: r.reason }));
      this.signed = { answer: signRevocationList({ version: 1, issued: now, revoked }, caKey), issued: now };
    }
    return this.signed.answer;
  }

  /** The next list is signed anew: the CA changed. */
  signAgain(): void {
    this.signed = undefined;
  }
}

/** The fault for a call about a revoked prefix: what is refused, since when, why. */
export function revokedFault(row: RevokedRow, what: string): RpcFault {
  const why = row.reason ? ` (${row.reason})` : "";
  return new RpcFault("PermissionError", `prefix ${prefixToCn(row.prefix)} was revoked on ${isoTime(row.since)}${why}: ${what}`);
}
