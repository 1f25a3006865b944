// Revocation as a node enforces it (lib/daemon/revocations.ts), with a fake
// registry that signs its lists with a real CA key (lib/revocation.ts) and a
// state directory in /tmp: which list replaces the kept one and what it
// changes (peers.db, client tunnels, the servers' connected peers, the
// hook's file), a tampered or foreign list refused, a legacy registry
// changing nothing, the list kept across a restart.

import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { REVOCATION_FILE, REVOKED_CN_FILE, Revocations, compareLists, othersCannotRead } from "../lib/daemon/revocations";
import type { RpcCaller } from "../lib/peers-refresh";
import { RevocationList, RevokedPrefix, signRevocationList } from "../lib/revocation";
import { parseIpv6Prefix, prefixToCn, serialFromNetwork } from "../lib/utils/address";
import { createCaCertificate } from "../lib/utils/cert";
import { createLogger } from "../lib/utils/log";
import { XmlRpcFault } from "../lib/xmlrpc";

const tmp = mkdtempSync(join(tmpdir(), "vfb-revocations-"));
chmodSync(tmp, 0o755);
after(() => rmSync(tmp, { recursive: true, force: true }));

const p = (n: number): string => n.toString(2).padStart(16, "0");
const OWN = p(5);
const T0 = Date.parse("2026-12-01T10:00:00Z");
const caKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
const CA = createCaCertificate(caKey, serialFromNetwork(parseIpv6Prefix("2001:db8:42::/48")!), [{ name: "CN", value: "test CA" }], new Date(T0 - 86_400_000), 3650);

const entry = (n: number, reason: string | null = null): RevokedPrefix => ({ prefix: p(n), cn: prefixToCn(p(n)), since: T0 / 1000 - 60, reason });
const list = (issued: number, ...ns: number[]): RevocationList => ({ version: 1, issued, revoked: ns.map((n) => entry(n)) });
const ISSUED = T0 / 1000;

describe("which list holds", () => {
  test("a later list replaces the kept one; an earlier never does; within one second, only one that revokes more", () => {
    assert.deepEqual(compareLists(null, list(ISSUED, 7)), { use: true, added: [entry(7)], removed: [] });
    const kept = list(ISSUED, 7, 8);
    assert.deepEqual(compareLists(kept, list(ISSUED + 1, 8, 9)), { use: true, added: [entry(9)], removed: [entry(7)] }, "unrevoked later: undone");
    assert.deepEqual(compareLists(kept, list(ISSUED - 1, 8)), { use: false, why: "older" }, "a replayed earlier list undoes nothing");
    assert.deepEqual(compareLists(kept, list(ISSUED - 1, 7, 8, 9)), { use: false, why: "older" });
    assert.deepEqual(compareLists(kept, list(ISSUED, 7, 8)), { use: false, why: "same" });
    assert.deepEqual(compareLists(kept, list(ISSUED, 7, 8, 9)), { use: true, added: [entry(9)], removed: [] });
    assert.deepEqual(compareLists(kept, list(ISSUED, 8)), { use: false, why: "older" });
  });

  test("whether nobody (the servers' hook) can read the file", () => {
    const dir = join(tmp, "closed");
    mkdirSync(dir, { mode: 0o700 });
    chmodSync(dir, 0o700);
    writeFileSync(join(dir, "f"), "");
    assert.match(othersCannotRead(join(dir, "f"))!, /^others may not enter .*closed \(chmod o\+x /);
    const open = join(tmp, "open");
    mkdirSync(open, { mode: 0o755 });
    chmodSync(open, 0o755);
    writeFileSync(join(open, "f"), "", { mode: 0o600 });
    chmodSync(join(open, "f"), 0o600);
    assert.match(othersCannotRead(join(open, "f"))!, /^others may not read /);
    chmodSync(join(open, "f"), 0o644);
    assert.equal(othersCannotRead(join(open, "f")), null);
  });
});

let dirs = 0;
function node(lines: string[]) {
  const dir = join(tmp, `state-${dirs++}`);
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, "ca.pem"), CA);
  const done: string[] = [];
  const now = T0;
  const make = (): Revocations => new Revocations(dir, {
    caPath: join(dir, "ca.pem"), ownPrefix: OWN, now: () => now, logger: createLogger(2, (l) => lines.push(l)),
    removePeers: (l) => void done.push(`remove ${l.map((x) => parseInt(x, 2)).join(" ")}`),
    closeTunnels: () => void done.push("close tunnels"),
    dropConnected: async (cns) => void done.push(`drop ${cns.join(" ")}`),
  });
  return { dir, done, make };
}

const serving = (answer: () => unknown): RpcCaller => ({
  async call() {
    const a = answer();
    if (a instanceof Error) throw a;
    return a;
  },
});
const signed = (l: RevocationList) => signRevocationList(l, caKey);

