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
    };
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
      const plan = planAllocation(this.stmt.freePrefixes.all(row.prefix_len) as Bits[], row.prefix_len);
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
