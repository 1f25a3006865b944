// The registry's lifecycle methods (issue 11), on the service with a fake
// clock: renewal, revocation and its signed list, token expiry and limits.

import assert from "node:assert/strict";
import Database from "better-sqlite3";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { declareSignedParams } from "../lib/declaration";
import { verifyRevocationList } from "../lib/revocation";
import { RegistryDb } from "../lib/registry/db";
import { Mailer } from "../lib/registry/mail";
import { RpcFault } from "../lib/registry/call";
import { dispatch } from "../lib/registry/methods";
import { REVOCATION_RELOAD } from "../lib/registry/revoked";
import { Registry } from "../lib/registry/service";
import { TokenLimiter } from "../lib/registry/token-limit";
import { loadCa } from "../lib/utils/cert";
import { silentLogger } from "../lib/utils/log";
import { signedWithSha1, subjectDer } from "../lib/utils/x509";
import { legacyCertificate, makeCa, makeCsr } from "../harness/pki";

const dir = mkdtempSync(join(tmpdir(), "vifibnet-lifecycle-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const ca = makeCa();
const DAY = 86_400;
const START = 1_800_000_000;

class FakeMailer implements Mailer {
  sent: Array<{ email: string; token: string }> = [];
  async sendToken(email: string, token: string): Promise<void> {
    this.sent.push({ email, token });
  }
}

let dbCount = 0;
function setup(opts: { tokenTtl?: number; renewGrace?: number; limits?: TokenLimiter } = {}) {
  const path = join(dir, `r${dbCount++}.db`);
  const db = new RegistryDb(path);
  const mailer = new FakeMailer();
  const clock = { now: START };
  const registry = new Registry({
    db, ca: loadCa(ca.pem, ca.keyPem), mailer, log: silentLogger, now: () => clock.now,
    ...(opts.tokenTtl ? { tokenTtl: opts.tokenTtl } : {}), ...(opts.renewGrace !== undefined ? { renewGrace: opts.renewGrace } : {}),
    ...(opts.limits ? { tokenGate: opts.limits } : {}),
  });
  return { db, path, mailer, clock, registry };
}

type Setup = ReturnType<typeof setup>;

async function enrol(r: Setup, email = "alice@example.com"): Promise<{ cert: string; csr: string; keyPem: string }> {
  await r.registry.requestToken(email, { address: `192.0.2.${r.mailer.sent.length + 1}` });
  const node = makeCsr();
  return { cert: r.registry.requestCertificate(r.mailer.sent.at(-1)!.token, node.csr), ...node };
}

function faults(fn: () => unknown, pyClass: string, message: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof RpcFault && e.pythonClass === pyClass && message.test(e.message), message.source);
}

/** A CSR for the key of `keyPem`: what a node makes to renew. */
const csrFor = (keyPem: string): string => makeCsr({ keyPem }).csr;

test("renewal keeps the prefix, the key and the subject; new serial, 365 days from now, SHA-256; the stored one is replaced", async () => {
  const r = setup();
  const node = await enrol(r);
  r.clock.now += 300 * DAY;
  const renewed = r.registry.renewCertificate(node.cert, csrFor(node.keyPem));
  const [before, now] = [new X509Certificate(node.cert), new X509Certificate(renewed)];
  assert.equal(now.subject, before.subject);
  assert.ok(subjectDer(now).equals(subjectDer(before)), "the subject byte for byte");
  assert.ok(now.publicKey.equals(before.publicKey));
  assert.notEqual(now.serialNumber, before.serialNumber);
  assert.equal(Date.parse(now.validFrom), (START + 300 * DAY) * 1000);
  assert.equal(Date.parse(now.validTo) - Date.parse(now.validFrom), 365 * DAY * 1000);
  assert.equal(signedWithSha1(now), false);
  assert.ok(now.verify(new X509Certificate(ca.pem).publicKey));
  assert.equal(r.db.certOf("0000000000000000"), renewed);
  // The node lost the reply and asks again with the certificate it had: the same renewal, not another one.
  assert.equal(r.registry.renewCertificate(node.cert, csrFor(node.keyPem)), renewed);
  assert.equal(r.registry.renewCertificate(renewed, csrFor(node.keyPem)) === renewed, false, "the renewed certificate renews in its turn");
});

test("a legacy SHA-1 certificate with serial 0 renews to SHA-256, same subject and key", () => {
  const r = setup();
  const node = makeCsr();
  const legacy = legacyCertificate(ca, node.keyPem, { cn: "5/16", subject: [{ shortName: "C", value: "FR" }, { shortName: "O", value: "Vifib" }], notBefore: new Date((START - 300 * DAY) * 1000) });
  const raw = new Database(r.path);
  raw.prepare("INSERT INTO vpn VALUES (?, ?, ?)").run("0000000000000101", "legacy@example.com", legacy);
  raw.close();
  const old = new X509Certificate(legacy);
  assert.equal(signedWithSha1(old), true);
  assert.equal(BigInt("0x" + old.serialNumber), 0n);
  const renewed = new X509Certificate(r.registry.renewCertificate(legacy, csrFor(node.keyPem)));
  assert.equal(signedWithSha1(renewed), false);
  assert.equal(renewed.subject, "C=FR\nO=Vifib\nCN=5/16");
  assert.ok(subjectDer(renewed).equals(subjectDer(old)));
  assert.ok(renewed.publicKey.equals(old.publicKey));
  assert.notEqual(BigInt("0x" + renewed.serialNumber), 0n);
});

test("renewal is refused for another key, a foreign certificate, a revoked prefix, and past the grace period", async () => {
  const r = setup({ renewGrace: 90 * DAY });
  const node = await enrol(r);
  const other = await enrol(r, "bob@example.com");
  faults(() => r.registry.renewCertificate(node.cert, makeCsr().csr), "PermissionError", /not signed with the key of the certificate of 0\/16/);
  faults(() => r.registry.renewCertificate(node.cert, csrFor(other.keyPem)), "PermissionError", /not signed with the key/);
  // Another CA's certificate for the same CN and key; one of this CA for a CN never issued; garbage.
  const foreign = legacyCertificate(makeCa(), node.keyPem, { cn: "0/16" });
  faults(() => r.registry.renewCertificate(foreign, csrFor(node.keyPem)), "PermissionError", /not the certificate the registry holds for 0\/16/);
  faults(() => r.registry.renewCertificate(legacyCertificate(ca, node.keyPem, { cn: "9/16" }), csrFor(node.keyPem)), "LookupError", /no certificate was issued for 9\/16/);
  faults(() => r.registry.renewCertificate(legacyCertificate(ca, node.keyPem, { cn: "node" }), csrFor(node.keyPem)), "ValueError", /CN "node" is not a node prefix/);
  faults(() => r.registry.renewCertificate("garbage", csrFor(node.keyPem)), "ValueError", /not a PEM certificate/);
  faults(() => r.registry.renewCertificate(node.cert, "garbage"), "ValueError", /not a PEM certificate request/);
  // Expired for 89 days: renewed. Another node expired for 91: refused, enrol again.
  r.clock.now += (365 + 89) * DAY;
  assert.ok(r.registry.renewCertificate(node.cert, csrFor(node.keyPem)));
  r.clock.now += 2 * DAY;
  faults(() => r.registry.renewCertificate(other.cert, csrFor(other.keyPem)), "PermissionError", /expired on .*, more than 90 days ago \(--renew-grace\): enrol again/);
  const fresh = setup();
  const n = await enrol(fresh);
  fresh.db.revoke("0000000000000000", fresh.clock.now, "lost laptop");
  faults(() => fresh.registry.renewCertificate(n.cert, csrFor(n.keyPem)), "PermissionError", /0\/16 was revoked on .* \(lost laptop\): its certificate cannot be renewed/);
});

test("a revoked prefix: dropped from peers, refused by declare, declareSigned and getPeerList, in the signed list; unrevoked, back", async () => {
  const r = setup();
  const a = await enrol(r); // 0/16, 2001:db8:42::
  await enrol(r, "bob@example.com"); // 1/16
  assert.equal(r.registry.declare("2001:db8:42::", "198.51.100.1,1194,udp"), true);
  assert.equal(r.registry.declare("2001:db8:42:1::", "198.51.100.2,1194,udp"), true);
  // The CLI revokes in the file; the registry sees it within REVOCATION_RELOAD seconds.
  const cli = new RegistryDb(r.path);
  cli.revoke("0000000000000000", r.clock.now, "stolen");
  cli.close();
  r.clock.now += REVOCATION_RELOAD;
  assert.deepEqual(r.registry.getPeerList(10, "2001:db8:42:1::"), [["0000000000000001", "198.51.100.2,1194,udp"]]);
  assert.deepEqual(r.registry.getBootstrapPeer(), ["0000000000000001", "198.51.100.2,1194,udp"]);
  assert.equal(r.registry.declare("2001:db8:42::", "198.51.100.1,1194,udp"), false);
  faults(() => r.registry.getPeerList(10, "2001:db8:42::5"), "PermissionError", /0\/16 was revoked .*\(stolen\): it is not given peers/);
  const signed = declareSignedParams({ nodeIp: "2001:db8:42::", addressList: "198.51.100.1,1194,udp", time: String(r.clock.now * 1000) }, createPrivateKey(a.keyPem));
  await assert.rejects(async () => dispatch(r.registry, "declareSigned", signed), (e: unknown) => e instanceof RpcFault && /its declarations are refused/.test(e.message));
  assert.deepEqual(r.db.allPeers(), [{ prefix: "0000000000000001", address: "198.51.100.2,1194,udp" }]);
  // Another worker's mirror change for it is ignored too.
  r.registry.applyChange({ peer: ["0000000000000000", "198.51.100.1,1194,udp"] });
  assert.equal(r.registry.getPeerList(10, "2001:db8:42:1::").length, 1);

  const answer = await dispatch(r.registry, "getRevocationList", []);
  const list = verifyRevocationList(answer, ca.pem);
  assert.deepEqual(list, { version: 1, issued: r.clock.now, revoked: [{ prefix: "0000000000000000", cn: "0/16", since: START, reason: "stolen" }] });
  r.clock.now += 10;
  assert.deepEqual(await dispatch(r.registry, "getRevocationList", []), answer, "the same list while nothing changed");

  assert.equal(r.db.unrevoke("0000000000000000"), true);
  r.clock.now += REVOCATION_RELOAD;
  assert.equal(r.registry.declare("2001:db8:42::", "198.51.100.1,1194,udp"), true);
  assert.equal(r.registry.getPeerList(10, "2001:db8:42::").length, 2);
  const after = verifyRevocationList(await dispatch(r.registry, "getRevocationList", []), ca.pem);
  assert.deepEqual(after.revoked, []);
  assert.ok(after.issued > list.issued, "a later list replaces the earlier one");
});

test("a revoked prefix is never allocated again, even freed by hand", async () => {
  const r = setup();
  await enrol(r); // 0/16
  r.db.revoke("0000000000000000", r.clock.now, null);
  const raw = new Database(r.path);
  raw.prepare("UPDATE vpn SET cert = NULL, email = NULL WHERE prefix = ?").run("0000000000000000");
  raw.close();
  const next = new X509Certificate((await enrol(r, "bob@example.com")).cert);
  assert.match(next.subject, /CN=1\/16$/);
  assert.throws(() => r.db.revoke("0000000000000111", r.clock.now, null), /no certificate was issued for prefix 0000000000000111/);
});

test("tokens expire after --token-ttl and are purged; a token dated 0 (written by hand) counts from when the registry sees it", async () => {
  const r = setup({ tokenTtl: DAY });
  await r.registry.requestToken("alice@example.com");
  const t = r.mailer.sent[0]!.token;
  const raw = new Database(r.path);
  raw.prepare("INSERT INTO tokens VALUES ('abcdefgh', 'hand@example.com', 16, 0), ('abcdefgi', 'old@example.com', 16, ?)").run(START - 2 * DAY);
  raw.close();
  r.clock.now += DAY;
  faults(() => r.registry.requestCertificate(t, makeCsr().csr), "LookupError", /the token expired on .* \(tokens are valid 1 day\): ask for a new one/);
  assert.equal(r.db.getToken(t), undefined, "an expired token is deleted when used");
  faults(() => r.registry.requestCertificate("abcdefgi", makeCsr().csr), "LookupError", /expired/);
  assert.ok(r.registry.requestCertificate("abcdefgh", makeCsr().csr), "the hand-made token works");
  // The purge dates undated tokens, then deletes the expired ones.
  const db = new RegistryDb(r.path);
  db.addToken({ token: "handmade", email: "hand@example.com", prefix_len: 16, date: 0 });
  db.addToken({ token: "oldtoken", email: "old@example.com", prefix_len: 16, date: r.clock.now - DAY });
  assert.equal(db.purgeTokens(DAY, r.clock.now), 1);
  assert.equal(db.getToken("handmade")?.date, r.clock.now);
  assert.equal(db.purgeTokens(DAY, r.clock.now + DAY), 1);
  assert.equal(db.getToken("handmade"), undefined);
  db.close();
});

test("requestToken: a few mails per address and per client an hour; beyond, a fault that says when, and no mail", async () => {
  const r = setup({ limits: new TokenLimiter({ perEmail: 3, perClient: 5, window: 3600 }) });
  for (let i = 0; i < 3; i++) await r.registry.requestToken("victim@example.com", { address: `198.51.100.${i}` });
  await assert.rejects(r.registry.requestToken("Victim@example.com", { address: "198.51.100.9" }), (e: unknown) =>
    e instanceof RpcFault && e.pythonClass === "RuntimeError" && /too many token requests for Victim@example.com .*retry after 2027-01-15T09:00:00Z \(in 3600 s\)/.test(e.message));
  for (let i = 0; i < 5; i++) await r.registry.requestToken(`n${i}@example.com`, { address: "2001:db8:1:2::1" });
  await assert.rejects(r.registry.requestToken("n9@example.com", { address: "2001:db8:1:2::ffff" }), /too many token requests.*in 3600 s/, "the same /64");
  await r.registry.requestToken("n9@example.com", { address: "2001:db8:1:3::1" });
  assert.equal(r.mailer.sent.length, 9, "no mail for the refused requests");
  r.clock.now += 3600;
  await r.registry.requestToken("victim@example.com", { address: "198.51.100.9" });
  assert.equal(r.mailer.sent.length, 10);
});
