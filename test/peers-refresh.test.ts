// The peers DB refresh against a fake registry: declare then getPeerList,
// retry in 30 s when the registry is down, never throw.

import assert from "node:assert/strict";
import { KeyObject, generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import forge from "node-forge";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { PeersDb } from "../lib/db";
import { verifyDeclaration } from "../lib/declaration";
import {
  PEER_LIST_SIZE, PeersRefreshDeps, PeersRefreshResult, REGISTRY_RETRY_S, RpcCaller, peerListItems, refreshPeers, runPeersRefresh,
} from "../lib/peers-refresh";
import { RpcTransportError } from "../lib/rpc-client";
import { XmlRpcFault, type XmlRpcValue } from "../lib/xmlrpc";
import { ManualTimers, settle } from "./helpers/manual-timers";
import type { Logger } from "../lib/utils/log";

const tmp = mkdtempSync(join(tmpdir(), "vifibnet-peers-refresh-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
let seq = 0;
const p = (n: number): string => n.toString(2).padStart(16, "0");
const OWN = p(5);
const NODE_IP = "2001:db8:42:5::";
const NOW = 1_700_000_000_000;

/** A registry stand-in: answers per method, records the calls. */
class FakeRegistry implements RpcCaller {
  calls: Array<[string, readonly XmlRpcValue[]]> = [];
  constructor(private readonly answers: Record<string, (params: readonly XmlRpcValue[]) => unknown>) {}
  async call(method: string, params: readonly XmlRpcValue[]): Promise<unknown> {
    this.calls.push([method, params]);
    const answer = this.answers[method];
    if (!answer) throw new XmlRpcFault(method, 1, `<class 'Exception'>:method "${method}" is not supported`);
    return answer(params);
  }
}
const down = (): never => { throw new RpcTransportError("cannot reach the registry at http://[2001:db8:42::1]:9000/RPC2: connection refused"); };

/** A certificate for `publicKey`, to check signatures as the registry does. */
function selfSigned(privateKey: KeyObject, publicKey: KeyObject): string {
  const c = forge.pki.createCertificate();
  c.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: "spki", format: "pem" }).toString());
  c.serialNumber = "01";
  c.validity.notBefore = new Date();
  c.validity.notAfter = new Date(Date.now() + 86_400_000);
  c.setSubject([{ shortName: "CN", value: "5/16" }]);
  c.setIssuer([{ shortName: "CN", value: "5/16" }]);
  c.sign(forge.pki.privateKeyFromPem(privateKey.export({ type: "pkcs1", format: "pem" }).toString()), forge.md.sha256.create());
  return forge.pki.certificateToPem(c);
}

function recorder(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { verbose: 5, lines, log: (_l, m) => lines.push(m), warn: (m) => lines.push(`WARNING: ${m}`) };
}

function setup(rpc: RpcCaller, extra: Partial<PeersRefreshDeps> = {}): { deps: PeersRefreshDeps; db: PeersDb; logger: ReturnType<typeof recorder> } {
  const db = PeersDb.open(join(tmp, `peers-${++seq}.db`), { create: true });
  after(() => db.close());
  const logger = recorder();
  const deps: PeersRefreshDeps = {
    rpc, db, nodeIp: NODE_IP, ownPrefix: OWN, address: "198.51.100.5,1194,udp", refreshInterval: 3600, now: () => NOW, logger, ...extra,
  };
  return { deps, db, logger };
}

test("ok: declares our address, fetches 200 peers into peers.db, next refresh in --peers-db-refresh", async () => {
  const rpc = new FakeRegistry({
    declare: () => true,
    getPeerList: () => [[p(1), "198.51.100.1,1194,udp"], [p(2), "198.51.100.2,443,tcp-server"], [OWN, "198.51.100.5,1194,udp"]],
  });
  const { deps, db } = setup(rpc);
  const r = await refreshPeers(deps);
  assert.deepEqual(rpc.calls, [["declare", [[NODE_IP, "198.51.100.5,1194,udp"]]], ["getPeerList", [PEER_LIST_SIZE, NODE_IP]]]);
  assert.equal(PEER_LIST_SIZE, 200);
  assert.deepEqual(r, { ok: true, declared: true, delayS: 3600, nextAt: NOW + 3600_000, populate: { added: 2, updated: 0, skipped: 1, dropped: 0 }, error: null });
  assert.deepEqual(db.peers().map((x) => x.prefix), [p(1), p(2)]);
});

