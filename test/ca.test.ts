import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { bitsToIpv6 } from "../lib/utils/address";
import { loadCa } from "../lib/utils/cert";
import { BIN } from "../harness/paths";

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
