// peers.db as the daemon uses it (SPEC section 5): a real SQLite file.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import Database from "better-sqlite3";
import { PeerListItem, PeersDb } from "../lib/db";

const tmp = mkdtempSync(join(tmpdir(), "vifibnet-peers-db-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
let seq = 0;
const p = (n: number): string => n.toString(2).padStart(16, "0");
const addr = (n: number): string => `198.51.100.${n},1194,udp`;
const OWN = p(5);

function fresh(): { db: PeersDb; raw: Database.Database; path: string } {
  const path = join(tmp, `peers-${++seq}.db`);
  const db = PeersDb.open(path, { create: true });
  const raw = new Database(path);
  after(() => { db.close(); raw.close(); });
  return { db, raw, path };
}
const rows = (db: PeersDb): Array<[number, string, number]> => db.peers().map((r) => [parseInt(r.prefix, 2), r.address, r.used]);

test("unused peers: free before dead, none in use, random within a class, limited", () => {
  const { db } = fresh();
  for (let n = 1; n <= 30; n++) db.addPeer(p(n), addr(n));
  for (let n = 1; n <= 10; n++) db.setUsed(p(n), -1);
  for (let n = 11; n <= 15; n++) db.setUsed(p(n), 1);
  const all = db.unusedPeers();
  assert.equal(all.length, 25);
  assert.deepEqual(all.map((r) => r.used), [...Array(15).fill(0), ...Array(10).fill(-1)]);
  assert.deepEqual(new Set(all.slice(0, 15).map((r) => parseInt(r.prefix, 2))), new Set(Array.from({ length: 15 }, (_, i) => 16 + i)));
  assert.equal(db.unusedPeers(3).length, 3);
  assert.deepEqual(db.unusedPeers(0), []);
  const orders = new Set(Array.from({ length: 10 }, () => db.unusedPeers(15).map((r) => r.prefix).join()));
  assert.ok(orders.size > 1, "random order within a class");
});

test("mark used / unused / dead; unknown prefixes are reported, not created", () => {
  const { db } = fresh();
  db.addPeer(p(1), addr(1));
  assert.equal(db.setUsed(p(1), 1), true);
  assert.deepEqual(rows(db), [[1, addr(1), 1]]);
  db.setUsed(p(1), -1);
  assert.deepEqual(rows(db), [[1, addr(1), -1]]);
  db.setUsed(p(1), 0);
  assert.deepEqual(rows(db), [[1, addr(1), 0]]);
  assert.equal(db.setUsed(p(2), 1), false);
  assert.equal(db.count(), 1);
});

test("at start every peer is free again, dead ones included", () => {
  const { db } = fresh();
  [1, 2, 3].forEach((n) => db.addPeer(p(n), addr(n)));
  db.setUsed(p(1), 1);
  db.setUsed(p(2), -1);
  assert.equal(db.resetUsed(), 2);
  assert.deepEqual(rows(db).map((r) => r[2]), [0, 0, 0]);
});

test("remove a peer (LAN), one or several in a transaction", () => {
  const { db } = fresh();
  [1, 2, 3, 4].forEach((n) => db.addPeer(p(n), addr(n)));
  assert.equal(db.removePeer(p(1)), true);
  assert.equal(db.removePeer(p(1)), false);
  assert.equal(db.removePeers([p(2), p(3), p(9)]), 2);
  assert.deepEqual(rows(db).map((r) => r[0]), [4]);
});

test("populate: adds, updates known ones (used kept), skips ourselves and malformed items", () => {
  const { db, raw } = fresh();
  db.addPeer(p(1), addr(1));
  db.addPeer(OWN, addr(5)); // our own row, e.g. the bootstrap peer was ourselves
  db.setUsed(p(1), 1);
  raw.prepare("UPDATE peers SET date = 1000").run();
  const list: PeerListItem[] = [
    [p(1), "203.0.113.1,1194,udp"],
    [p(2), addr(2)],
    [OWN, addr(5)],
    [p(3), "198.51.100.3,1194,udp;--up,/bin/sh,udp"],
    ["0102", addr(4)],
    ["", addr(4)],
    [p(6), "198.51.100.6,443,tcp-server"],
    [p(7), addr(7)],
  ];
  const r = db.populate(list, OWN, 200, [p(7)]);
  assert.deepEqual(r, { added: 2, updated: 1, skipped: 5, dropped: 0 });
  assert.deepEqual(rows(db), [[1, "203.0.113.1,1194,udp", 1], [2, addr(2), 0], [6, "198.51.100.6,443,tcp-server", 0]]);
  const date = raw.prepare("SELECT date FROM peers WHERE prefix = ?").pluck().get(p(1)) as number;
  assert.ok(Math.abs(date - Date.now() / 1000) < 60, "a refreshed peer's date is now");
  assert.equal(typeof date, "number", "stored as an integer, as the legacy default does");
});

test("populate refuses peers whose addresses no other host can reach (a legacy registry stores them)", () => {
  const { db } = fresh();
  const hostile = ["127.0.0.1,22,tcp-client", "0.0.0.0,1194,udp", "255.255.255.255,1194,udp", "224.0.0.1,1194,udp",
    "::,1194,udp", "::ffff:127.0.0.1,1194,udp", "fe80::1,1194,udp", `${addr(9)};127.0.0.1,22,tcp-client`];
  const r = db.populate([...hostile.map((a, i): PeerListItem => [p(20 + i), a]), [p(9), addr(9)]], OWN, 200);
  assert.deepEqual(r, { added: 1, updated: 0, skipped: hostile.length, dropped: 0 });
  assert.deepEqual(rows(db), [[9, addr(9), 0]]);
});

test("populate keeps the table bounded: the oldest unused rows go, dead first among equals, never a used one", () => {
  const { db, raw } = fresh();
  const dates = [[1, 100], [2, 100], [3, 200], [4, 50], [6, 300], [7, 300], [8, 250]];
  dates.forEach(([n]) => db.addPeer(p(n!), addr(n!)));
  const setDate = raw.prepare("UPDATE peers SET date = ? WHERE prefix = ?");
  dates.forEach(([n, d]) => setDate.run(d, p(n!)));
  db.setUsed(p(4), 1); // oldest, but a tunnel is up to it
  db.setUsed(p(2), -1);
  const r = db.populate([[p(10), addr(10)], [p(11), addr(11)], [p(3), addr(3)]], OWN, 8);
  // 9 rows, bound 8: among the unused, the oldest (date 100) go first, and of those the dead one.
  assert.deepEqual(r, { added: 2, updated: 1, skipped: 0, dropped: 1 });
  assert.deepEqual(rows(db).map((x) => x[0]), [1, 3, 4, 6, 7, 8, 10, 11]);
  // p(3) was refreshed by the registry: now the newest; bound 5 drops 1, 8, then 6 or 7 (same date, random).
  assert.equal(db.populate([], OWN, 5).dropped, 3);
  const left = rows(db).map((x) => x[0]);
  assert.deepEqual(left.filter((n) => n !== 6 && n !== 7), [3, 4, 10, 11]);
  assert.equal(left.length, 5);
  // Everything in use: nothing can go, the table may exceed its bound.
  const { db: busy } = fresh();
  [1, 2].forEach((n) => { busy.addPeer(p(n), addr(n)); busy.setUsed(p(n), 1); });
  assert.equal(busy.populate([[p(3), addr(3)]], OWN, 2).dropped, 1, "the new unused row goes");
  assert.deepEqual(busy.peers().map((x) => x.used), [1, 1]);
  assert.throws(() => busy.populate([], OWN, 0), RangeError);
});

test("populate is one transaction: a failure leaves the table as it was", () => {
  const { db, raw } = fresh();
  db.addPeer(p(1), addr(1));
  raw.exec("CREATE TRIGGER no_twelve BEFORE INSERT ON peers WHEN NEW.prefix = '" + p(12) + "' BEGIN SELECT RAISE(ABORT, 'refused'); END");
  assert.throws(() => db.populate([[p(11), addr(11)], [p(12), addr(12)]], OWN, 200), /refused/);
  assert.deepEqual(rows(db).map((x) => x[0]), [1]);
});

test("a file written by the daemon keeps the legacy schema and opens as a setup-made one", () => {
  const { db, path } = fresh();
  db.populate([[p(1), addr(1)]], OWN, 10);
  db.setUsed(p(1), 1);
  db.close();
  assert.equal(PeersDb.inspect(path), "ready");
  const again = PeersDb.open(path);
  assert.deepEqual(rows(again), [[1, addr(1), 1]]);
  again.close();
});
