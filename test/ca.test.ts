import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { bitsToIpv6 } from "../lib/utils/address";
import { checkRequest, issueCertificate, loadCa } from "../lib/utils/cert";
import { subjectDer } from "../lib/utils/x509";
import { BIN } from "../harness/paths";
import { legacyCertificate, makeCsr } from "../harness/pki";

const dir = mkdtempSync(join(tmpdir(), "vifibnet-ca-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const ca = (...args: string[]) => spawnSync(process.execPath, [BIN("vifibnet-ca"), ...args], { encoding: "utf8", timeout: 30_000 });

test("vifibnet-ca writes a CA whose serial carries the network", () => {
  const out = join(dir, "new");
  const r = ca("--prefix", "2001:db8:42::/48", "--dir", out, "--org", "Example");
  assert.equal(r.status, 0, r.stderr);
  const cert = new X509Certificate(readFileSync(join(out, "ca.crt")));
  assert.equal(cert.serialNumber, "0120010DB80042");
  assert.equal(cert.ca, true);
  assert.equal(statSync(join(out, "ca.key")).mode & 0o777, 0o600);
  const loaded = loadCa(readFileSync(join(out, "ca.crt"), "utf8"), readFileSync(join(out, "ca.key"), "utf8"));
  assert.equal(`${bitsToIpv6(loaded.network)}/${loaded.network.length}`, "2001:db8:42::/48");
});

test("vifibnet-ca never overwrites a CA and rejects bad prefixes", () => {
  const out = join(dir, "existing");
  assert.equal(ca("--prefix", "2001:db8:42::/48", "--dir", out).status, 0);
  const before = readFileSync(join(out, "ca.key"));
  const r = ca("--prefix", "2001:db8:43::/48", "--dir", out);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /exists; refusing to overwrite a CA/);
  assert.deepEqual(readFileSync(join(out, "ca.key")), before);
  for (const [prefix, why] of [["2001:db8:42::1/48", /not an IPv6 prefix/], ["2001:db8::/120", /at most \/112/], ["10.0.0.0/8", /not an IPv6 prefix/]] as const) {
    const bad = ca("--prefix", prefix, "--dir", join(dir, "bad"));
    assert.equal(bad.status, 2, prefix);
    assert.match(bad.stderr, why);
  }
});

test("vifibnet-ca --dir where no directory can be made (/proc/x): one line, status 1, at once", () => {
  const r = ca("--prefix", "2001:db8:42::/48", "--dir", "/proc/x");
  assert.equal(r.status, 1, r.error?.message ?? r.stderr);
  assert.equal(r.stderr, "vifibnet-ca: error: cannot create directory /proc/x: the file system does not allow it there\n");
});

test("a CA made with the legacy openssl recipe works", () => {
  const key = join(dir, "legacy.key"), crt = join(dir, "legacy.crt");
  execFileSync("openssl", ["genrsa", "-out", key, "2048"], { stdio: "ignore" });
  execFileSync("openssl", ["req", "-nodes", "-new", "-x509", "-key", key, "-set_serial", "0x120010db80042", "-days", "365", "-out", crt, "-subj", "/O=Legacy/CN=legacy CA"], { stdio: "ignore" });
  const loaded = loadCa(readFileSync(crt, "utf8"), readFileSync(key, "utf8"));
  assert.equal(`${bitsToIpv6(loaded.network)}/${loaded.network.length}`, "2001:db8:42::/48");
  writeFileSync(join(dir, "other.key"), execFileSync("openssl", ["genrsa", "2048"], { stdio: ["ignore", "pipe", "ignore"] }));
  assert.throws(() => loadCa(readFileSync(crt, "utf8"), readFileSync(join(dir, "other.key"), "utf8")), /does not belong to the CA/);
});

// ---- --renew (issue 11) ----

/** `openssl verify` of a node certificate against a CA file; SHA-1 (legacy) ones at OpenSSL's lowest level. */
function opensslVerifies(caPath: string, certPem: string, sha1: boolean): boolean {
  const certPath = join(dir, "node-check.crt");
  writeFileSync(certPath, certPem);
  return spawnSync("openssl", ["verify", ...(sha1 ? ["-auth_level", "0"] : []), "-CAfile", caPath, certPath], { encoding: "utf8" }).status === 0;
}

test("vifibnet-ca --renew: same key, subject and serial, a new validity; every node certificate still verifies (OpenSSL and node:crypto)", () => {
  const out = join(dir, "renew");
  assert.equal(ca("--prefix", "2001:db8:42::/48", "--dir", out, "--org", "Société Example", "--days", "30").status, 0);
  const caPath = join(out, "ca.crt");
  const before = readFileSync(caPath, "utf8");
  const authority = loadCa(before, readFileSync(join(out, "ca.key"), "utf8"));
  const node = makeCsr();
  const issued = issueCertificate(authority, checkRequest(node.csr), "5/16", new Date(), 365);
  const legacy = legacyCertificate({ pem: before, keyPem: readFileSync(join(out, "ca.key"), "utf8"), key: authority.key }, node.keyPem, { cn: "6/16" });
  const r = ca("--renew", "--dir", out, "--days", "7300");
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^CA for 2001:db8:42::\/48 renewed: .*ca\.crt, same key, subject and serial, valid until .*; the previous one is in ca\.crt\.old/);
  assert.equal(readFileSync(join(out, "ca.crt.old"), "utf8"), before);
  const [old, renewed] = [new X509Certificate(before), new X509Certificate(readFileSync(caPath))];
  assert.equal(renewed.serialNumber, old.serialNumber);
  assert.ok(subjectDer(renewed).equals(subjectDer(old)));
  assert.ok(renewed.publicKey.equals(old.publicKey));
  assert.equal(renewed.ca, true);
  assert.ok(Date.parse(renewed.validTo) - Date.now() > 7299 * 86_400_000);
  for (const [pem, sha1] of [[issued, false], [legacy, true]] as const) {
    const cert = new X509Certificate(pem);
    assert.ok(cert.checkIssued(renewed) && cert.verify(renewed.publicKey), "node:crypto");
    assert.ok(opensslVerifies(caPath, pem, sha1), `openssl verify ${sha1 ? "(SHA-1)" : ""}`);
  }
  assert.ok(loadCa(readFileSync(caPath, "utf8"), readFileSync(join(out, "ca.key"), "utf8")), "the registry loads it");
});

