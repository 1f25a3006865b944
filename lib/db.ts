// The node's peers database, peers.db (SPEC section 5): the peers a node may
// open tunnels to. Setup creates it; the daemon reads and updates it. The
// schema is the legacy one, byte for byte, so either implementation's daemon
// can use a file made by either setup. Rollback journal (no WAL), as Python's
// sqlite3 leaves it.

import Database from "better-sqlite3";
import { existsSync } from "node:fs";

export const PEERS_SCHEMA = [
  `CREATE TABLE peers (
             prefix TEXT PRIMARY KEY,
             address TEXT NOT NULL,
             used INTEGER NOT NULL DEFAULT 0,
             date INTEGER DEFAULT (strftime('%s','now')))`,
  `CREATE INDEX _peers_used ON peers(used)`,
];
const COLUMNS = ["prefix", "address", "used", "date"];

/** The file cannot serve as a peers database; the message says what to do. */
export class PeersDbError extends Error {
  override name = "PeersDbError";
}

/** What a path holds: nothing yet, an SQLite file without a peers table, or a peers database. */
export type PeersDbState = "missing" | "no-table" | "ready";

function openError(path: string, e: unknown): PeersDbError {
  const err = e as { code?: string; message: string };
  if (err.code === "SQLITE_NOTADB") return new PeersDbError(`${path} exists but is not an SQLite database; move it away and run again`);
  if (err.code === "SQLITE_CANTOPEN") return new PeersDbError(`cannot open ${path}: permission denied or no such directory`);
  return new PeersDbError(`cannot use ${path}: ${err.message}`);
}

export interface PeerRow {
  prefix: string;
  address: string;
  used: number;
  date: number | null;
}

export class PeersDb {
  private constructor(private readonly db: Database.Database, readonly path: string) {}

  /**
   * Opens an existing peers database, or with `create`, makes the file and
   * the legacy schema when absent. Throws PeersDbError with a usable message.
   */
  static open(path: string, opts: { create?: boolean; readonly?: boolean } = {}): PeersDb {
    if (!opts.create && !existsSync(path)) throw new PeersDbError(`${path} does not exist; create it with vifibnet-setup`);
    let db: Database.Database;
    try {
      db = new Database(path, { readonly: opts.readonly ?? false, fileMustExist: !opts.create });
      db.pragma("busy_timeout = 5000");
    } catch (e) {
      throw openError(path, e);
    }
    const peers = new PeersDb(db, path);
    try {
      if (opts.create && !peers.hasPeersTable()) db.transaction(() => PEERS_SCHEMA.forEach((sql) => db.exec(sql))).immediate();
      peers.checkSchema();
    } catch (e) {
      db.close();
      throw e instanceof PeersDbError ? e : openError(path, e);
    }
    return peers;
  }

  /** What `path` holds, without changing it. Throws PeersDbError when it is unusable. */
  static inspect(path: string): PeersDbState {
    if (!existsSync(path)) return "missing";
    const peers = PeersDb.openRaw(path);
    try {
      if (!peers.hasPeersTable()) return "no-table";
      peers.checkSchema();
      return "ready";
    } finally {
      peers.close();
    }
  }

  private static openRaw(path: string): PeersDb {
    try {
      const db = new Database(path, { readonly: true, fileMustExist: true });
      db.pragma("schema_version"); // reads the header: fails here on a non-database
      return new PeersDb(db, path);
    } catch (e) {
      throw openError(path, e);
    }
  }

  private hasPeersTable(): boolean {
    try {
      return this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'peers'").get() !== undefined;
    } catch (e) {
      throw openError(this.path, e);
    }
  }

  /** A peers table of another shape (a registry's, say) would break the daemon later: refuse it now. */
  private checkSchema(): void {
    const have = (this.db.prepare("PRAGMA table_info(peers)").all() as Array<{ name: string }>).map((r) => r.name);
    const missing = COLUMNS.filter((c) => !have.includes(c));
    if (missing.length > 0)
      throw new PeersDbError(`${this.path} has a peers table without column(s) ${missing.join(", ")}: it is not a node's peers database (a registry's?); move it away and run again`);
  }

  /** Adds a peer, or updates its address if the prefix is known (its `used` state stays). */
  addPeer(prefix: string, address: string): void {
    this.db
      .prepare("INSERT INTO peers (prefix, address) VALUES (?, ?) ON CONFLICT(prefix) DO UPDATE SET address = excluded.address")
      .run(prefix, address);
  }

  peers(): PeerRow[] {
    return this.db.prepare("SELECT prefix, address, used, date FROM peers ORDER BY prefix").all() as PeerRow[];
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /**
   * Writes a consistent copy of the SQLite file `from`, whatever its tables,
   * to `to` (which must not exist), including what a WAL holds: how setup
   * extends an existing file without touching it in place.
   */
  static copy(from: string, to: string): void {
    const src = PeersDb.openRaw(from);
    try {
      src.db.prepare("VACUUM INTO ?").run(to);
    } catch (e) {
      throw openError(from, e);
    } finally {
      src.close();
    }
  }
}