test("registry down: retry in 30 s, peers.db untouched, no throw", async () => {
  const { deps, db, logger } = setup(new FakeRegistry({ declare: down, getPeerList: down }));
  db.addPeer(p(1), "198.51.100.1,1194,udp");
  const r = await refreshPeers(deps);
  assert.equal(REGISTRY_RETRY_S, 30);
  assert.deepEqual(r, {
    ok: false, declared: null, delayS: 30, nextAt: NOW + 30_000, populate: null,
    error: "cannot reach the registry at http://[2001:db8:42::1]:9000/RPC2: connection refused",
  });
  assert.equal((deps.rpc as FakeRegistry).calls.length, 1, "an unreachable registry is not asked twice in a round");
  assert.equal(db.peers().length, 1);
  assert.ok(logger.lines.some((l) => /WARNING: cannot refresh the peers DB: .*connection refused; retrying in 30 s/.test(l)), logger.lines.join("\n"));
});

test("unknown address: no declare, the peer list is still fetched", async () => {
  const rpc = new FakeRegistry({ getPeerList: () => [[p(1), "198.51.100.1,1194,udp"]] });
  const { deps } = setup(rpc, { address: null });
  const r = await refreshPeers(deps);
  assert.deepEqual(rpc.calls.map((c) => c[0]), ["getPeerList"]);
  assert.equal(r.ok, true);
  assert.equal(r.declared, null);
});

test("a refused declaration (fault or false) is logged; the list is still fetched", async () => {
  for (const declare of [() => false, () => { throw new XmlRpcFault("declare", 1, "<class 'ValueError'>:bad address list"); }]) {
    const rpc = new FakeRegistry({ declare, getPeerList: () => [] });
    const { deps, logger } = setup(rpc);
    const r = await refreshPeers(deps);
    assert.deepEqual(rpc.calls.map((c) => c[0]), ["declare", "getPeerList"]);
    assert.equal(r.ok, true);
    assert.equal(r.delayS, 3600);
    assert.ok(logger.lines.some((l) => l.startsWith("WARNING:")), logger.lines.join("\n"));
    assert.match(r.error ?? "", /declaration|cannot declare ourselves: the registry refused declare: bad address list/, "the round says why (vifibnet status shows it)");
  }
});

test("with our key: a signed declaration when the registry offers it, the legacy declare when it does not", async () => {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const signedOk = new FakeRegistry({ declareSigned: () => true, getPeerList: () => [] });
  const a = await refreshPeers(setup(signedOk, { key: privateKey }).deps);
  assert.deepEqual(signedOk.calls.map((c) => c[0]), ["declareSigned", "getPeerList"]);
  assert.equal(a.declared, true);
  const [ip, list, time, sig] = signedOk.calls[0]![1] as [string, string, string, Buffer];
  assert.deepEqual([ip, list, time], [NODE_IP, "198.51.100.5,1194,udp", String(NOW)]);
  const cert = selfSigned(privateKey, publicKey);
  assert.ok(verifyDeclaration({ nodeIp: ip, addressList: list, time }, sig, cert), "signed with our key");
  assert.ok(!verifyDeclaration({ nodeIp: ip, addressList: "198.51.100.66,1194,udp", time }, sig, cert));

  // A legacy registry: the unknown method is a fault, and the legacy declare follows, quietly.
  const legacy = new FakeRegistry({ declare: () => true, getPeerList: () => [] });
  const { deps, logger } = setup(legacy, { key: privateKey });
  const b = await refreshPeers(deps);
  assert.deepEqual(legacy.calls.map((c) => c[0]), ["declareSigned", "declare", "getPeerList"]);
  assert.equal(b.declared, true);
  assert.ok(!logger.lines.some((l) => l.startsWith("WARNING:")), logger.lines.join("\n"));

  // A refused signature (another certificate in the registry?): said, then the legacy declare.
  const refusing = new FakeRegistry({
    declareSigned: () => { throw new XmlRpcFault("declareSigned", 1, "<class 'PermissionError'>:the signature is not made with the key"); },
    declare: () => false, getPeerList: () => [],
  });
  const c = setup(refusing, { key: privateKey });
  assert.equal((await refreshPeers(c.deps)).declared, false);
  assert.ok(c.logger.lines.some((l) => /WARNING: our signed declaration was refused .*not made with the key/.test(l)), c.logger.lines.join("\n"));

  // Unreachable while declaring signed: retry in 30 s, nothing else asked.
  const gone = new FakeRegistry({ declareSigned: down, declare: () => true, getPeerList: () => [] });
  assert.equal((await refreshPeers(setup(gone, { key: privateKey }).deps)).delayS, 30);
  assert.deepEqual(gone.calls.map((c) => c[0]), ["declareSigned"]);
});

