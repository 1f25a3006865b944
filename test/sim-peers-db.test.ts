// The simulator's peers.db model keeps lib/db.ts's rules: our own prefix
// never stored, a known peer keeps its `used`, the bound drops the rows
// mentioned least recently (dead before free among equals) and never a row
// in use, unused peers come free before dead.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { PeersDbs } from "../sim/peers-db";
import { Rng } from "../sim/rng";

const OWN = 0;
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);
const peersOf = (db: PeersDbs, u: number): number[] => db.rows(u).map((r) => r[0]).sort((a, b) => a - b);
const usedOf = (db: PeersDbs, u: number, p: number): number | undefined => db.rows(u).find((r) => r[0] === p)?.[1];

function unused(db: PeersDbs, u: number, limit: number, rng: Rng): Array<[number, number]> {
  const out = { peer: new Int32Array(limit), used: new Int8Array(limit) };
  const n = db.unusedPeers(u, limit, rng, out);
  return Array.from({ length: n }, (_, i) => [out.peer[i]!, out.used[i]!]);
}

describe("simulator peers.db", () => {
  test("populate skips our own index, adds new peers free, keeps a known peer's used and refreshes its date", () => {
    const db = new PeersDbs(1, 10, 10, 100);
    const rng = new Rng(1);
    db.addPeer(OWN, 5, 0);
    db.setUsed(OWN, 5, 1);
    const c = db.populate(OWN, [OWN, 5, 6, 7], OWN, 10, 300, rng);
    assert.deepEqual(c, { added: 2, updated: 1, skipped: 1, dropped: 0 });
    assert.deepEqual(peersOf(db, OWN), [5, 6, 7]);
    assert.equal(usedOf(db, OWN, 5), 1);
    assert.deepEqual(db.rows(OWN).find((r) => r[0] === 5)?.[2], 300);
  });

  test("over the bound, the rows the registry mentioned least recently go, dead ones first among equals, never one in use", () => {
    const db = new PeersDbs(1, 6, 6, 100);
    const rng = new Rng(2);
    db.populate(OWN, [1, 2, 3, 4], OWN, 6, 0, rng); // date 0
    db.setUsed(OWN, 1, 1); // a tunnel: kept whatever its date
    db.setUsed(OWN, 2, -1);
    db.populate(OWN, [5, 6], OWN, 6, 300, rng); // 6 rows: at the bound
    const c = db.populate(OWN, [7], OWN, 6, 600, rng); // one too many: the oldest dead one goes
    assert.equal(c.dropped, 1);
    assert.deepEqual(peersOf(db, OWN), [1, 3, 4, 5, 6, 7]);
    const d = db.populate(OWN, [8, 9, 10], OWN, 6, 900, rng); // three go: 3 and 4 (date 0), then one of 5, 6 (date 300)
    assert.equal(d.dropped, 3);
    const left = peersOf(db, OWN);
    assert.ok(left.includes(1) && !left.includes(3) && !left.includes(4));
    assert.equal(left.filter((p) => p === 5 || p === 6).length, 1);
    assert.deepEqual(left.filter((p) => p >= 7), [7, 8, 9, 10]);
  });

  test("unused peers: free ones in random order, then dead ones, never one in use, at most the limit", () => {
    const db = new PeersDbs(1, 50, 50, 100);
    const rng = new Rng(3);
    db.populate(OWN, range(1, 41), OWN, 50, 0, rng);
    for (const p of range(1, 11)) db.setUsed(OWN, p, -1);
    for (const p of range(11, 16)) db.setUsed(OWN, p, 1);
    const all = unused(db, OWN, 100, rng);
    assert.equal(all.length, 35);
    assert.deepEqual(all.map((x) => x[1]), [...Array(25).fill(0), ...Array(10).fill(-1)]);
    assert.deepEqual(all.slice(0, 25).map((x) => x[0]).sort((a, b) => a - b), range(16, 41));
    const few = unused(db, OWN, 5, rng);
    assert.equal(few.length, 5);
    assert.ok(few.every(([p, u]) => u === 0 && p >= 16));
    const other = unused(db, OWN, 25, new Rng(4)).map((x) => x[0]);
    assert.notDeepEqual(other, all.slice(0, 25).map((x) => x[0]), "the order is random");
  });

  test("setUsed and removePeer answer whether the peer was there; databases are separate", () => {
    const db = new PeersDbs(2, 4, 4, 100);
    db.addPeer(0, 1, 0);
    db.addPeer(1, 0, 0);
    assert.equal(db.setUsed(0, 1, 1), true);
    assert.equal(db.setUsed(0, 7, 1), false);
    assert.equal(usedOf(db, 1, 0), 0);
    assert.equal(db.removePeer(0, 1), true);
    assert.equal(db.removePeer(0, 1), false);
    assert.equal(db.count(0), 0);
    assert.equal(db.count(1), 1);
    const copy = db.clone();
    copy.removePeer(1, 0);
    assert.equal(db.count(1), 1, "a clone is independent");
  });
});