describe("the daemon's revocations", () => {
  test("a new list: kept, the hook's file written, the peers gone from peers.db, their tunnels closed, their connections dropped", async () => {
    const lines: string[] = [];
    const n = node(lines);
    const r = n.make();
    r.load();
    assert.equal(readFileSync(join(n.dir, REVOKED_CN_FILE), "utf8"), "", "an empty file for the hook from the start");
    await r.check(serving(() => signed({ version: 1, issued: ISSUED, revoked: [entry(7, "lost laptop"), entry(300)] })));
    assert.deepEqual([...r.revoked()], [p(7), p(300)]);
    assert.equal(readFileSync(join(n.dir, REVOKED_CN_FILE), "utf8"), "7/16\n300/16\n");
    assert.equal(othersCannotRead(join(n.dir, REVOKED_CN_FILE)), null, "nobody can read it");
    assert.deepEqual(n.done, ["remove 7 300", "close tunnels", "drop 7/16 300/16"]);
    assert.ok(lines.some((l) => /7\/16 is revoked \(lost laptop\): no tunnel with it from now on/.test(l)));
    assert.deepEqual([r.status().issued, r.status().fetched, r.status().lastError], [T0, T0, null]);
    // The same list again: nothing to do.
    await r.check(serving(() => signed({ version: 1, issued: ISSUED, revoked: [entry(7, "lost laptop"), entry(300)] })));
    assert.equal(n.done.length, 3);
  });

  test("a tampered list, or one signed by another CA: refused, said once, the kept list holds", async () => {
    const lines: string[] = [];
    const n = node(lines);
    const r = n.make();
    r.load();
    await r.check(serving(() => signed(list(ISSUED, 7))));
    const good = signed(list(ISSUED + 10, 7, 8));
    const tampered = { ...good, list: good.list.replace(`"${p(8)}"`, `"${p(9)}"`).replace('"8/16"', '"9/16"') };
    await r.check(serving(() => tampered));
    await r.check(serving(() => tampered));
    const otherKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    await r.check(serving(() => signRevocationList(list(ISSUED + 20), otherKey)));
    assert.deepEqual([...r.revoked()], [p(7)], "still the first list");
    assert.equal(lines.filter((l) => /WARNING: the revocation list's signature is not the network CA's/.test(l)).length, 1, "said once while it lasts");
    assert.match(r.status().lastError!.message, /signature is not the network CA's/);
    assert.deepEqual(n.done, ["remove 7", "close tunnels", "drop 7/16"]);
  });

  test("an older list does not replace the kept one; a later one undoes a revocation", async () => {
    const n = node([]);
    const r = n.make();
    r.load();
    await r.check(serving(() => signed(list(ISSUED, 7, 8))));
    await r.check(serving(() => signed(list(ISSUED - 100))));
    assert.deepEqual([...r.revoked()], [p(7), p(8)]);
    await r.check(serving(() => signed(list(ISSUED + 100, 8))));
    assert.deepEqual([...r.revoked()], [p(8)]);
    assert.equal(readFileSync(join(n.dir, REVOKED_CN_FILE), "utf8"), "8/16\n");
  });

  test("a legacy registry or an unreachable one: the kept list holds, nothing said beyond one line", async () => {
    const lines: string[] = [];
    const n = node(lines);
    const r = n.make();
    r.load();
    await r.check(serving(() => signed(list(ISSUED, 7))));
    const before = lines.length;
    for (let i = 0; i < 3; i++) await r.check(serving(() => new XmlRpcFault("getRevocationList", 1, `<class 'Exception'>:method "getRevocationList" is not supported`)));
    await r.check(serving(() => new Error("getRevocationList: cannot reach the registry")));
    assert.deepEqual([...r.revoked()], [p(7)]);
    assert.equal(lines.slice(before).filter((l) => /legacy registry/.test(l)).length, 1);
    assert.ok(!lines.some((l) => /WARNING/.test(l)));
  });

  test("kept across a restart, checked again against ca.pem; a list file changed on disk is not believed", async () => {
    const n = node([]);
    const first = n.make();
    first.load();
    await first.check(serving(() => signed(list(ISSUED, 7, 9))));
    const again = n.make();
    again.load();
    assert.deepEqual([...again.revoked()], [p(7), p(9)], "after a restart, without the registry");
    // Someone edits the kept list to unrevoke 7/16: the signature no longer holds.
    const file = join(n.dir, REVOCATION_FILE);
    const kept = JSON.parse(readFileSync(file, "utf8")) as { list: string; signature: string };
    writeFileSync(file, JSON.stringify({ ...kept, list: kept.list.replace(/\{"prefix":"0000000000000111"[^}]*\},?/, "") }));
    const lines: string[] = [];
    const edited = node(lines);
    writeFileSync(join(edited.dir, REVOCATION_FILE), readFileSync(file));
    const third = edited.make();
    third.load();
    assert.deepEqual([...third.revoked()], []);
    assert.ok(lines.some((l) => /WARNING: .*vifibnet\.revocation\.json: the revocation list's signature is not the network CA's/.test(l)));
    assert.equal(existsSync(join(edited.dir, REVOKED_CN_FILE)), true);
  });

  test("our own prefix revoked: a warning", async () => {
    const lines: string[] = [];
    const n = node(lines);
    const r = n.make();
    r.load();
    await r.check(serving(() => signed({ version: 1, issued: ISSUED, revoked: [entry(5, "compromised")] })));
    assert.ok(lines.some((l) => /WARNING: this node's own prefix 5\/16 is revoked \(compromised\)/.test(l)));
  });
});
