// The registry's SQLite file (SPEC section 3), shared with the legacy
// registry.py: same tables, same root row, rollback journal (no WAL) so the
// file stays exactly what Python's sqlite3 writes.

import Database from "better-sqlite3";
import { Bits } from "../utils/address";
import { planAllocation } from "./prefix";

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS peers (
      prefix TEXT PRIMARY KEY NOT NULL,
      address TEXT NOT NULL,
      date INTEGER DEFAULT (strftime('%s','now')))`,
  `CREATE INDEX IF NOT EXISTS peers_ping ON peers(date)`,
  `CREATE TABLE IF NOT EXISTS tokens (
      token TEXT PRIMARY KEY NOT NULL,
      email TEXT NOT NULL,
      prefix_len INTEGER NOT NULL,
      date INTEGER NOT NULL)`,
];
/**
 * Ours alone (the legacy registry ignores it): the time of the last signed
 * declaration accepted per prefix, so none can be played again. Created with
 * the first signed declaration, so a network without them keeps exactly the
 * legacy schema.
 */
const DECLARATIONS = `CREATE TABLE IF NOT EXISTS declarations (
      prefix TEXT PRIMARY KEY NOT NULL,
      time INTEGER NOT NULL)`;
/**
 * Ours alone, made by the first `vifibnet-registry revoke`: the revoked node
 * prefixes (bit strings, as in vpn), since when and why. A revoked prefix
 * keeps its vpn row, so it is never allocated again and stays in the
 * inventory.
 */
const REVOKED = `CREATE TABLE IF NOT EXISTS revoked (
      prefix TEXT PRIMARY KEY NOT NULL,
      since INTEGER NOT NULL,
      reason TEXT)`;
const VPN = `CREATE TABLE vpn (
      prefix TEXT PRIMARY KEY NOT NULL,
      email TEXT,
      cert TEXT)`;

const EXPECTED: Record<string, string[]> = {
  peers: ["prefix", "address", "date"],
  tokens: ["token", "email", "prefix_len", "date"],
  vpn: ["prefix", "email", "cert"],
};

export class RegistryDbError extends Error {
  override name = "RegistryDbError";
}

export interface TokenRow {
  token: string;
  email: string;
  prefix_len: number;
  date: number;
}

export interface PeerRow {
  prefix: Bits;
  address: string;
}

export interface RevokedRow {
  prefix: Bits;
  since: number;
  reason: string | null;
}

/** One allocated prefix as the operator's inventory shows it. */
export interface AllocationRow {
  prefix: Bits;
  email: string | null;
  cert: string;
  /** The peers row: the address last declared and when (seconds), or null once purged. */
  address: string | null;
  declared: number | null;
  /** The last signed declaration accepted (milliseconds), or null. */
  signed: number | null;
}

/** Thrown inside the issuing transaction, which rolls it back. */
export class IssueError extends Error {
  constructor(readonly kind: "unknown-token" | "exhausted", message: string) {
    super(message);
  }
}

export class RegistryDb {
  private readonly db: Database.Database;
  private readonly stmt;
  private declared: Database.Statement | undefined;

  constructor(path: string) {
    try {
      this.db = new Database(path);
      this.db.pragma("busy_timeout = 5000");
      this.db.transaction(() => {
        for (const sql of SCHEMA) this.db.exec(sql);
        const hasVpn = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type='table' AND name='vpn'").get();
        if (!hasVpn) {
          this.db.exec(VPN);
          this.db.prepare("INSERT INTO vpn VALUES ('', NULL, NULL)").run();
        }
      }).immediate();
    } catch (e) {
      throw new RegistryDbError(`cannot open the registry database ${path}: ${(e as Error).message}`);
    }
    for (const [table, cols] of Object.entries(EXPECTED)) {
      const have = (this.db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>).map((r) => r.name);
      if (cols.some((c) => !have.includes(c)))
        throw new RegistryDbError(`${path}: table ${table} has columns (${have.join(", ")}), expected (${cols.join(", ")}): not a vifibnet registry database`);
    }
    const db = this.db;
    this.stmt = {
      insertToken: db.prepare("INSERT OR IGNORE INTO tokens VALUES (?, ?, ?, ?)"),
      getToken: db.prepare("SELECT token, email, prefix_len, date FROM tokens WHERE token = ?"),
      deleteToken: db.prepare("DELETE FROM tokens WHERE token = ?"),
      freePrefixes: db.prepare("SELECT prefix FROM vpn WHERE cert IS NULL AND length(prefix) <= ?").pluck(),
      renamePrefix: db.prepare("UPDATE vpn SET prefix = ? WHERE prefix = ?"),
      insertPrefix: db.prepare("INSERT INTO vpn VALUES (?, NULL, NULL)"),
      allocate: db.prepare("UPDATE vpn SET email = ?, cert = ? WHERE prefix = ?"),
      owner: db.prepare("SELECT prefix FROM vpn WHERE prefix <= ? ORDER BY prefix DESC LIMIT 1").pluck(),
      upsertPeer: db.prepare(
        "INSERT INTO peers (prefix, address, date) VALUES (?, ?, ?) ON CONFLICT(prefix) DO UPDATE SET address = excluded.address, date = excluded.date",
      ),
      purgePeers: db.prepare("DELETE FROM peers WHERE date + ? <= ?"),
      allPeers: db.prepare("SELECT prefix, address FROM peers"),
      cert: db.prepare("SELECT cert FROM vpn WHERE prefix = ?").pluck(),
      replaceCert: db.prepare("UPDATE vpn SET cert = ? WHERE prefix = ? AND cert = ?"),
      deletePeer: db.prepare("DELETE FROM peers WHERE prefix = ?"),
      stampTokens: db.prepare("UPDATE tokens SET date = ? WHERE date <= 0"),
      purgeTokens: db.prepare("DELETE FROM tokens WHERE date + ? <= ?"),
      hasTable: db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").pluck(),
    };
  }

  private hasTable(name: string): boolean {
    return this.stmt.hasTable.get(name) !== undefined;
  }

  /** Stores a new token; false if it already exists. */
  addToken(row: TokenRow): boolean {
    return this.stmt.insertToken.run(row.token, row.email, row.prefix_len, row.date).changes === 1;
  }

  getToken(token: string): TokenRow | undefined {
    return this.stmt.getToken.get(token) as TokenRow | undefined;
  }

  deleteToken(token: string): void {
    this.stmt.deleteToken.run(token);
  }

  /**
   * In one immediate transaction: consumes the token, allocates a prefix of
   * its length and stores the certificate `makeCert(prefix)` returns. Any
   * throw (IssueError or from makeCert) rolls everything back.
   */
  issue(token: string, makeCert: (prefix: Bits, row: TokenRow) => string): { prefix: Bits; cert: string } {
    return this.db.transaction(() => {
      const row = this.getToken(token);
      if (!row) throw new IssueError("unknown-token", "unknown or already used token");
      // A revoked prefix freed by hand in vpn is still never handed out again.
      const revoked = new Set(this.revokedPrefixes().map((r) => r.prefix));
      const free = (this.stmt.freePrefixes.all(row.prefix_len) as Bits[]).filter((p) => !revoked.has(p));
      const plan = planAllocation(free, row.prefix_len);
      if (!plan) throw new IssueError("exhausted", `no free /${row.prefix_len} prefix is left in the network`);
      for (const p of plan.splits) {
        this.stmt.renamePrefix.run(p + "1", p);
        this.stmt.insertPrefix.run(p + "0");
      }
      const cert = makeCert(plan.prefix, row);
      this.stmt.allocate.run(row.email, cert, plan.prefix);
      this.stmt.deleteToken.run(token);
      return { prefix: plan.prefix, cert };
    }).immediate();
  }

  /** The vpn prefix owning an address (bits after the network): the greatest prefix <= them. */
  ownerOf(bits: Bits): Bits | undefined {
    return this.stmt.owner.get(bits) as Bits | undefined;
  }

  /** The certificate issued for exactly `prefix`, or null when it is free or unknown. */
  certOf(prefix: Bits): string | null {
    return (this.stmt.cert.get(prefix) as string | null | undefined) ?? null;
  }

  /**
   * Records `time` as the last signed declaration of `prefix` if it is newer
   * than the one recorded; false (nothing changed) otherwise. Atomic, so two
   * workers cannot both accept one declaration.
   */
  recordDeclaration(prefix: Bits, time: number): boolean {
    if (!this.declared) {
      this.db.exec(DECLARATIONS);
      this.declared = this.db.prepare(
        "INSERT INTO declarations VALUES (?, ?) ON CONFLICT(prefix) DO UPDATE SET time = excluded.time WHERE excluded.time > declarations.time",
      );
    }
    return this.declared.run(prefix, time).changes === 1;
  }

  /**
   * Replaces the certificate of `prefix` if it is still `oldCert`; false
   * when another renewal changed it meanwhile.
   */
  replaceCert(prefix: Bits, oldCert: string, newCert: string): boolean {
    return this.stmt.replaceCert.run(newCert, prefix, oldCert).changes === 1;
  }

  /**
   * Deletes the tokens made `ttl` seconds or more before `now`; returns how
   * many. A token dated 0 (or before), which no registry writes but an
   * operator of the legacy one did by hand, is first dated `now`: it
   * expires `ttl` after this registry first saw it.
   */
  purgeTokens(ttl: number, now: number): number {
    return this.db.transaction(() => {
      this.stmt.stampTokens.run(now);
      return this.stmt.purgeTokens.run(ttl, now).changes;
    }).immediate();
  }

  // ---- Revocation (the table exists once something was revoked) ----

  revokedPrefixes(): RevokedRow[] {
    if (!this.hasTable("revoked")) return [];
    return this.db.prepare("SELECT prefix, since, reason FROM revoked ORDER BY prefix").all() as RevokedRow[];
  }

  /**
   * Revokes an allocated prefix and drops it from peers, in one transaction.
   * Returns the existing row when it was revoked already (nothing changes).
   * Throws RegistryDbError when no certificate was issued for it.
   */
  revoke(prefix: Bits, since: number, reason: string | null): { already: RevokedRow | null } {
    return this.db.transaction(() => {
      if (this.certOf(prefix) === null) throw new RegistryDbError(`no certificate was issued for prefix ${prefix}: nothing to revoke`);
      this.db.exec(REVOKED);
      const already = this.db.prepare("SELECT prefix, since, reason FROM revoked WHERE prefix = ?").get(prefix) as RevokedRow | undefined;
      if (!already) this.db.prepare("INSERT INTO revoked VALUES (?, ?, ?)").run(prefix, since, reason);
      this.stmt.deletePeer.run(prefix);
      return { already: already ?? null };
    }).immediate();
  }

  /** Lifts a revocation; false when the prefix was not revoked. */
  unrevoke(prefix: Bits): boolean {
    if (!this.hasTable("revoked")) return false;
    return this.db.prepare("DELETE FROM revoked WHERE prefix = ?").run(prefix).changes === 1;
  }

  /** Drops these prefixes from peers; returns how many rows went. */
  deletePeers(prefixes: Iterable<Bits>): number {
    return this.db.transaction((list: Bits[]) => list.reduce((n, p) => n + this.stmt.deletePeer.run(p).changes, 0)).immediate([...prefixes]);
  }

  /** Every allocated prefix, with what the registry knows of it, in prefix order. */
  allocations(): AllocationRow[] {
    const signed = this.hasTable("declarations") ? "(SELECT time FROM declarations d WHERE d.prefix = v.prefix)" : "NULL";
    return this.db.prepare(
      `SELECT v.prefix, v.email, v.cert, p.address, p.date AS declared, ${signed} AS signed
       FROM vpn v LEFT JOIN peers p ON p.prefix = v.prefix WHERE v.cert IS NOT NULL ORDER BY v.prefix`,
    ).all() as AllocationRow[];
  }

  upsertPeer(prefix: Bits, address: string, date: number): void {
    this.stmt.upsertPeer.run(prefix, address, date);
  }

  /** Deletes peers declared `maxAge` seconds or more before `now`; returns how many. */
  purgePeers(maxAge: number, now: number): number {
    return this.stmt.purgePeers.run(maxAge, now).changes;
  }

  allPeers(): PeerRow[] {
    return this.stmt.allPeers.all() as PeerRow[];
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
