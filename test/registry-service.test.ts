import assert from "node:assert/strict";
import Database from "better-sqlite3";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { RegistryDb } from "../lib/registry/db";
import { Mailer } from "../lib/registry/mail";
import { declareSignedParams } from "../lib/declaration";
import { RpcFault } from "../lib/registry/call";
import { RETRY_WINDOW } from "../lib/registry/enrolment";
import { dispatch } from "../lib/registry/methods";
import { Registry } from "../lib/registry/service";
import { StrictModes } from "../lib/registry/strict";
import { loadCa } from "../lib/utils/cert";
import { silentLogger } from "../lib/utils/log";
import { RawXml, parseMethodResponse, serializeResponse } from "../lib/xmlrpc";
import { bigOdd, makeCa, makeCsr, rawCsr } from "../harness/pki";

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
function setup(ca = ca48, start = 1_800_000_000, strict: StrictModes = {}) {
  const db = new RegistryDb(join(dir, `r${dbCount++}.db`));
  const mailer = new FakeMailer();
  const clock = { now: start };
  const registry = new Registry({ db, ca: loadCa(ca.pem, ca.keyPem), mailer, log: silentLogger, now: () => clock.now, strict });
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
  const first = { address: "192.0.2.1", connection: 1 };
  const cert = r.registry.requestCertificate(t, goodCsr.csr, first);
  assert.ok(cert.startsWith("-----BEGIN CERTIFICATE-----"));
  rejectsWith(() => r.registry.requestCertificate(t, goodCsr.csr, first), "LookupError", /unknown or already used token/);
});

