import assert from "node:assert/strict";
import Database from "better-sqlite3";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { RegistryDb } from "../lib/registry/db";
import { Mailer } from "../lib/registry/mail";
import { Registry, RpcFault, dispatch } from "../lib/registry/service";
import { loadCa } from "../lib/utils/cert";
import { silentLogger } from "../lib/utils/log";
import { RawXml, parseMethodResponse, serializeResponse } from "../lib/xmlrpc";
import { makeCa, makeCsr } from "../harness/pki";

const dir = mkdtempSync(join(tmpdir(), "vifibnet-service-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const ca48 = makeCa("2001:db8:42::/48");
const goodCsr = makeCsr();

class FakeMailer implements Mailer {
  sent: Array<{ email: string; token: string }> = [];
  attempted: string[] = [];
  failWith: string | null = null;
  async sendToken(email: string, token: string): Promise<void> {
    this.attempted.push(token);
    if (this.failWith) throw new Error(this.failWith);
    this.sent.push({ email, token });
  }
}

let dbCount = 0;
function setup(ca = ca48, start = 1_800_000_000) {
  const db = new RegistryDb(join(dir, `r${dbCount++}.db`));
  const mailer = new FakeMailer();
  const clock = { now: start };
  const registry = new Registry({ db, ca: loadCa(ca.pem, ca.keyPem), mailer, log: silentLogger, now: () => clock.now });
  return { db, mailer, clock, registry };
}

async function token(r: ReturnType<typeof setup>, email = "alice@example.com"): Promise<string> {
  assert.equal(await r.registry.requestToken(email), null);
  return r.mailer.sent.at(-1)!.token;
}

function rejectsWith(fn: () => unknown, pyClass: string, message: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof RpcFault && e.pythonClass === pyClass && message.test(e.message));
}

test("tokens are 8 distinct lowercase letters, stored with length 16", async () => {
  const r = setup();
  const t = await token(r);
  assert.match(t, /^[a-z]{8}$/);
  assert.equal(new Set(t).size, 8);
  assert.deepEqual(r.db.getToken(t), { token: t, email: "alice@example.com", prefix_len: 16, date: 1_800_000_000 });
  await assert.rejects(r.registry.requestToken("not an address"), /not an email address/);
});

test("certificates: CN prefix/16 in order, CA issuer, SHA-256, 365 days, verified", async () => {
  const r = setup();
  const caCert = new X509Certificate(ca48.pem);
  const serials = new Set<string>();
  for (const [i, cn] of ["0/16", "1/16", "2/16"].entries()) {
    const t = await token(r);
    const pem = r.registry.requestCertificate(t, goodCsr.csr);
    const cert = new X509Certificate(pem);
    assert.equal(cert.subject, `C=FR\nO=Nexedi\nCN=${cn}`, `certificate ${i}`);
    assert.equal(cert.issuer, caCert.subject);
    assert.ok(cert.verify(caCert.publicKey));
    assert.equal(Date.parse(cert.validTo) - Date.parse(cert.validFrom), 365 * 86_400_000);
    assert.equal(r.db.getToken(t), undefined, "token consumed");
    serials.add(cert.serialNumber);
  }
  assert.equal(serials.size, 3, "every certificate has its own serial");
});

test("a bad request leaves the token usable", async () => {
  const r = setup();
  const t = await token(r);
  rejectsWith(() => r.registry.requestCertificate(t, "garbage"), "ValueError", /not a PEM certificate request/);
  rejectsWith(() => r.registry.requestCertificate(t, makeCsr({ bits: 1024 }).csr), "ValueError", /1024 bits; at least 2048/);
  rejectsWith(() => r.registry.requestCertificate(t, makeCsr({ tamper: true }).csr), "ValueError", /signature does not match/);
  assert.ok(r.db.getToken(t));
  assert.ok(r.registry.requestCertificate(t, goodCsr.csr).startsWith("-----BEGIN CERTIFICATE-----"));
  rejectsWith(() => r.registry.requestCertificate(t, goodCsr.csr), "LookupError", /unknown or already used token/);
});

test("an unreachable mail host faults and leaves no token behind", async () => {
  const r = setup();
  r.mailer.failWith = "connect ECONNREFUSED 127.0.0.1:1";
  await assert.rejects(r.registry.requestToken("bob@example.com"), (e: unknown) =>
    e instanceof RpcFault && /could not mail the token to bob@example.com: connect ECONNREFUSED/.test(e.message));
  assert.equal(r.mailer.attempted.length, 1);
  assert.equal(r.db.getToken(r.mailer.attempted[0]!), undefined, "the unsent token is deleted");
  r.mailer.failWith = null;
  const t = await token(r, "bob@example.com");
  assert.ok(r.db.getToken(t));
});

test("an exhausted prefix space faults and keeps the token", async () => {
  const r = setup();
  r.registry.requestCertificate(await token(r), goodCsr.csr);
  // Filling 65,535 more prefixes takes minutes: mark every free one taken instead.
  const raw = new Database(join(dir, `r${dbCount - 1}.db`));
  raw.prepare("UPDATE vpn SET email = 'x', cert = 'x' WHERE cert IS NULL").run();
  raw.close();
  const t = await token(r);
  rejectsWith(() => r.registry.requestCertificate(t, goodCsr.csr), "RuntimeError", /no free \/16 prefix/);
  assert.ok(r.db.getToken(t));
});

test("declare stores well-formed lists of nodes inside the network only", async () => {
  const r = setup();
  r.registry.requestCertificate(await token(r), goodCsr.csr);
  r.registry.requestCertificate(await token(r), goodCsr.csr);
  assert.equal(r.registry.declare("2001:db8:42:1::", "198.51.100.1,1194,udp"), true);
  assert.equal(r.registry.declare("2001:db8:42:1::", "198.51.100.1,1194,udp,--up"), false);
  assert.equal(r.registry.declare("2001:db8:43:1::", "198.51.100.1,1194,udp"), false);
  assert.equal(r.registry.declare("198.51.100.1", "198.51.100.1,1194,udp"), false);
  assert.deepEqual(r.db.allPeers(), [{ prefix: "0000000000000001", address: "198.51.100.1,1194,udp" }]);
  assert.equal(r.registry.declare("2001:db8:42:1:0:0:0:0", "198.51.100.9,443,tcp-client"), true);
  assert.deepEqual(r.registry.getPeerList(10, "2001:db8:42::"), [["0000000000000001", "198.51.100.9,443,tcp-client"]]);
  assert.deepEqual(r.registry.getBootstrapPeer(), ["0000000000000001", "198.51.100.9,443,tcp-client"]);
});

test("getPeerList checks n and the caller, and never lists expired peers", () => {
  const r = setup();
  rejectsWith(() => r.registry.getBootstrapPeer(), "LookupError", /no peer/);
  rejectsWith(() => r.registry.getPeerList(0, "2001:db8:42::"), "AssertionError", /between 1 and 999/);
  rejectsWith(() => r.registry.getPeerList(1000, "2001:db8:42::"), "AssertionError", /between 1 and 999/);
  rejectsWith(() => r.registry.getPeerList(5, "2001:db8:43::"), "AssertionError", /not an address inside/);
  r.registry.declare("2001:db8:42::", "198.51.100.1,1194,udp");
  r.clock.now += 86_399;
  assert.equal(r.registry.getPeerList(5, "2001:db8:42::").length, 1);
  r.clock.now += 1;
  assert.equal(r.registry.getPeerList(5, "2001:db8:42::").length, 1, "no purge within 600 s of the last one");
  r.clock.now += 600;
  assert.equal(r.registry.getPeerList(5, "2001:db8:42::").length, 0);
  assert.deepEqual(r.db.allPeers(), [], "purged from the file too");
});

test("dispatch rejects unknown methods, wrong arity and wrong types as Python would", async () => {
  const r = setup();
  const fault = (method: string, params: Parameters<typeof dispatch>[2], pyClass: string, message: RegExp) =>
    assert.rejects(async () => dispatch(r.registry, method, params), (e: unknown) => e instanceof RpcFault && e.pythonClass === pyClass && message.test(e.message));
  await fault("nope", [], "Exception", /method "nope" is not supported/);
  await fault("getCa", [1], "TypeError", /takes 0 argument/);
  await fault("getPeerList", ["x", "2001:db8:42::"], "TypeError", /argument 1 must be an int/);
  await fault("getPeerList", [1.5, "2001:db8:42::"], "TypeError", /argument 1 must be an int/);
  await fault("declare", ["2001:db8:42::", "198.51.100.1,1194,udp"], "TypeError", /takes 1 argument/);
  await fault("declare", [["2001:db8:42::"]], "TypeError", /array \[node_ip, address_list\]/);
  await fault("requestCertificate", ["abc", 5], "TypeError", /argument 2 must be a string/);
  assert.equal(await dispatch(r.registry, "getCa", []), ca48.pem);
  assert.equal(await dispatch(r.registry, "declare", [["2001:db8:42::", "198.51.100.1,1194,udp"]]), true);
  const list = dispatch(r.registry, "getPeerList", [5, "2001:db8:42::"]);
  assert.ok(list instanceof RawXml);
  assert.deepEqual(parseMethodResponse(serializeResponse(list)), { result: [["", "198.51.100.1,1194,udp"]] }, "the root row owns the address: nothing is allocated yet");
});

test("non-ASCII subjects are copied, not re-encoded", async () => {
  const ca = makeCa("2001:db8:42::/48", "Autorité de test");
  const r = setup(ca);
  const csr = makeCsr({ subject: [{ shortName: "O", value: "Vifib Société" }, { shortName: "CN", value: "n" }] });
  const cert = new X509Certificate(r.registry.requestCertificate(await token(r), csr.csr));
  assert.equal(cert.subject, "O=Vifib Société\nCN=0/16");
  assert.match(cert.issuer, /CN=Autorité de test/);
  assert.ok(cert.checkIssued(new X509Certificate(ca.pem)));
});

test("stored peers with malformed address lists are never handed out", () => {
  const path = join(dir, "legacy-peers.db");
  new RegistryDb(path).close();
  const raw = new Database(path);
  raw.prepare("INSERT INTO peers (prefix, address) VALUES (?, ?), (?, ?)").run("0000000000000001", "192.0.2.4,1194,udp,--up,/bin/sh", "0000000000000010", "192.0.2.5,1194,udp");
  raw.close();
  const db = new RegistryDb(path);
  const registry = new Registry({ db, ca: loadCa(ca48.pem, ca48.keyPem), mailer: new FakeMailer(), log: silentLogger });
  assert.deepEqual(registry.getPeerList(10, "2001:db8:42::"), [["0000000000000010", "192.0.2.5,1194,udp"]]);
  db.close();
});