test("getPeerList failing or answering nonsense: retry in 30 s; bad items are skipped", async () => {
  const fault = new FakeRegistry({ declare: () => true, getPeerList: () => { throw new XmlRpcFault("getPeerList", 1, "<class 'ValueError'>:n"); } });
  const a = await refreshPeers(setup(fault).deps);
  assert.deepEqual([a.ok, a.declared, a.delayS], [false, true, 30]);
  const notList = await refreshPeers(setup(new FakeRegistry({ declare: () => true, getPeerList: () => "nope" })).deps);
  assert.deepEqual([notList.ok, notList.delayS], [false, 30]);
  const mixed = new FakeRegistry({ getPeerList: () => [[p(1), "198.51.100.1,1194,udp"], [p(2)], "x", [p(3), 7], [p(4), "--up,x,udp"]] });
  const { deps, db } = setup(mixed, { address: null });
  const r = await refreshPeers(deps);
  assert.deepEqual(r.populate, { added: 1, updated: 0, skipped: 4, dropped: 0 });
  assert.deepEqual(db.peers().map((x) => x.prefix), [p(1)]);
  assert.deepEqual(peerListItems({}), null);
});

test("LAN peers are not stored; list size and bound are passed through", async () => {
  const rpc = new FakeRegistry({ getPeerList: () => [[p(1), "198.51.100.1,1194,udp"], [p(2), "198.51.100.2,1194,udp"], [p(3), "198.51.100.3,1194,udp"]] });
  const { deps, db } = setup(rpc, { address: null, lan: [p(2)], listSize: 50, maxSize: 1 });
  const r = await refreshPeers(deps);
  assert.deepEqual(rpc.calls[0], ["getPeerList", [50, NODE_IP]]);
  assert.equal(r.populate!.dropped, 1);
  assert.equal(db.peers().length, 1);
  assert.notEqual(db.peers()[0]!.prefix, p(2));
});

test("a failing peers.db means a retry, not a crash", async () => {
  const rpc = new FakeRegistry({ getPeerList: () => [] });
  const { deps } = setup(rpc, { address: null, db: { populate: () => { throw new Error("database is locked"); } } });
  const r = await refreshPeers(deps);
  assert.deepEqual([r.ok, r.delayS], [false, 30]);
});

test("the loop schedules each round after the delay the previous one returned, and stops", async () => {
  let registryUp = false;
  const rpc = new FakeRegistry({ getPeerList: () => (registryUp ? [] : down()) });
  const { deps } = setup(rpc, { address: null, refreshInterval: 600 });
  const timers = new ManualTimers();
  const rounds: PeersRefreshResult[] = [];
  let roundDone: () => void = () => {};
  const next = (): Promise<void> => new Promise((resolve) => { roundDone = resolve; });
  let wait = next();
  const stop = runPeersRefresh(() => deps, timers, (r) => { rounds.push(r); roundDone(); });
  await wait;
  await settle();
  assert.deepEqual(timers.delays(), [30_000], "registry down: next round in 30 s");
  registryUp = true;
  wait = next();
  timers.fireNext();
  await wait;
  await settle();
  assert.deepEqual(timers.delays(), [600_000], "registry back: next round in --peers-db-refresh");
  assert.deepEqual(rounds.map((r) => r.ok), [false, true]);
  stop();
  assert.deepEqual(timers.delays(), [], "stopped: nothing pending");
});
