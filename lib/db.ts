// The node's peers database, peers.db (SPEC section 5): the peers a node may
// open tunnels to. Setup creates it; the daemon reads and updates it. The
// schema is the legacy one, byte for byte, so either implementation's daemon
// can use a file made by either setup. Rollback journal (no WAL), as Python's
// sqlite3 leaves it.

import Database from "better-sqlite3";
import { existsSync } from "node:fs";
import { parseAddressList } from "./utils/address";

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

/** The `used` column: 1 a tunnel is up to the peer, 0 free, -1 its tunnel died (tried last). */
export type PeerUse = 1 | 0 | -1;

/** One `[prefix, address]` item of the registry's getPeerList answer. */
export type PeerListItem = readonly [prefix: string, address: string];

export interface PopulateResult {
  /** New rows. */
  added: number;
  /** Known prefixes whose address and date were refreshed. */
  updated: number;
  /** Items refused: our own prefix, an excluded one, a malformed prefix or address list. */
  skipped: number;
  /** Rows deleted to keep the table within its bound. */
  dropped: number;
}

/** A prefix as the registry hands it out: a non-empty bit string. */
const PREFIX_RE = /^[01]{1,128}$/;

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

  // ---- The daemon's side (SPEC sections 5, 6) ----

  count(): number {
    return this.db.prepare("SELECT COUNT(*) FROM peers").pluck().get() as number;
  }

  /**
   * Marks every peer free (0), dead ones included, as the legacy daemon does
   * at start: the previous run's tunnels are gone. Returns the rows changed.
   */
  resetUsed(): number {
    return this.db.prepare("UPDATE peers SET used = 0 WHERE used != 0").run().changes;
  }

  /**
   * Peers without a tunnel, free (0) before dead (-1), in random order within
   * each class so nodes spread their tunnels; at most `limit` (all by default).
   */
  unusedPeers(limit?: number): PeerRow[] {
    const n = limit === undefined ? -1 : Math.max(0, Math.floor(limit));
    return this.db
      .prepare("SELECT prefix, address, used, date FROM peers WHERE used <= 0 ORDER BY used DESC, random() LIMIT ?")
      .all(n) as PeerRow[];
  }

  /** Sets a peer's `used`; false when the prefix is unknown (removed meanwhile: nothing to do). */
  setUsed(prefix: string, used: PeerUse): boolean {
    return this.db.prepare("UPDATE peers SET used = ? WHERE prefix = ?").run(used, prefix).changes > 0;
  }

  /** Forgets a peer (it is on our LAN, or its address is unusable); true if it was there. */
  removePeer(prefix: string): boolean {
    return this.db.prepare("DELETE FROM peers WHERE prefix = ?").run(prefix).changes > 0;
  }

  /** removePeer for several prefixes in one transaction; returns how many rows went. */
  removePeers(prefixes: Iterable<string>): number {
    const del = this.db.prepare("DELETE FROM peers WHERE prefix = ?");
    return this.db.transaction((list: string[]) => list.reduce((n, p) => n + del.run(p).changes, 0)).immediate([...prefixes]);
  }

  /**
   * Stores the registry's getPeerList answer, in one transaction.
   * - Skips our own prefix, `exclude`d ones (LAN peers), and items whose
   *   prefix is not a bit string or whose address list is malformed: those
   *   could never be tunnelled to, and must not reach OpenVPN.
   * - A known prefix gets the new address and date (the registry saw it
   *   recently) but keeps its `used` state: a running tunnel stays accounted.
   * - Our own prefix and excluded ones are deleted if present (legacy).
   * - Bound: over `maxSize` rows, drops the rows without a tunnel that the
   *   registry mentioned least recently (oldest `date`), dead ones first
   *   among equals, at random past that. Rows in use are never dropped, so a
   *   node with many tunnels may hold slightly more. The legacy dropped
   *   unused rows at random; the oldest are the likeliest to be gone from
   *   the network (the registry forgets peers after a day).
   */
  populate(list: readonly PeerListItem[], ownPrefix: string, maxSize: number, exclude: Iterable<string> = []): PopulateResult {
    if (!Number.isInteger(maxSize) || maxSize < 1) throw new RangeError(`peers.db bound must be a positive integer, got ${maxSize}`);
    const excluded = new Set(exclude);
    const result: PopulateResult = { added: 0, updated: 0, skipped: 0, dropped: 0 };
    const known = this.db.prepare("SELECT 1 FROM peers WHERE prefix = ?");
    const upsert = this.db.prepare(
      `INSERT INTO peers (prefix, address) VALUES (?, ?)
       ON CONFLICT(prefix) DO UPDATE SET address = excluded.address, date = strftime('%s','now')`,
    );
    const del = this.db.prepare("DELETE FROM peers WHERE prefix = ?");
    const trim = this.db.prepare(
      `DELETE FROM peers WHERE prefix IN (
         SELECT prefix FROM peers WHERE used <= 0 ORDER BY date ASC, used ASC, random() LIMIT ?)`,
    );
    this.db.transaction(() => {
      for (const [prefix, address] of list) {
        if (prefix === ownPrefix || excluded.has(prefix) || !PREFIX_RE.test(prefix) || parseAddressList(address) === null) {
          result.skipped++;
          continue;
        }
        if (known.get(prefix) === undefined) result.added++;
        else result.updated++;
        upsert.run(prefix, address);
      }
      for (const p of [ownPrefix, ...excluded]) del.run(p);
      const over = this.count() - maxSize;
      if (over > 0) result.dropped = trim.run(over).changes;
    }).immediate();
    return result;
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
