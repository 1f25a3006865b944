import assert from "node:assert/strict";
import { test } from "node:test";
import { PeerSet } from "../lib/registry/peers";
import { RawXml, serializeResponse } from "../lib/xmlrpc";

const rows = (n: number) => Array.from({ length: n }, (_, i) => ({ prefix: i.toString(2).padStart(16, "0"), address: `198.51.100.${i % 250},1194,udp` }));

test("sample gives distinct peers, at most n, all of them when fewer", () => {
  const set = new PeerSet(rows(100));
  const s = set.sample(50);
  assert.equal(s.length, 50);
  assert.equal(new Set(s.map((p) => p[0])).size, 50);
  assert.equal(set.sample(500).length, 100);
  assert.equal(new PeerSet().sample(5).length, 0);
});

test("sample is uniform enough: every peer shows up", () => {
  const set = new PeerSet(rows(20));
  const seen = new Map<string, number>();
  for (let i = 0; i < 2000; i++) for (const [p] of set.sample(3)) seen.set(p, (seen.get(p) ?? 0) + 1);
  assert.equal(seen.size, 20);
  for (const count of seen.values()) assert.ok(count > 150 && count < 450, `count ${count} far from 300`);
});

test("set replaces, delete keeps the index consistent", () => {
  const set = new PeerSet(rows(3));
  set.set("0000000000000001", "203.0.113.1,1194,udp");
  assert.equal(set.size, 3);
  set.delete("0000000000000000");
  set.delete("nope");
  assert.equal(set.size, 2);
  const all = new Map(set.sample(10));
  assert.deepEqual([...all.keys()].sort(), ["0000000000000001", "0000000000000010"]);
  assert.equal(all.get("0000000000000001"), "203.0.113.1,1194,udp");
  set.delete("0000000000000010");
  set.delete("0000000000000001");
  assert.equal(set.sample(5).length, 0);
});

test("sampleXml is sample serialized as Python would", () => {
  const set = new PeerSet(rows(30));
  const seq = [7, 3, 11, 5, 2, 9, 1, 4, 8, 6, 0, 10];
  const seeded = () => { let k = 0; return (n: number) => seq[k++ % seq.length]! % n; };
  const xml = set.sampleXml(10, seeded()).xml;
  assert.equal(serializeResponse(new RawXml(xml)), serializeResponse(set.sample(10, seeded())));
  assert.equal(new PeerSet().sampleXml(5).xml, "<value><array><data>\n</data></array></value>\n");
});