test("vifibnet-ca --renew of a CA made with the legacy openssl recipe", () => {
  const out = join(dir, "legacy-renew");
  mkdirSync(out);
  execFileSync("openssl", ["req", "-nodes", "-new", "-x509", "-newkey", "rsa:2048", "-keyout", join(out, "ca.key"), "-set_serial", "0x120010db80042", "-days", "365",
    "-out", join(out, "ca.crt"), "-subj", "/C=FR/O=Vifib/CN=vifibnet CA"], { stdio: "ignore" });
  const csr = join(out, "node.csr"), crt = join(out, "node.crt");
  execFileSync("openssl", ["req", "-nodes", "-new", "-newkey", "rsa:2048", "-keyout", join(out, "node.key"), "-out", csr, "-subj", "/O=Vifib/CN=7\\/16"], { stdio: "ignore" });
  execFileSync("openssl", ["x509", "-req", "-in", csr, "-CA", join(out, "ca.crt"), "-CAkey", join(out, "ca.key"), "-set_serial", "0", "-sha1", "-days", "365", "-out", crt], { stdio: "ignore" });
  const old = new X509Certificate(readFileSync(join(out, "ca.crt")));
  assert.equal(ca("--renew", "--dir", out).status, 0);
  const renewed = new X509Certificate(readFileSync(join(out, "ca.crt")));
  assert.equal(renewed.serialNumber, old.serialNumber);
  assert.equal(renewed.subject, "C=FR\nO=Vifib\nCN=vifibnet CA");
  assert.ok(subjectDer(renewed).equals(subjectDer(old)));
  assert.ok(opensslVerifies(join(out, "ca.crt"), readFileSync(crt, "utf8"), true));
});

test("vifibnet-ca --renew: one line and nothing changed on a missing or mismatched key; no --prefix with it", () => {
  const out = join(dir, "renew-bad");
  assert.equal(ca("--prefix", "2001:db8:42::/48", "--dir", out).status, 0);
  const before = readFileSync(join(out, "ca.crt"), "utf8");
  writeFileSync(join(out, "ca.key"), execFileSync("openssl", ["genrsa", "2048"], { stdio: ["ignore", "pipe", "ignore"] }));
  let r = ca("--renew", "--dir", out);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^vifibnet-ca: error: .*ca\.crt, .*ca\.key: the key does not belong to the CA certificate\n$/);
  assert.equal(readFileSync(join(out, "ca.crt"), "utf8"), before);
  assert.equal(existsSync(join(out, "ca.crt.old")), false);
  r = ca("--renew", "--dir", join(dir, "nothing-here"));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^vifibnet-ca: error: cannot read --dir .*nothing-here\/ca\.crt: no such file\n$/);
  r = ca("--renew", "--dir", out, "--prefix", "2001:db8:43::/48");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /not allowed with --prefix/);
  r = ca("--dir", out);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /required: --prefix \(or --renew\)/);
});