test("a retried request (same token, same key, another connection, within minutes) gets the certificate already issued", async () => {
  const r = setup();
  const t = await token(r);
  const cert = r.registry.requestCertificate(t, goodCsr.csr, { address: "192.0.2.1", connection: 1 });
  // The reply was lost: the client asks again on a new connection.
  assert.equal(r.registry.requestCertificate(t, goodCsr.csr, { address: "192.0.2.1", connection: 2 }), cert);
  rejectsWith(() => r.registry.requestCertificate(t, makeCsr().csr, { address: "192.0.2.1", connection: 3 }), "LookupError", /unknown or already used token/);
  r.clock.now += RETRY_WINDOW + 1;
  rejectsWith(() => r.registry.requestCertificate(t, goodCsr.csr, { address: "192.0.2.1", connection: 4 }), "LookupError", /unknown or already used token/);
  assert.equal(r.db.allocations().length, 1, "one prefix allocated, whatever the retries");
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

test("stored peers with malformed or unreachable address lists are never handed out", () => {
  const path = join(dir, "legacy-peers.db");
  new RegistryDb(path).close();
  const raw = new Database(path);
  raw.prepare("INSERT INTO peers (prefix, address) VALUES (?, ?), (?, ?), (?, ?)").run("0000000000000001", "192.0.2.4,1194,udp,--up,/bin/sh",
    "0000000000000010", "192.0.2.5,1194,udp", "0000000000000011", "127.0.0.1,22,tcp-client");
  raw.close();
  const db = new RegistryDb(path);
  const registry = new Registry({ db, ca: loadCa(ca48.pem, ca48.keyPem), mailer: new FakeMailer(), log: silentLogger });
  assert.deepEqual(registry.getPeerList(10, "2001:db8:42::"), [["0000000000000010", "192.0.2.5,1194,udp"]]);
  db.close();
});

// ---- Hostile requests (issue 9) ----

const OID = { C: "2.5.4.6", O: "2.5.4.10", CN: "2.5.4.3", title: "2.5.4.12" };
const UTF8 = 0x0c, PRINTABLE = 0x13, INTEGER = 0x02;
const attr = (oid: string, tag: number, value: string | Buffer) => ({ oid, tag, bytes: Buffer.isBuffer(value) ? value : Buffer.from(value) });
const cnsOf = (pem: string): string[] => new X509Certificate(pem).subject.split("\n").filter((l) => l.startsWith("CN="));

test("the token is looked up before the request is even parsed", async () => {
  const r = setup();
  rejectsWith(() => r.registry.requestCertificate("abcdefgh", "garbage"), "LookupError", /unknown or already used token/);
  rejectsWith(() => r.registry.requestCertificate("abcdefgh", rawCsr({ rsa: { modulus: bigOdd(16384), exponent: bigOdd(16384) } })), "LookupError", /unknown/);
});

test("RSA keys over 4096 bits or with an exponent other than 65537 are refused before any signature work", async () => {
  const r = setup();
  const t = await token(r);
  rejectsWith(() => r.registry.requestCertificate(t, rawCsr({ rsa: { modulus: bigOdd(2048), exponent: bigOdd(2048) } })), "ValueError", /public exponent must be 65537/);
  rejectsWith(() => r.registry.requestCertificate(t, rawCsr({ rsa: { modulus: bigOdd(8192), exponent: Buffer.from([1, 0, 1]) } })), "ValueError", /8192 bits; at most 4096/);
  rejectsWith(() => r.registry.requestCertificate(t, rawCsr({ rsa: { modulus: bigOdd(16384), exponent: bigOdd(16384) } })), "ValueError", /16384 bits; at most 4096/);
  assert.ok(r.db.getToken(t), "the token is kept");
});

test("the issued subject has exactly one CN, the allocated prefix, whatever the request's CNs", async () => {
  const r = setup();
  const twoCns = makeCsr({ subject: [{ shortName: "O", value: "Evil" }, { shortName: "CN", value: "x" }, { shortName: "CN", value: "1/16" }] });
  const pem = r.registry.requestCertificate(await token(r), twoCns.csr);
  assert.deepEqual(cnsOf(pem), ["CN=0/16"]);
  assert.equal(new X509Certificate(pem).subject, "O=Evil\nCN=0/16");
  const noCn = rawCsr({ attributes: [attr(OID.C, PRINTABLE, "FR")] });
  assert.equal(new X509Certificate(r.registry.requestCertificate(await token(r), noCn)).subject, "C=FR\nCN=1/16");
});

test("subjects: only C, ST, L, O, OU, emailAddress, bounded strings, a bounded count; nothing burnt on refusal", async () => {
  const r = setup();
  const t = await token(r);
  const refused: Array<[string, RegExp]> = [
    [rawCsr({ attributes: [attr(OID.O, INTEGER, Buffer.from([5]))] }), /attribute O is not a string/],
    [rawCsr({ attributes: [attr(OID.title, UTF8, "boss")] }), /attribute the registry does not issue \(2\.5\.4\.12\)/],
    [rawCsr({ attributes: [attr(OID.O, UTF8, "x".repeat(65))] }), /O must have 1 to 64 characters, got 65/],
    [rawCsr({ attributes: [attr(OID.O, UTF8, "a\nCN=1/16")] }), /must not hold control characters/],
    [rawCsr({ attributes: [attr(OID.C, PRINTABLE, "F")] }), /C must have exactly 2 characters/],
    [rawCsr({ attributes: Array.from({ length: 17 }, () => attr(OID.O, UTF8, "o")) }), /more than 16/],
    [rawCsr({ attributes: [attr(OID.O, UTF8, Buffer.from([0x41, 0xff, 0xfe]))] }), /attribute O is not valid UTF-8/],
  ];
  for (const [csr, why] of refused) rejectsWith(() => r.registry.requestCertificate(t, csr), "ValueError", why);
  assert.ok(r.db.getToken(t), "the token is kept");
  const ok = rawCsr({ attributes: [attr(OID.C, PRINTABLE, "FR"), attr(OID.O, UTF8, "Société"), attr(OID.CN, UTF8, "n")] });
  const cert = new X509Certificate(r.registry.requestCertificate(t, ok));
  assert.equal(cert.subject, "C=FR\nO=Société\nCN=0/16", "the first prefix: none was burnt");
});

test("bad signatures and broken encodings are the client's mistake: a ValueError each", async () => {
  const r = setup();
  const t = await token(r);
  const good = Buffer.from(/-----BEGIN CERTIFICATE REQUEST-----([\s\S]*?)-----END/.exec(makeCsr().csr)![1]!.replace(/\s/g, ""), "base64");
  const pem = (der: Buffer) => `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
  const shortSig = Buffer.from(good);
  shortSig[shortSig.length - 2] ^= 0xff; // the signature's last bytes
  const cases: Array<[string, RegExp]> = [
    [pem(shortSig), /signature does not match/],
    [pem(good.subarray(0, good.length - 10)), /not a well-formed certificate request/],
    [pem(Buffer.concat([good, Buffer.from([0])])), /not a well-formed certificate request/],
    [pem(Buffer.from([0x30, 0x80, 0, 0])), /not a well-formed certificate request/],
    [pem(Buffer.alloc(0)), /not a PEM certificate request|not a well-formed/],
  ];
  for (const [csr, why] of cases) rejectsWith(() => r.registry.requestCertificate(t, csr), "ValueError", why);
  assert.ok(r.db.getToken(t));
});

test("method names are looked up among the registry's own: toString or constructor is an unknown method", async () => {
  const r = setup();
  for (const name of ["toString", "constructor", "__proto__", "hasOwnProperty", "valueOf", "__defineGetter__"])
    await assert.rejects(async () => dispatch(r.registry, name, []), (e: unknown) => e instanceof RpcFault && e.pythonClass === "Exception" && /is not supported/.test(e.message), name);
});

test("declare refuses addresses no other host can reach", async () => {
  const r = setup();
  for (const address of ["127.0.0.1,22,tcp-client", "0.0.0.0,1194,udp", "255.255.255.255,1194,udp", "224.0.0.1,1194,udp", "::,1194,udp",
    "::ffff:127.0.0.1,1194,udp", "fe80::1,1194,udp", "198.51.100.1,1194,udp;127.0.0.1,22,tcp-client"])
    assert.equal(r.registry.declare("2001:db8:42::", address), false, address);
  assert.deepEqual(r.db.allPeers(), []);
});

// ---- Strict modes and signed declarations (issue 9, item 10) ----

/** A registry with one node, 0/16 (node address 2001:db8:42::), and that node's key. */
async function withNode(strict: StrictModes = {}) {
  const r = setup(ca48, 1_800_000_000, strict);
  const node = makeCsr();
  r.registry.requestCertificate(await token(r), node.csr);
  const key = createPrivateKey(node.keyPem);
  const signed = (address: string, ms = r.clock.now * 1000, nodeIp = "2001:db8:42::", k = key) =>
    declareSignedParams({ nodeIp, addressList: address, time: String(ms) }, k);
  return { ...r, key, signed };
}

test("--strict-source: declare only from the node's own address, getPeerList only to callers inside the network", async () => {
  const r = await withNode({ source: true });
  const declare = (ip: string, from: string | null) => dispatch(r.registry, "declare", [[ip, "198.51.100.1,1194,udp"]], { address: from });
  assert.equal(await declare("2001:db8:42::", "198.51.100.1"), false);
  assert.equal(await declare("2001:db8:42::", "2001:db8:42::1"), false, "another address of the same node's subnet");
  assert.equal(await declare("2001:db8:42::", null), false);
  assert.equal(await declare("2001:db8:42::", "2001:0db8:0042:0000:0000:0000:0000:0000"), true, "any spelling of the node's address");
  const list = (from: string | null) => dispatch(r.registry, "getPeerList", [5, "2001:db8:42::"], { address: from });
  await assert.rejects(async () => list("198.51.100.1"), (e: unknown) => e instanceof RpcFault && /only to callers inside the network/.test(e.message));
  await assert.rejects(async () => list("::1"), RpcFault);
  assert.deepEqual(parseMethodResponse(serializeResponse(list("2001:db8:42:7::") as RawXml)), { result: [["0000000000000000", "198.51.100.1,1194,udp"]] });
  assert.equal(await dispatch(r.registry, "declareSigned", r.signed("198.51.100.2,1194,udp"), { address: "198.51.100.9" }), true, "a signed declaration comes from anywhere");
});

test("declareSigned: the key of the stored certificate, a fresh time, never replayed; the legacy declare is unchanged", async () => {
  const r = await withNode();
  const call = (params: unknown[]) => dispatch(r.registry, "declareSigned", params as never);
  const fault = (params: unknown[], pyClass: string, why: RegExp) =>
    assert.rejects(async () => call(params), (e: unknown) => e instanceof RpcFault && e.pythonClass === pyClass && why.test(e.message));
  const t0 = r.clock.now * 1000;
  assert.equal(await call(r.signed("198.51.100.1,1194,udp", t0)), true);
  assert.deepEqual(r.db.allPeers(), [{ prefix: "0000000000000000", address: "198.51.100.1,1194,udp" }]);
  await fault(r.signed("198.51.100.1,1194,udp", t0), "PermissionError", /already accepted/);
  await fault(r.signed("198.51.100.6,1194,udp", t0 - 1), "PermissionError", /already accepted/);
  const [ip, list, time, sig] = r.signed("198.51.100.7,1194,udp", t0 + 1);
  await fault([ip, "198.51.100.66,1194,udp", time, sig], "PermissionError", /not made with the key of the certificate issued for 0\/16/);
  await fault(r.signed("198.51.100.7,1194,udp", t0 + 1, "2001:db8:42::", createPrivateKey(makeCsr().keyPem)), "PermissionError", /not made with the key/);
  await fault(r.signed("198.51.100.7,1194,udp", t0 + 3_601_000), "ValueError", /away from the registry's clock/);
  await fault(r.signed("198.51.100.7,1194,udp", t0 + 1, "2001:db8:42:9::"), "LookupError", /no certificate was issued for 2001:db8:42:9::/);
  await fault(r.signed("127.0.0.1,22,tcp-client", t0 + 1), "ValueError", /malformed address list/);
  await fault([ip, list, "soon", sig], "ValueError", /time "soon"/);
  await fault([ip, list, time], "TypeError", /takes 4 argument/);
  await fault([ip, list, time, "c2ln"], "TypeError", /argument 4 must be base64 data/);
  assert.equal(await call(r.signed("198.51.100.7,1194,udp", t0 + 1)), true);
  assert.equal(r.registry.getBootstrapPeer()[1], "198.51.100.7,1194,udp");
  assert.equal(r.registry.declare("2001:db8:42::", "198.51.100.8,1194,udp"), true, "without --strict-signed, the legacy declare still works");
});

test("--strict-signed: the unsigned declare is refused, the signed one accepted", async () => {
  const r = await withNode({ signed: true });
  assert.equal(await dispatch(r.registry, "declare", [["2001:db8:42::", "198.51.100.1,1194,udp"]], { address: "2001:db8:42::" }), false);
  assert.deepEqual(r.db.allPeers(), []);
  assert.equal(await dispatch(r.registry, "declareSigned", r.signed("198.51.100.1,1194,udp")), true);
  assert.deepEqual(r.registry.getPeerList(5, "2001:db8:42::"), [["0000000000000000", "198.51.100.1,1194,udp"]]);
});

